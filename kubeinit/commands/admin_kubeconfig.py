"""`kubeinit kubeconfig -f cluster.yaml`: the cluster admin's credentials where kubeinit runs.

The control plane's admin.conf is read over SSH (never printed) and merged into a kubeconfig
(0600) as one entry named after the cluster, made current, as `aws eks update-kubeconfig`
or k0sctl's `kubeconfig` do: `kubectl` works from the workstation at once.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from kubeinit import ui


def write(file: str, known_hosts: str | None, trust_new_host_keys: bool, kubeconfig: str | None) -> None:
    import yaml

    from kubeinit.errors import KubeinitError
    from kubeinit.managed import kubeconfig as kc
    from kubeinit.spec import load_file
    from kubeinit.ssh import SSHConnection

    spec = load_file(file)
    host = spec.first_control_plane
    path = posixpath.join(spec.kubeconfig_dir, "admin.conf")
    conn = SSHConnection(host, known_hosts=known_hosts, trust_new_host_keys=trust_new_host_keys)
    try:
        data = conn.read(path)
    finally:
        conn.close()
    if data is None:
        raise KubeinitError(f"{host.name} has no {path}: run `kubeinit up -f {file} --only kubeconfig` first")
    from kubeinit.kube.kubeconfig import shape_error

    try:
        admin = yaml.safe_load(data)
        if why := shape_error(admin):
            raise KubeinitError(f"{host.name}:{path} is not a kubeconfig ({why}); re-create it with "
                                f"`kubeinit up -f {file} --only kubeconfig`")
        cluster = admin["clusters"][0]["cluster"]
        user = admin["users"][0]["user"]
        ca, cert, key = (cluster["certificate-authority-data"], user["client-certificate-data"],
                         user["client-key-data"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        raise KubeinitError(f"{host.name}:{path} is not a kubeconfig with embedded credentials; re-create it with "
                            f"`kubeinit up -f {file} --only kubeconfig`") from None
    doc = kc.entry(spec.name, spec.api_endpoint(), ca, {"client-certificate-data": cert, "client-key-data": key})
    target = Path(kubeconfig).expanduser() if kubeconfig else kc.default_path()
    context = kc.merge(target, doc)
    ui.ok(f"wrote context {context} (the admin of cluster {spec.name!r}, server {spec.api_endpoint()}) to {target}")
