"""Merge a cluster's entry into a kubeconfig file (0600), as the clouds' CLIs do.

Entries with the same names are replaced, so writing twice changes nothing and
the names match what `aws eks update-kubeconfig`, `gcloud … get-credentials`
and `az aks get-credentials` write.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from kubeinit import redact
from kubeinit.errors import KubeinitError, UserError

SECTIONS = ("clusters", "users", "contexts")
EXEC_API = "client.authentication.k8s.io/v1beta1"  # v1alpha1 was removed in kubectl 1.24


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def entry(name: str, server: str, ca_data: str, user: dict[str, Any]) -> dict[str, Any]:
    """A one-cluster kubeconfig whose cluster, user and context are all called `name`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge(path: str | Path, doc: dict[str, Any] | bytes, make_current: bool = True) -> str:
    """Merge `doc` into the file at path; make its context current (if make_current); return the context name."""
    import yaml

    if isinstance(doc, (bytes, str)):
        doc = yaml.safe_load(doc)
    _register_secrets(doc)
    path = Path(path).expanduser()
    current = _load(path)
    for section in SECTIONS:
        items = current.get(section) or []
        for new in doc.get(section) or []:
            items = [i for i in items if i.get("name") != new["name"]] + [new]
        current[section] = items
    context = doc.get("current-context") or doc["contexts"][0]["name"]
    if make_current:
        current["current-context"] = context
    _write(path, current)
    return context


def remove(path: str | Path, context: str) -> bool:
    """Remove a context and the cluster and user it names; True if something was removed."""
    path = Path(path).expanduser()
    current = _load(path)
    ctx = next((c for c in current.get("contexts") or [] if c.get("name") == context), None)
    if ctx is None:
        return False
    body = ctx.get("context") or {}
    names = {"contexts": context, "clusters": body.get("cluster"), "users": body.get("user")}
    for section, name in names.items():
        current[section] = [i for i in current.get(section) or [] if i.get("name") != name]
    if current.get("current-context") == context:
        current["current-context"] = ""
    _write(path, current)
    return True


def _load(path: Path) -> dict[str, Any]:
    import yaml

    from kubeinit import userfile
    from kubeinit.kubeconfig import shape_error

    try:
        text = userfile.read(path, "kubeconfig", userfile.KUBECONFIG_LIMIT, "fix it or pass --kubeconfig")
    except FileNotFoundError:
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    except OSError as e:
        raise KubeinitError(f"cannot read the kubeconfig {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise UserError(f"the kubeconfig {path} is not valid YAML; fix it or pass --kubeconfig") from None
    if why := shape_error(data):  # before merging into it: a wrong type would fail half-way
        raise UserError(f"the kubeconfig {path} is not a kubeconfig ({why}); fix it or pass --kubeconfig")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically (a temp file beside it, then rename), 0600. A symlinked kubeconfig (dotfiles
    kept in a repository) stays a link: the file it points to is replaced, as kubectl writes it."""
    import yaml

    path = Path(os.path.realpath(path))
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.kubeinit-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _register_secrets(doc: dict[str, Any]) -> None:
    # Azure's user credentials carry a client key and/or a token: never print them.
    for u in doc.get("users") or []:
        user = u.get("user") or {}
        for key in ("token", "client-key-data", "password"):
            if user.get(key):
                redact.register(str(user[key]))
                if key == "client-key-data":
                    try:
                        redact.register(base64.b64decode(user[key]))
                    except ValueError:
                        pass
