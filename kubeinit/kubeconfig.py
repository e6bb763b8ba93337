"""Kubeconfig documents, in one place: built, read, and merged into the user's file.

    config(cluster, server, ca_data, user_name, user, context) -> dict   one cluster, user and context
    entry(name, server, ca_data, user) -> dict   the same, all three called `name` (the clouds' CLIs)
    bootstrap(server, ca_data, token, cluster_name) -> str   bootstrap-kubelet.conf (kubeadm join)
    cluster_info(server, ca_pem) -> str          kube-public/cluster-info's, byte-exact as client-go's
    read_cluster_info(text) -> (server, ca_data) the one cluster of a cluster-info document
    dump(doc) -> str                             YAML as client-go writes it (sorted keys, "" kept)
    load(text, what, hint) -> dict               parsed and shape-checked (every field named on error)
    current(conf, what, context=None) -> Selected   the context, cluster and user kubectl would use
    merged(existing, new, make_current) -> dict  `new`'s entries replace same-named ones in place
    default_path() / merge(path, doc) / remove(path, context)   the user's file: through a symlink,
                                                 0600, atomic, as kubectl writes it

Every kubeconfig kubeinit writes or reads goes through here; secrets in users are registered
with kubeinit.redact when built or merged.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeinit import redact
from kubeinit.errors import KubeinitError, UserError, kind_of

EXEC_API = "client.authentication.k8s.io/v1beta1"  # v1alpha1 was removed in kubectl 1.24
BOOTSTRAP_USER = "tls-bootstrap-token-user"
SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
USER_FILE_HINT = "; fix it or pass --kubeconfig"
_TEXT = {
    "cluster": ("server", "certificate-authority", "certificate-authority-data", "tls-server-name", "proxy-url"),
    "user": (
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
        "username",
        "password",
    ),
    "context": ("cluster", "user", "namespace"),
}
_SECRETS = ("token", "client-key-data", "password")


# --- building ------------------------------------------------------------------------------


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def config(
    cluster_name: str, server: str, ca_data: str, user_name: str, user: dict[str, Any], context_name: str
) -> dict[str, Any]:
    """One cluster (CA as base64 `ca_data`), one user (client cert, token or exec plugin), current."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": context_name, "context": {"cluster": cluster_name, "user": user_name}}],
        "current-context": context_name,
        "preferences": {},
    }
    register_secrets(doc)
    return doc


def entry(name: str, server: str, ca_data: str, user: dict[str, Any]) -> dict[str, Any]:
    """A config whose cluster, user and context are all `name`, as the clouds' CLIs write them."""
    return config(name, server, ca_data, name, user, name)


def bootstrap(server: str, ca_data: str, token, cluster_name: str = "kubernetes") -> str:
    """bootstrap-kubelet.conf: the bootstrap token as tls-bootstrap-token-user (kubeadm join)."""
    return dump(
        config(
            cluster_name,
            server,
            ca_data,
            BOOTSTRAP_USER,
            {"token": redact.reveal(token)},
            f"{BOOTSTRAP_USER}@{cluster_name}",
        )
    )


def cluster_info(server: str, ca_pem: bytes) -> str:
    """data.kubeconfig of kube-public/cluster-info: one cluster named "", no users or contexts,
    serialised as client-go does (the bootstrapsigner signs these exact bytes)."""
    return dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
            "contexts": None,
            "current-context": "",
            "preferences": {},
            "users": None,
        }
    )


def read_cluster_info(text: str) -> tuple[str, str]:
    """(server, certificate-authority-data) of cluster-info's one cluster; ValueError saying why not."""
    import yaml

    try:
        clusters = yaml.safe_load(text)["clusters"]
        cluster = clusters[0]["cluster"] if isinstance(clusters, list) else {}
        server, ca_data = cluster.get("server") or "", cluster["certificate-authority-data"]
        base64.b64decode(ca_data, validate=True)
    except (yaml.YAMLError, KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise ValueError("holds no usable kubeconfig") from None
    if len(clusters) != 1:
        raise ValueError(f"names {len(clusters)} clusters; kubeadm expects one")
    return server, ca_data


def register_secrets(doc: dict[str, Any]) -> None:
    """Tokens, passwords and client keys (base64 and decoded) are never printed."""
    for item in doc.get("users") or []:
        user = (item.get("user") or {}) if isinstance(item, dict) else {}
        for key in _SECRETS:
            if isinstance(user.get(key), str) and user[key]:
                redact.register(user[key])
                if key == "client-key-data":
                    try:
                        redact.register(base64.b64decode(user[key]))
                    except ValueError:
                        pass


_dumper = None


def dump(doc: Any) -> str:
    global _dumper
    import yaml

    if _dumper is None:

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data):  # shared dicts must not become &anchors
                return True

        def text(dumper, s: str):  # Go's yaml writes an empty string as "" (cluster-info's bytes depend on it)
            return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if s == "" else None)

        Dumper.add_representer(str, text)
        _dumper = Dumper
    return yaml.dump(doc, Dumper=_dumper, sort_keys=True, default_flow_style=False, width=1 << 30)


# --- reading -------------------------------------------------------------------------------


def load(text: str | bytes, what: str, hint: str = "") -> dict[str, Any]:
    """The parsed document; a UserError `<what> is not …<hint>` naming the first wrong field."""
    import yaml

    try:
        conf = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{what} is not valid YAML ({str(e).splitlines()[0]}){hint}") from None
    conf = {} if conf is None else conf
    if why := shape_error(conf):  # before anything is looked up: a wrong type would fail half-way
        raise UserError(f"{what} is not a kubeconfig ({why}){hint}")
    return conf


def shape_error(conf: Any) -> str | None:
    """`<field>: <what is wrong>` for the first field of the wrong type, or None."""
    if not isinstance(conf, dict):
        return f"the file must be a mapping, not {kind_of(conf)}"
    for key in ("current-context", "apiVersion", "kind"):
        if conf.get(key) is not None and not isinstance(conf[key], str):
            return f"{key}: must be text, not {kind_of(conf[key])}"
    if conf.get("preferences") is not None and not isinstance(conf["preferences"], dict):
        return f"preferences: must be a mapping, not {kind_of(conf['preferences'])}"
    for section, item_key in SECTIONS.items():
        items = conf.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            return f"{section}: must be a list, not {kind_of(items)}"
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            if not isinstance(item, dict):
                return f"{where}: must be a mapping with name and {item_key}, not {kind_of(item)}"
            if not isinstance(item.get("name"), str) or not item["name"]:
                return f"{where}.name: must be a non-empty name, not {kind_of(item.get('name'))}"
            body = item.get(item_key)
            if body is None:
                continue
            if not isinstance(body, dict):
                return f"{where}.{item_key}: must be a mapping, not {kind_of(body)}"
            for field in _TEXT[item_key]:
                if body.get(field) is not None and not isinstance(body[field], str):
                    return f"{where}.{item_key}.{field}: must be text, not {kind_of(body[field])}"
    return None


@dataclass(frozen=True)
class Selected:
    context: str
    cluster_name: str
    cluster: dict[str, Any]
    user_name: str
    user: dict[str, Any]  # {} for a context without a user (anonymous)


def current(conf: dict[str, Any], what: str, context: str | None = None) -> Selected:
    """The entries kubectl would use: `context`, else current-context (a loaded, shape-checked conf)."""
    name = context or conf.get("current-context") or ""
    if not name:
        raise UserError(f"{what} has no current-context")
    ctx = _named(conf, "contexts", name, what)
    cluster_name, user_name = ctx.get("cluster") or "", ctx.get("user") or ""
    return Selected(
        name,
        cluster_name,
        _named(conf, "clusters", cluster_name, what),
        user_name,
        _named(conf, "users", user_name, what) if user_name else {},
    )


def _named(conf: dict[str, Any], section: str, name: str, what: str) -> dict[str, Any]:
    for item in conf.get(section) or []:
        if item.get("name") == name:
            return item.get(SECTIONS[section]) or {}
    raise UserError(f"{what}: no {SECTIONS[section]} named {name!r}")


# --- merging into the user's file -------------------------------------------------------------


def merged(existing: dict[str, Any], new: dict[str, Any], make_current: bool = True) -> dict[str, Any]:
    """`existing` with `new`'s clusters, users and contexts (a same-named entry replaced where it
    stands, so merging twice changes nothing) and, if make_current, its current-context."""
    out = dict(existing)
    for section in SECTIONS:
        items = list(out.get(section) or [])
        index = {item["name"]: i for i, item in enumerate(items)}
        for item in new.get(section) or []:
            if item["name"] in index:
                items[index[item["name"]]] = item
            else:
                index[item["name"]] = len(items)
                items.append(item)
        out[section] = items
    if make_current:
        out["current-context"] = new.get("current-context") or new["contexts"][0]["name"]
    for key, value in (("apiVersion", "v1"), ("kind", "Config"), ("preferences", {}), ("current-context", "")):
        out.setdefault(key, value)
    return out


def default_path() -> Path:
    """$KUBECONFIG's first file, else ~/.kube/config (where kubectl writes)."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def merge(path: str | Path, doc: dict[str, Any] | str | bytes, make_current: bool = True) -> str:
    """Merge `doc` into the kubeconfig at `path` (created if absent); return doc's context name."""
    new = load(doc, "the new kubeconfig") if isinstance(doc, (str, bytes)) else doc
    register_secrets(new)
    path = Path(path).expanduser()
    _write(path, merged(_read_user_file(path), new, make_current))
    return new.get("current-context") or new["contexts"][0]["name"]


def remove(path: str | Path, context: str) -> bool:
    """Remove a context and the cluster and user it names; True if something was removed."""
    path = Path(path).expanduser()
    conf = _read_user_file(path)
    ctx = next((c for c in conf.get("contexts") or [] if c["name"] == context), None)
    if ctx is None:
        return False
    body = ctx.get("context") or {}
    for section, name in (("contexts", context), ("clusters", body.get("cluster")), ("users", body.get("user"))):
        conf[section] = [i for i in conf.get(section) or [] if i["name"] != name]
    if conf.get("current-context") == context:
        conf["current-context"] = ""
    _write(path, conf)
    return True


def _read_user_file(path: Path) -> dict[str, Any]:
    from kubeinit import userfile

    try:
        text = userfile.read(path, "kubeconfig", userfile.KUBECONFIG_LIMIT, USER_FILE_HINT.removeprefix("; "))
    except FileNotFoundError:
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    except OSError as e:
        raise KubeinitError(f"cannot read the kubeconfig {path}: {e.strerror}") from None
    return load(text, f"the kubeconfig {path}", USER_FILE_HINT)


def _write(path: Path, conf: dict[str, Any]) -> None:
    """Atomically (a temp file beside it, then rename), 0600. A symlinked kubeconfig (dotfiles
    kept in a repository) stays a link: the file it points to is replaced, as kubectl does."""
    path = Path(os.path.realpath(path))
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.kubeinit-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dump(conf))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
