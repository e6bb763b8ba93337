"""Validation of a whole spec: everything that can be caught before a host is touched.

It only reads: defaults and normal forms are the reader's (and the model's) job.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NoReturn

from kubeinit.errors import SpecError

from .model import CNIS, DEFAULT_VERSION, KEY_ALGORITHMS, ROLES, SUPPORTED_MINORS, VERSION_RE, ClusterSpec

DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Four dot-separated numbers: meant as an IPv4 address, so it must be one (999.1.1.1 is not a host name).
_DOTTED_QUAD = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_BASTION = re.compile(r"(?:[a-z_][a-z0-9_.-]*@)?[A-Za-z0-9.:\[\]-]+")


def validate(spec: ClusterSpec) -> None:
    src = spec.source

    def fail(path: str, msg: str) -> NoReturn:
        raise SpecError(path, msg, src)

    if not DNS1123_SUB.match(spec.name or "") or len(spec.name) > 63:
        fail("name", f"{spec.name!r} is not a valid cluster name (lower-case letters, digits, '-' and '.')")
    m = VERSION_RE.match(spec.kubernetes_version.strip())
    if not m:
        fail("kubernetesVersion", f"{spec.kubernetes_version!r} is not a version like {DEFAULT_VERSION}")
    major, minor = int(m.group(1)), int(m.group(2))
    # the minors kubeinit sets up itself; a cloud cluster's version is managed.version, the cloud's to judge
    if major != 1 or (minor not in SUPPORTED_MINORS and spec.managed is None):
        fail(
            "kubernetesVersion",
            f"{spec.kubernetes_version!r} is not supported; use v1.{SUPPORTED_MINORS[0]}.x "
            f"to v1.{SUPPORTED_MINORS[-1]}.x",
        )
    if not 1 <= spec.bind_port <= 65535:
        fail("bindPort", f"{spec.bind_port} is not a TCP port (1-65535)")
    if spec.control_plane_endpoint is not None:
        _check_endpoint(spec.control_plane_endpoint, "controlPlaneEndpoint", fail)

    nets = _networks(spec, fail)
    _check_pki(spec, fail)
    for comp, args in spec.extra_args.items():
        for k in args:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", k):
                fail(f"components.{comp}.extraArgs.{k}", "is not a flag name (write it without leading dashes)")

    if spec.managed is not None:
        if spec.hosts:
            fail(
                "managed",
                "cannot be given with hosts: a cluster file describes either hosts kubeinit sets up "
                "or a managed cloud cluster; split it into two files",
            )
    else:
        _check_hosts(spec, nets, fail)
    from .containerd import check_containerd

    check_containerd(spec, fail)
    if spec.artifacts.mirror is not None and not re.match(r"^(https?://|/|file://)", spec.artifacts.mirror):
        fail("artifacts.mirror", f"{spec.artifacts.mirror!r} must be an http(s) URL or an absolute directory")
    if (spec.artifacts.mirror or "").lower().startswith("http://") and not spec.artifacts.allow_insecure_mirror:
        fail(
            "artifacts.mirror",
            f"{spec.artifacts.mirror!r} is plain http, where anyone on the way can swap an "
            "artifact and its checksum file; use https or a directory, or set artifacts.allowInsecureMirror: true",
        )


def _networks(spec: ClusterSpec, fail) -> dict[str, list]:
    net = spec.networking
    nets: dict[str, list] = {}
    for key, value in (("serviceSubnet", net.service_subnet), ("podSubnet", net.pod_subnet)):
        path = f"networking.{key}"
        cidrs = []
        if key == "podSubnet" and not value.strip():
            nets[key] = []  # none, as kubeadm's default: the controller-manager then allocates no node CIDRs
            continue
        for part in value.split(","):
            try:
                cidrs.append(ipaddress.ip_network(part.strip(), strict=True))
            except ValueError as e:
                why = "has host bits set" if "host bits" in str(e) else "is not a CIDR like 10.96.0.0/12"
                fail(path, f"{part.strip()!r} {why}")
        if len(cidrs) > 2 or (len(cidrs) == 2 and cidrs[0].version == cidrs[1].version):
            fail(path, f"{value!r}: give one CIDR, or one IPv4 and one IPv6 for dual-stack")
        nets[key] = cidrs
    svc = nets["serviceSubnet"][0]
    if svc.num_addresses < 10 or svc.max_prefixlen - svc.prefixlen > 20:
        fail(
            "networking.serviceSubnet",
            f"{net.service_subnet!r} must hold at least 10 addresses and at most "
            f"2^20 (a /{svc.max_prefixlen - 20} or smaller)",
        )
    for a in nets["serviceSubnet"]:
        for b in nets["podSubnet"]:
            if a.overlaps(b):
                fail(
                    "networking.podSubnet",
                    f"{str(b)!r} overlaps the service subnet {str(a)!r}; choose ranges that do not overlap",
                )
    if not DNS1123_SUB.match(net.dns_domain):
        fail("networking.dnsDomain", f"{net.dns_domain!r} is not a DNS domain")
    _check_cni(net.cni, nets["podSubnet"], fail)
    return nets


def _check_cni(cni: str, pods: list, fail) -> None:
    if cni not in CNIS:
        fail("networking.cni", f"{cni!r} is not one of {', '.join(CNIS)}")
    if cni == "none":
        return
    if not pods:
        fail("networking.podSubnet", f"is empty, but networking.cni {cni} needs the pods' range (e.g. 10.244.0.0/16)")
    # the controller-manager gives each node a /24 (IPv4) or a /64 (IPv6) of it (IPv6: at most 2^16 of them)
    for c in pods:
        low, node = (0, 24) if c.version == 4 else (48, 64)
        if c.prefixlen > node:
            fail("networking.podSubnet", f"{str(c)!r} is smaller than a /{node}, which each node gets of it")
        if c.prefixlen < low:
            fail(
                "networking.podSubnet", f"{str(c)!r} is larger than a /{low}: the controller-manager allocates no more"
            )
    if cni == "flannel" and pods[0].version != 4:
        fail("networking.podSubnet", "flannel needs an IPv4 range first (an IPv6 one may follow for dual-stack)")
    if cni == "calico" and pods[0].version != 4:
        # kubeinit's calico layout peers over IPv4 (BIRD, IPIP): an IPv6-only cluster needs another one
        fail(
            "networking.podSubnet",
            "calico as kubeinit sets it up (BGP and IPIP over IPv4) needs an IPv4 range first (an IPv6 one "
            "may follow for dual-stack); for IPv6 only, use bridge, or none and install a pod network yourself",
        )


def _check_pki(spec: ClusterSpec, fail) -> None:
    pki = spec.pki
    if pki.algorithm not in KEY_ALGORITHMS:
        fail("pki.keyAlgorithm", f"{pki.algorithm!r} is not one of {', '.join(KEY_ALGORITHMS)}")
    if pki.validity_hours > pki.ca_validity_hours:
        fail("pki.certificateValidity", "is longer than the CA's validity; leaf certificates cannot outlive their CA")
    if not pki.cert_dir.startswith("/"):
        fail("pki.certificatesDir", f"{pki.cert_dir!r} must be an absolute path")
    for i, san in enumerate(pki.cert_sans):
        if not (is_ip(san) or DNS1123_SUB.match(san.lower().removeprefix("*."))):
            fail(f"pki.certSANs[{i}]", f"{san!r} is neither an IP address nor a DNS name")


def _check_hosts(spec: ClusterSpec, nets: dict[str, list], fail) -> None:
    if not spec.hosts:
        fail("hosts", "is empty; list at least one control-plane host")
    names: dict[str, int] = {}
    addrs: dict[str, int] = {}
    for i, h in enumerate(spec.hosts):
        base = f"hosts[{i}]"
        if h.role not in ROLES:
            fail(f"{base}.role", f"{h.role!r} is not one of {', '.join(ROLES)}")
        if not DNS1123_SUB.match(h.name) or len(h.name) > 253:
            fail(f"{base}.name", f"{h.name!r} is not a valid node name (lower-case letters, digits, '-' and '.')")
        if h.name in names:
            fail(f"{base}.name", f"{h.name!r} is already used by hosts[{names[h.name]}]; host names must be unique")
        names[h.name] = i
        if _DOTTED_QUAD.match(h.address) and not is_ip(h.address):
            fail(f"{base}.address", f"{h.address!r} is not a valid IPv4 address (four numbers 0-255, no leading zeros)")
        if not (is_ip(h.address) or DNS1123_SUB.match(h.address.lower())):
            fail(f"{base}.address", f"{h.address!r} is neither an IP address nor a host name")
        if h.address in addrs:
            fail(f"{base}.address", f"{h.address!r} is already used by hosts[{addrs[h.address]}]")
        addrs[h.address] = i
        if is_ip(h.address):
            ip = ipaddress.ip_address(h.address)
            for key, cidrs in nets.items():
                for c in cidrs:
                    if ip in c:
                        fail(
                            f"{base}.address",
                            f"{h.address} lies inside networking.{key} {str(c)!r}; "
                            "host addresses must be outside the cluster's ranges",
                        )
        if not 1 <= h.ssh.port <= 65535:
            fail(f"{base}.ssh.port", f"{h.ssh.port} is not a TCP port (1-65535)")
        if not re.fullmatch(r"[a-z_][a-z0-9_.-]*", h.ssh.user):
            fail(f"{base}.ssh.user", f"{h.ssh.user!r} is not a user name")
        if h.ssh.bastion is not None and not _BASTION.fullmatch(h.ssh.bastion):
            fail(f"{base}.ssh.bastion", f"{h.ssh.bastion!r} is not user@host[:port]")
    if not spec.control_planes:
        fail("hosts", "has no host with role control-plane; give at least one")
    if len(spec.control_planes) > 1 and not spec.control_plane_endpoint:
        fail(
            "controlPlaneEndpoint",
            "is required with more than one control-plane host (a load balancer or DNS name in front of them)",
        )


def _check_endpoint(value: str, path: str, fail) -> None:
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port is not None and (not port.isdigit() or not 1 <= int(port) <= 65535):
        fail(path, f"{value!r} has an invalid port; use host or host:port")
    if not (is_ip(host) or DNS1123_SUB.match(host.lower())):
        fail(path, f"{value!r} is not host or host:port")


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False
