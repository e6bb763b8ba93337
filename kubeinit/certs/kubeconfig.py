"""kubeadm's kubeconfig files: the catalogue and their client certificates (the YAML document
itself is kubeinit.kubeconfig's).

    KUBECONFIGS / FILES        admin.conf, super-admin.conf, kubelet.conf, controller-manager.conf,
                               scheduler.conf (kubeadm's order, CN/O table of kubeadm)
    control_plane_url(cfg)     https://<controlPlaneEndpoint, :bindPort added if it has no port>,
                               else the local URL
    local_url(cfg)             https://<advertiseAddress>:<bindPort>
    plan_kubeconfigs(cfg, ca_cert_pem, ca_key_pem|None, existing, only=None, now=None) -> KubeconfigPlan
    embedded_ca(cluster, what) -> [certificates]   a kubeconfig cluster's certificate-authority-data

plan_kubeconfigs keeps an existing file when its embedded CA is ca.crt (a different API server
URL is only a warning, as in kubeadm) and raises a UserError naming a file with another CA.
With ca_key_pem None (external CA mode) every file must already exist. Files are 0600.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from kubeinit import kubeconfig
from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs.addresses import join_host_port, parse_host_port
from kubeinit.certs.catalogue import CLUSTER_ADMINS, PKIConfig
from kubeinit.certs.pki import PlannedFile
from kubeinit.errors import UserError

KUBECONFIG_MODE = 0o600


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
    key_pem = keys.private_key_to_pem(key)  # kubeinit.kubeconfig.config registers it with redact
    return kubeconfig.dump(
        kubeconfig.config(
            cfg.cluster_name,
            server_for(spec, cfg),
            kubeconfig.b64(cu.cert_to_pem(ca_cert)),
            user,
            {
                "client-certificate-data": kubeconfig.b64(cu.cert_to_pem(cert)),
                "client-key-data": kubeconfig.b64(key_pem),
            },
            f"{user}@{cfg.cluster_name}",
        )
    )


def embedded_ca(cluster: dict, what: str) -> list:
    data = cluster.get("certificate-authority-data")
    if not data:
        raise UserError(
            f"{what} does not embed its CA (certificate-authority-data): "
            f"kubeinit cannot check it; remove {what} to have it generated"
        )
    try:
        return cu.load_certs(base64.b64decode(data), what)
    except ValueError:
        raise UserError(f"{what}: certificate-authority-data is not valid base64") from None


def plan_kubeconfigs(
    cfg: PKIConfig,
    ca_cert_pem: bytes,
    ca_key_pem: bytes | None,
    existing: Mapping[str, bytes],
    only: Sequence[str] | None = None,
    now: datetime | None = None,
) -> KubeconfigPlan:
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
                errors.append(
                    f"{spec.file} is missing and ca.key is absent (external CA mode): provide "
                    f"{spec.file} with a client certificate signed by your CA"
                )
            else:
                todo.append(spec)
            continue
        cluster = kubeconfig.current(kubeconfig.load(data, spec.file), spec.file).cluster
        if ca_cert not in embedded_ca(cluster, spec.file):
            errors.append(
                f"{spec.file} exists but trusts another CA than ca.crt: remove {spec.file} "
                "to have it generated for this cluster"
            )
            continue
        reused.append(spec.file)
        if cluster.get("server") != server:
            warnings.append(f"{spec.file} is kept but its API server URL is {cluster.get('server')}, expected {server}")
    if errors:
        raise UserError("; ".join(errors))
    files = tuple(
        PlannedFile(spec.file, client_cert_kubeconfig(spec, cfg, ca_cert, ca_key, now).encode(), KUBECONFIG_MODE)
        for spec in todo
    )
    return KubeconfigPlan(files, tuple(reused), tuple(warnings))
