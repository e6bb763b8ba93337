"""Moving: the managed side's kubeconfig code is kubeinit.kubeconfig's (issue 9 item 3); this
module goes once its last importers (managed/ops.py, loadbalancers.py, providers/eks.py) import that."""

from kubeinit.kubeconfig import EXEC_API, default_path, entry, merge, remove  # noqa: F401
from kubeinit.kubeconfig import register_secrets as _register_secrets  # noqa: F401
