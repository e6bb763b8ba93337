"""The cluster spec's model: frozen values, built once by the reader and never changed after.

Lists are tuples and mappings read-only views, so a phase cannot change what another phase
reads; a changed spec (flag overrides) is a new one made with dataclasses.replace.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubeinit.managed.spec import ManagedSpec

API_VERSION = "kubeinit.dev/v1alpha1"
KUBEADM_API = "kubeadm.k8s.io/v1beta4"
ROLES = ("control-plane", "worker")
KEY_ALGORITHMS = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256")
# Minor releases whose kubeadm layout (v1beta4 config, super-admin.conf,
# kubeadm:cluster-admins) kubeinit reproduces.
SUPPORTED_MINORS = range(31, 36)
DEFAULT_VERSION = "v1.34.2"
COMPONENTS = ("apiServer", "controllerManager", "scheduler", "etcd", "kubelet")
# networking.cni: the pod network kubeinit applies (none: the user brings one).
CNIS = ("flannel", "calico", "bridge", "none")

# Versions pinned by this release of kubeinit (overridable in `artifacts:`).
DEFAULT_ARTIFACTS = {
    "containerd": "1.7.24",
    "runc": "1.2.3",
    "cni-plugins": "1.6.2",
    "crictl": "1.33.0",
    "etcd": "3.5.17",
}
# Their version is the cluster's kubernetesVersion unless artifacts.<name>.version is given;
# kubeadm is installed only when artifacts.kubeadm.enabled is true.
KUBERNETES_BINARIES = ("kubelet", "kubectl", "kubeadm")

VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def normal_version(v: str) -> str:
    """`1.32.0` as `v1.32.0`, for a supported version; anything else as given, for validate() to name."""
    m = VERSION_RE.match(v.strip()) if isinstance(v, str) else None
    if m and int(m.group(1)) == 1 and int(m.group(2)) in SUPPORTED_MINORS:
        return "v" + v.strip().lstrip("v")
    return v


def frozen_map(d: Mapping | None = None, inner=None) -> Mapping:
    """A read-only view of a copy of `d` (values passed through `inner`, if given)."""
    return MappingProxyType({k: inner(v) if inner else v for k, v in (d or {}).items()})


def frozen_tree(value: Any) -> Any:
    """A read-only copy of nested YAML values: mappings as read-only views, lists as tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen_tree(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen_tree(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """frozen_tree's value as plain dicts and lists again (to serialise it)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value


def _set(obj, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # only in __post_init__: coerces what the constructor was given


@dataclass(frozen=True)
class SSHOptions:
    user: str = "root"
    port: int = 22
    key: str | None = None
    bastion: str | None = None  # user@host[:port], as ssh's ProxyJump


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    role: str = "control-plane"
    ssh: SSHOptions = field(default_factory=SSHOptions)
    local: bool = False  # the machine kubeinit runs on (kubeinit init)

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"


@dataclass(frozen=True)
class Networking:
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str = "10.244.0.0/16"
    dns_domain: str = "cluster.local"
    cni: str = "flannel"

    @property
    def service_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.service_subnet.split(",")[0].strip())

    @property
    def dns_ip(self) -> str:
        return str(self.service_network.network_address + 10)


@dataclass(frozen=True)
class PKIOptions:
    algorithm: str = "RSA-2048"
    validity_hours: int = 8760
    ca_validity_hours: int = 87600
    cert_sans: tuple[str, ...] = ()
    cert_dir: str = "/etc/kubernetes/pki"

    def __post_init__(self):
        _set(self, "cert_sans", tuple(self.cert_sans))


@dataclass(frozen=True)
class Artifact:
    version: str
    sha256: str | None = None  # a pinned digest; else the release's published one
    enabled: bool = True  # `enabled: false`: kubeinit leaves this component to the user


@dataclass(frozen=True)
class ImageArchive:
    """`artifacts.images[]`: an image tarball (docker-archive or OCI layout, as `docker save`,
    `ctr export` or `skopeo copy` write it) imported into containerd's k8s.io namespace on every
    host, once. `names` are the references the tarball holds, as containerd lists them (one, or
    several for a bundle that `docker save a b c` wrote); `sha256` the tarball's digest (required:
    there is no published checksum to fall back on)."""

    names: tuple[str, ...]
    sha256: str
    url: str | None = None  # http(s):// or file:// - downloaded once into kubeinit's cache
    path: str | None = None  # a local file (relative: to the cluster file's directory)

    def __post_init__(self):
        _set(self, "names", tuple(self.names))

    @property
    def label(self) -> str:
        return ", ".join(self.names)


@dataclass(frozen=True)
class Artifacts:
    mirror: str | None = None  # URL or directory replacing the upstream hosts
    arch: str | None = None  # default: detected per host
    components: Mapping[str, Artifact] = field(default_factory=frozen_map)
    # Versions outside kubeinit's checksum table are refused unless pinned, or allowed here (then
    # the mirror's own checksum file is trusted); a plain-http mirror is refused unless allowed.
    allow_unlisted_versions: bool = False
    allow_insecure_mirror: bool = False
    images: tuple[ImageArchive, ...] = ()  # imported into containerd (air-gapped sites)

    def __post_init__(self):
        _set(self, "components", frozen_map(self.components))
        _set(self, "images", tuple(self.images))


@dataclass(frozen=True)
class ContainerdSettings:
    """`runtime.containerd`: containerd CRI options kubeinit does not set itself. The typed ones
    are written in the layout of the config version the installed containerd reads (2 or 3);
    `config_patch` is TOML merged last over kubeinit's whole config, for anything else."""

    restrict_oom_score_adj: bool = False  # hosts without CAP_SYS_RESOURCE (LXC, nested containers)
    sandbox_image: str | None = None  # default: <imageRepository>/pause:<kubeadm's version>
    registry_mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)  # registry -> mirror URLs
    config_patch: str = ""

    def __post_init__(self):
        _set(self, "registry_mirrors", frozen_map(self.registry_mirrors, tuple))

    @property
    def given(self) -> bool:
        return bool(self.restrict_oom_score_adj or self.sandbox_image or self.registry_mirrors or self.config_patch)


@dataclass(frozen=True)
class RuntimeSettings:
    containerd: ContainerdSettings = field(default_factory=ContainerdSettings)


@dataclass(frozen=True)
class ProxySettings:
    """`proxy`: the kube-proxy addon (kubeadm's ClusterConfiguration.proxy); `config` holds the
    user's KubeProxyConfiguration fields, merged over kubeinit's (spec/addons.py checks them)."""

    disabled: bool = False
    config: Mapping[str, Any] = field(default_factory=frozen_map)

    def __post_init__(self):
        _set(self, "config", frozen_tree(self.config))


@dataclass(frozen=True)
class DNSSettings:
    """`dns`: the CoreDNS addon (kubeadm's ClusterConfiguration.dns): the image is
    <imageRepository>/coredns:<kubeadm's CoreDNS version for the minor> unless these are given."""

    disabled: bool = False
    image_repository: str | None = None
    image_tag: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster file: either `hosts` kubeinit sets up over SSH, or a `managed` cloud cluster."""

    name: str = "kubernetes"
    kubernetes_version: str = DEFAULT_VERSION
    control_plane_endpoint: str | None = None
    bind_port: int = 6443
    image_repository: str = "registry.k8s.io"
    networking: Networking = field(default_factory=Networking)
    hosts: tuple[Host, ...] = ()
    pki: PKIOptions = field(default_factory=PKIOptions)
    extra_args: Mapping[str, Mapping[str, str]] = field(default_factory=frozen_map)
    artifacts: Artifacts = field(default_factory=Artifacts)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    kubeconfig_dir: str = "/etc/kubernetes"
    managed: ManagedSpec | None = None
    source: str | None = None  # the file it came from, for messages

    def __post_init__(self):
        _set(self, "kubernetes_version", normal_version(self.kubernetes_version))
        _set(self, "hosts", tuple(self.hosts))
        _set(self, "extra_args", frozen_map(self.extra_args, frozen_map))

    @property
    def control_planes(self) -> list[Host]:
        return [h for h in self.hosts if h.is_control_plane]

    @property
    def workers(self) -> list[Host]:
        return [h for h in self.hosts if not h.is_control_plane]

    @property
    def first_control_plane(self) -> Host:
        return self.control_planes[0]

    @property
    def minor(self) -> int:
        m = VERSION_RE.match(self.kubernetes_version)
        if m is None:  # validate() refuses it first; a spec made in code may skip validate()
            raise ValueError(f"kubernetes version {self.kubernetes_version!r} is not like {DEFAULT_VERSION}")
        return int(m.group(2))

    def summary(self) -> str:
        """What the file describes, in a few words (`config validate`)."""
        if self.managed is not None:
            m = self.managed
            pools = len(m.node_pools)
            where = f" in {m.region}" if m.region else ""
            return f"a managed {m.provider} cluster {m.name!r}{where}, {pools} node pool{'s' if pools != 1 else ''}"
        return f"{len(self.hosts)} hosts, Kubernetes {self.kubernetes_version}"

    def artifact(self, name: str) -> Artifact:
        a = self.artifacts.components.get(name)
        if name in KUBERNETES_BINARIES:
            version = self.kubernetes_version.lstrip("v")
            if a is None:
                return Artifact(version, enabled=name != "kubeadm")
            return a if a.version else Artifact(version, a.sha256, a.enabled)
        return a if a is not None else Artifact(DEFAULT_ARTIFACTS[name])

    def api_endpoint(self) -> str:
        """https URL clients use: controlPlaneEndpoint rule (kubeadm §3)."""
        if self.control_plane_endpoint:
            host = self.control_plane_endpoint
            if not _has_port(host):
                host = f"{host}:{self.bind_port}"
            return f"https://{host}"
        return self.local_api_endpoint(self.first_control_plane)

    def local_api_endpoint(self, host: Host) -> str:
        return f"https://{_bracket(host.address)}:{self.bind_port}"


def _bracket(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def _has_port(hostport: str) -> bool:
    if hostport.startswith("["):
        return "]:" in hostport
    return hostport.count(":") == 1
