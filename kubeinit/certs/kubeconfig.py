"""kubeadm's kubeconfig files, and the kubeconfig YAML every part of kubeinit writes.

    KUBECONFIGS / FILES        admin.conf, super-admin.conf, kubelet.conf, controller-manager.conf,
                               scheduler.conf (kubeadm's order, CN/O table of kubeadm)
    control_plane_url(cfg)     https://<controlPlaneEndpoint, :bindPort added if it has no port>,
                               else the local URL
    local_url(cfg)             https://<advertiseAddress>:<bindPort>
    plan_kubeconfigs(cfg, ca_cert_pem, ca_key_pem|None, existing, only=None, now=None) -> KubeconfigPlan
    kubeconfig_yaml(cluster_name, server, ca_data_b64, user_name, user, context_name) -> str
    kubeconfig_dict(...)       the same as a dict
    bootstrap_kubeconfig(server, ca_pem, token, cluster_name="kubernetes") -> str
    cluster_info_kubeconfig(server, ca_pem) -> str   byte-exact as client-go writes cluster-info
    merge_kubeconfig(existing_yaml, new_yaml) -> str
    dump(obj) -> str           YAML as client-go writes it (sorted keys, "" for empty strings)
    load(text, what) -> dict / current(conf, what) -> (context, cluster, user)

plan_kubeconfigs keeps an existing file when its embedded CA is ca.crt (a different API server
URL is only a warning, as in kubeadm) and raises a UserError naming a file with another CA.
With ca_key_pem None (external CA mode) every file must already exist. Files are 0600.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

import yaml

from kubeinit import redact
from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs.pki import CLUSTER_ADMINS, PKIConfig, PlannedFile, join_host_port, parse_host_port
from kubeinit.errors import UserError

KUBECONFIG_MODE = 0o600
BOOTSTRAP_USER = "tls-bootstrap-token-user"


@dataclass(frozen=True)
class KubeconfigSpec:
    file: str
    cn: str | None  # None: system:node:<node name>
    orgs: tuple[str, ...] = ()
    local: bool = False  # server is the local endpoint rather than the controlPlaneEndpoint

    @property
    def phase(self) -> str:
        return self.file.removesuffix(".conf")


KUBECONFIGS: tuple[KubeconfigSpec, ...] = (
    KubeconfigSpec("admin.conf", "kubernetes-admin", (CLUSTER_ADMINS,)),
    KubeconfigSpec("super-admin.conf", "kubernetes-super-admin", ("system:masters",)),
    KubeconfigSpec("kubelet.conf", None, ("system:nodes",)),
    KubeconfigSpec("controller-manager.conf", "system:kube-controller-manager", local=True),
    KubeconfigSpec("scheduler.conf", "system:kube-scheduler", local=True),
)
FILES = tuple(k.file for k in KUBECONFIGS)
_BY_KEY = {**{k.file: k for k in KUBECONFIGS}, **{k.phase: k for k in KUBECONFIGS}}


def user_name(spec: KubeconfigSpec, cfg: PKIConfig) -> str:
    return spec.cn or f"system:node:{cfg.node_name}"


def local_url(cfg: PKIConfig) -> str:
    return f"https://{join_host_port(cfg.advertise_address, cfg.bind_port)}"


def control_plane_url(cfg: PKIConfig) -> str:
    if not cfg.control_plane_endpoint:
        return local_url(cfg)
    host, port = parse_host_port(cfg.control_plane_endpoint)
    return f"https://{join_host_port(host, port or cfg.bind_port)}"


def server_for(spec: KubeconfigSpec, cfg: PKIConfig) -> str:
    if spec.local or (spec.file == "kubelet.conf" and cfg.kubelet_local_mode):
        return local_url(cfg)
    return control_plane_url(cfg)


# --- YAML ------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # shared dicts must not become &anchors
        return True


def _str(dumper, s: str):
    # Go's yaml writes an empty string as "" (the cluster-info vector depends on it)
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if s == "" else None)


_Dumper.add_representer(str, _str)


def dump(obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=1 << 30)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def kubeconfig_dict(cluster_name: str, server: str, ca_data_b64: str, user_name: str,
                    user: dict, context_name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name,
                      "cluster": {"server": server, "certificate-authority-data": ca_data_b64}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": context_name, "context": {"cluster": cluster_name, "user": user_name}}],
        "current-context": context_name,
        "preferences": {},
    }


def kubeconfig_yaml(cluster_name: str, server: str, ca_data_b64: str, user_name: str,
                    user: dict, context_name: str) -> str:
    """One cluster, one user (client cert, token or exec plugin dict), one current context."""
    return dump(kubeconfig_dict(cluster_name, server, ca_data_b64, user_name, user, context_name))


def bootstrap_kubeconfig(server: str, ca_pem: bytes, token, cluster_name: str = "kubernetes") -> str:
    """bootstrap-kubelet.conf: token auth as tls-bootstrap-token-user (kubeadm join)."""
    token = redact.reveal(token)
    redact.register(token)
    return kubeconfig_yaml(cluster_name, server, b64(ca_pem), BOOTSTRAP_USER, {"token": token},
                           f"{BOOTSTRAP_USER}@{cluster_name}")


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    """data.kubeconfig of kube-public/cluster-info: one cluster named "", no users or contexts."""
    return dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "contexts": None,
        "current-context": "",
        "preferences": {},
        "users": None,
    })


def load(text: str | bytes, what: str) -> dict:
    try:
        conf = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{what}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(conf, dict):
        raise UserError(f"{what}: not a kubeconfig (expected a mapping)")
    return conf


def _named(conf: dict, key: str, name: str, what: str) -> dict:
    for item in conf.get(key) or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(key[:-1]) or {}
    raise UserError(f"{what}: no {key[:-1]} named {name!r}")


def current(conf: dict, what: str) -> tuple[str, dict, dict]:
    """(current context name, its cluster, its user), as kubectl would pick them."""
    ctx_name = conf.get("current-context") or ""
    if not ctx_name:
        raise UserError(f"{what}: current-context is not set")
    ctx = _named(conf, "contexts", ctx_name, what)
    return ctx_name, _named(conf, "clusters", ctx.get("cluster", ""), what), \
        _named(conf, "users", ctx.get("user", ""), what)


def merge_kubeconfig(existing_yaml: str | None, new_yaml: str) -> str:
    """`existing` with the clusters, users and contexts of `new` (same names replaced in place)
    and new's current-context; everything else in `existing` is kept."""
    merged = load(existing_yaml or "", "existing kubeconfig")
    new = load(new_yaml, "new kubeconfig")
    for key in ("clusters", "users", "contexts"):
        items = list(merged.get(key) or [])
        index = {item.get("name"): i for i, item in enumerate(items) if isinstance(item, dict)}
        for item in new.get(key) or []:
            if item.get("name") in index:
                items[index[item["name"]]] = item
            else:
                items.append(item)
        merged[key] = items or None
    if new.get("current-context"):
        merged["current-context"] = new["current-context"]
    for k, v in (("apiVersion", "v1"), ("kind", "Config"), ("preferences", {}), ("current-context", "")):
        merged.setdefault(k, v)
    return dump(merged)


# --- kubeadm's kubeconfig files --------------------------------------------------------

@dataclass(frozen=True)
class KubeconfigPlan:
    files: tuple[PlannedFile, ...]  # paths relative to the kubeconfig dir (/etc/kubernetes)
    reused: tuple[str, ...]
    warnings: tuple[str, ...]

    def writes(self) -> dict[str, tuple[bytes, int]]:
        return {f.path: (f.content, f.mode) for f in self.files}


def select(only: Sequence[str] | None = None) -> list[KubeconfigSpec]:
    """`only` takes file names (admin.conf) or phase names (admin); None/"all" = every one."""
    if not only or "all" in only:
        return list(KUBECONFIGS)
    unknown = [n for n in only if n not in _BY_KEY]
    if unknown:
        raise UserError(f"unknown kubeconfig {unknown[0]!r}: must be all or one of {', '.join(FILES)}")
    wanted = {_BY_KEY[n].file for n in only}
    return [k for k in KUBECONFIGS if k.file in wanted]


def client_cert_kubeconfig(spec: KubeconfigSpec, cfg: PKIConfig, ca_cert, ca_key, now: datetime) -> str:
    user = user_name(spec, cfg)
    key = keys.generate_private_key(cfg.algorithm)
    tmpl = cu.CertTemplate(cn=user, orgs=spec.orgs, eku=(cu.CLIENT_AUTH,))
    cert = cu.sign(tmpl, key.public_key(), ca_cert, ca_key, now - cu.BACKDATE, now + cfg.validity)
    key_b64 = b64(keys.private_key_to_pem(key))
    redact.register(key_b64)  # the key shows up base64-encoded in the file
    return kubeconfig_yaml(cfg.cluster_name, server_for(spec, cfg), b64(cu.cert_to_pem(ca_cert)),
                           user, {"client-certificate-data": b64(cu.cert_to_pem(cert)),
                                  "client-key-data": key_b64},
                           f"{user}@{cfg.cluster_name}")


def embedded_ca(cluster: dict, what: str) -> list:
    data = cluster.get("certificate-authority-data")
    if not data:
        raise UserError(f"{what} does not embed its CA (certificate-authority-data): "
                        f"kubeinit cannot check it; remove {what} to have it generated")
    try:
        return cu.load_certs(base64.b64decode(data), what)
    except ValueError:
        raise UserError(f"{what}: certificate-authority-data is not valid base64") from None


def plan_kubeconfigs(cfg: PKIConfig, ca_cert_pem: bytes, ca_key_pem: bytes | None,
                     existing: Mapping[str, bytes], only: Sequence[str] | None = None,
                     now: datetime | None = None) -> KubeconfigPlan:
    now = now or cu.utcnow()
    ca_cert = cu.load_cert(ca_cert_pem, "ca.crt")
    ca_key = keys.load_private_key(ca_key_pem, "ca.key") if ca_key_pem else None
    if ca_key is not None and not keys.same_public_key(ca_cert.public_key(), ca_key):
        raise UserError("ca.key does not match ca.crt")
    errors, warnings, reused, todo = [], [], [], []
    for spec in select(only):
        server = server_for(spec, cfg)
        data = existing.get(spec.file)
        if data is None:
            if ca_key is None:
                errors.append(f"{spec.file} is missing and ca.key is absent (external CA mode): provide "
                              f"{spec.file} with a client certificate signed by your CA")
            else:
                todo.append(spec)
            continue
        _, cluster, _ = current(load(data, spec.file), spec.file)
        if ca_cert not in embedded_ca(cluster, spec.file):
            errors.append(f"{spec.file} exists but trusts another CA than ca.crt: remove {spec.file} "
                          "to have it generated for this cluster")
            continue
        reused.append(spec.file)
        if cluster.get("server") != server:
            warnings.append(f"{spec.file} is kept but its API server URL is {cluster.get('server')}, "
                            f"expected {server}")
    if errors:
        raise UserError("; ".join(errors))
    files = tuple(
        PlannedFile(spec.file, client_cert_kubeconfig(spec, cfg, ca_cert, ca_key, now).encode(),
                    KUBECONFIG_MODE)
        for spec in todo)
    return KubeconfigPlan(files, tuple(reused), tuple(warnings))
