"""kubeadm's certificate catalogue: which certificates a control plane has, who signs each, and
each one's subject, SANs and usages for a configuration (pure: no files, no keys).

    PKIConfig(node_name, advertise_address, ...)   the inputs kubeadm reads from its config
    CATALOGUE / BY_NAME / NAMES                    kubeadm's certlist, in kubeadm's order; NAMES ends in "sa"
    select(cfg, only) -> list[str]                 names to plan: None/"all" = every one in use
    template(spec, cfg) -> (CertTemplate, warnings)   subject, SANs (rules A/B), usages
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs.addresses import is_dns1123_subdomain, parse_host_port, parse_ip, service_vip
from kubeinit.errors import UserError

CLUSTER_ADMINS = "kubeadm:cluster-admins"  # O of apiserver-kubelet-client and admin.conf (v1.29+)


@dataclass(frozen=True)
class PKIConfig:
    node_name: str
    advertise_address: str
    service_subnet: str = "10.96.0.0/12"  # may be a comma list; the first CIDR gives the VIP
    dns_domain: str = "cluster.local"
    control_plane_endpoint: str | None = None  # host[:port]
    apiserver_cert_sans: Sequence[str] = ()
    etcd_server_sans: Sequence[str] = ()
    etcd_peer_sans: Sequence[str] = ()
    algorithm: str = keys.DEFAULT_ALGORITHM
    validity: timedelta = timedelta(days=365)
    ca_validity: timedelta = timedelta(days=3650)
    external_etcd: bool = False
    # used by the kubeconfig files
    cluster_name: str = "kubernetes"
    bind_port: int = 6443
    kubelet_local_mode: bool = False  # ControlPlaneKubeletLocalMode: kubelet.conf uses the local endpoint

    def __post_init__(self):
        # frozen: normalise through object.__setattr__
        object.__setattr__(self, "algorithm", keys.normalize_algorithm(self.algorithm))
        for f in ("apiserver_cert_sans", "etcd_server_sans", "etcd_peer_sans"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        if not self.node_name:
            raise UserError("node name must not be empty")
        if parse_ip(self.advertise_address) is None:
            raise UserError(f"advertise address {self.advertise_address!r} is not an IP address")
        if self.control_plane_endpoint:
            parse_host_port(self.control_plane_endpoint)
        service_vip(self.service_subnet)

    @property
    def advertise_ip(self):
        return parse_ip(self.advertise_address)


@dataclass(frozen=True)
class CertSpec:
    name: str
    base: str  # files are <base>.crt and <base>.key under the cert dir
    cn: str | None  # None: the node name
    ca: str | None = None  # signer's name; None for a self-signed CA
    orgs: tuple[str, ...] = ()
    eku: tuple = ()
    sans: str | None = None  # "apiserver" (rule A) | "etcd-server" | "etcd-peer" (rule B)
    help: str = ""

    @property
    def is_ca(self) -> bool:
        return self.ca is None

    @property
    def signer(self) -> str:
        """The CA that signs it: `ca`, or itself for a self-signed CA."""
        return self.name if self.ca is None else self.ca

    @property
    def crt(self) -> str:
        return self.base + ".crt"

    @property
    def key(self) -> str:
        return self.base + ".key"


_S, _C = cu.SERVER_AUTH, cu.CLIENT_AUTH
CATALOGUE: tuple[CertSpec, ...] = (
    CertSpec("ca", "ca", "kubernetes", help="self-signed Kubernetes CA"),
    CertSpec(
        "apiserver",
        "apiserver",
        "kube-apiserver",
        "ca",
        eku=(_S,),
        sans="apiserver",
        help="serving certificate of the API server",
    ),
    CertSpec(
        "apiserver-kubelet-client",
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        "ca",
        (CLUSTER_ADMINS,),
        (_C,),
        help="API server's client certificate to kubelets",
    ),
    CertSpec("front-proxy-ca", "front-proxy-ca", "front-proxy-ca", help="self-signed front proxy CA"),
    CertSpec(
        "front-proxy-client",
        "front-proxy-client",
        "front-proxy-client",
        "front-proxy-ca",
        eku=(_C,),
        help="client certificate of the front proxy",
    ),
    CertSpec("etcd-ca", "etcd/ca", "etcd-ca", help="self-signed etcd CA"),
    CertSpec(
        "etcd-server",
        "etcd/server",
        None,
        "etcd-ca",
        eku=(_S, _C),
        sans="etcd-server",
        help="serving certificate of etcd",
    ),
    CertSpec(
        "etcd-peer",
        "etcd/peer",
        None,
        "etcd-ca",
        eku=(_S, _C),
        sans="etcd-peer",
        help="certificate etcd members use with each other",
    ),
    CertSpec(
        "etcd-healthcheck-client",
        "etcd/healthcheck-client",
        "kube-etcd-healthcheck-client",
        "etcd-ca",
        eku=(_C,),
        help="client certificate of etcd liveness probes",
    ),
    CertSpec(
        "apiserver-etcd-client",
        "apiserver-etcd-client",
        "kube-apiserver-etcd-client",
        "etcd-ca",
        eku=(_C,),
        help="API server's client certificate to etcd",
    ),
)
BY_NAME = {s.name: s for s in CATALOGUE}
NAMES = tuple(BY_NAME) + ("sa",)
ETCD_NAMES = frozenset(s.name for s in CATALOGUE if s.name.startswith("etcd") or s.ca == "etcd-ca")


def select(cfg: PKIConfig, only: Sequence[str] | None = None) -> list[str]:
    """Names to plan, in kubeadm's order; etcd ones are left out with external etcd."""
    in_use = [n for n in NAMES if not (cfg.external_etcd and n in ETCD_NAMES)]
    if not only or "all" in only:
        return in_use
    unknown = [n for n in only if n not in NAMES]
    if unknown:
        raise UserError(f"unknown certificate {unknown[0]!r}: must be all or one of {', '.join(NAMES)}")
    unused = [n for n in only if n not in in_use]
    if unused:
        raise UserError(f"certificate {unused[0]!r} is not used with external etcd")
    return [n for n in in_use if n in only]


# --- subject alternative names ----------------------------------------------------------


def _extra_sans(values, cert_name, dns, ips, warnings):
    for v in values:
        ip = parse_ip(v)
        if ip is not None:
            ips.append(ip)
        elif is_dns1123_subdomain(v) or is_dns1123_subdomain(v, wildcard=True):
            dns.append(v)
        else:
            warnings.append(
                f"{v!r} was not added to the {cert_name} certificate's SANs: "
                "it is not an IP address nor an RFC-1123 DNS name"
            )


def alt_names(spec: CertSpec, cfg: PKIConfig) -> tuple[tuple[str, ...], tuple[cu.IP, ...], list[str]]:
    """(DNS names sorted and unique, IPs unique in order, warnings) for rule A or B."""
    dns: list[str] = []
    ips: list[cu.IP] = []
    warnings: list[str] = []
    if spec.sans == "apiserver":
        dns = [
            cfg.node_name,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{cfg.dns_domain}",
        ]
        ips = [service_vip(cfg.service_subnet), cfg.advertise_ip]
        if cfg.control_plane_endpoint:
            host, _ = parse_host_port(cfg.control_plane_endpoint)
            ip = parse_ip(host)
            if ip is not None:
                ips.append(ip)
            else:
                dns.append(host)
        _extra_sans(cfg.apiserver_cert_sans, spec.name, dns, ips, warnings)
    elif spec.sans in ("etcd-server", "etcd-peer"):
        dns = [cfg.node_name, "localhost"]
        ips = [cfg.advertise_ip, ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        extra = cfg.etcd_server_sans if spec.sans == "etcd-server" else cfg.etcd_peer_sans
        _extra_sans(extra, spec.name, dns, ips, warnings)
    return tuple(sorted(set(dns))), tuple(dict.fromkeys(ips)), warnings


def template(spec: CertSpec, cfg: PKIConfig) -> tuple[cu.CertTemplate, list[str]]:
    cn = spec.cn or cfg.node_name
    if spec.is_ca:  # kubeadm's CA template carries its CN as the only DNS SAN
        return cu.CertTemplate(cn=cn, dns=(cn,), is_ca=True), []
    dns, ips, warnings = alt_names(spec, cfg)
    return cu.CertTemplate(cn=cn, orgs=spec.orgs, dns=dns, ips=ips, eku=spec.eku), warnings
