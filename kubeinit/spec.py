"""The cluster spec: loading, defaults and validation.

A cluster file is `apiVersion: kubeinit.dev/v1alpha1`, `kind: Cluster`, or
kubeadm's `kubeadm.k8s.io/v1beta4` InitConfiguration + ClusterConfiguration
documents (the fields the two share). Every error is a SpecError carrying the
YAML path, so the user reads one line like
`hosts[2].role: "master" is not one of control-plane, worker`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeinit.errors import SpecError

API_VERSION = "kubeinit.dev/v1alpha1"
KUBEADM_API = "kubeadm.k8s.io/v1beta4"
ROLES = ("control-plane", "worker")
KEY_ALGORITHMS = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256")
# Minor releases whose kubeadm layout (v1beta4 config, super-admin.conf,
# kubeadm:cluster-admins) kubeinit reproduces.
SUPPORTED_MINORS = range(31, 36)
DEFAULT_VERSION = "v1.34.2"
COMPONENTS = ("apiServer", "controllerManager", "scheduler", "etcd", "kubelet")

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass
class SSHOptions:
    user: str = "root"
    port: int = 22
    key: str | None = None
    bastion: str | None = None  # user@host[:port], as ssh's ProxyJump


@dataclass
class Host:
    name: str
    address: str
    role: str = "control-plane"
    ssh: SSHOptions = field(default_factory=SSHOptions)
    local: bool = False  # the machine kubeinit runs on (kubeinit init)

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"


@dataclass
class Networking:
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str = "10.244.0.0/16"
    dns_domain: str = "cluster.local"

    @property
    def service_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.service_subnet.split(",")[0].strip())

    @property
    def apiserver_service_ip(self) -> str:
        return str(self.service_network.network_address + 1)

    @property
    def dns_ip(self) -> str:
        return str(self.service_network.network_address + 10)


@dataclass
class PKIOptions:
    algorithm: str = "RSA-2048"
    validity_hours: int = 8760
    ca_validity_hours: int = 87600
    cert_sans: list[str] = field(default_factory=list)
    cert_dir: str = "/etc/kubernetes/pki"


@dataclass
class Artifact:
    version: str
    sha256: str | None = None  # a pinned digest; else the release's published one
    enabled: bool = True  # `enabled: false`: kubeinit leaves this component to the user


@dataclass
class Artifacts:
    mirror: str | None = None  # URL or directory replacing the upstream hosts
    arch: str | None = None  # default: detected per host
    components: dict[str, Artifact] = field(default_factory=dict)
    # Versions outside kubeinit's checksum table are refused unless pinned, or allowed here (then
    # the mirror's own checksum file is trusted); a plain-http mirror is refused unless allowed.
    allow_unlisted_versions: bool = False
    allow_insecure_mirror: bool = False
    images: list[ImageArchive] = field(default_factory=list)  # imported into containerd (air-gapped sites)


@dataclass
class ImageArchive:
    """`artifacts.images[]`: an image tarball (docker-archive or OCI layout, as `docker save`,
    `ctr export` or `skopeo copy` write it) imported into containerd's k8s.io namespace on every
    host, once. `names` are the references the tarball holds, as containerd lists them (one, or
    several for a bundle that `docker save a b c` wrote); `sha256` the tarball's digest (required:
    there is no published checksum to fall back on)."""

    names: list[str]
    sha256: str
    url: str | None = None  # http(s):// or file:// - downloaded once into kubeinit's cache
    path: str | None = None  # a local file (relative: to the cluster file's directory)

    @property
    def label(self) -> str:
        return ", ".join(self.names)


@dataclass
class ContainerdSettings:
    """`runtime.containerd`: containerd CRI options kubeinit does not set itself. The typed ones
    are written in the layout of the config version the installed containerd reads (2 or 3);
    `config_patch` is TOML merged last over kubeinit's whole config, for anything else."""

    restrict_oom_score_adj: bool = False  # hosts without CAP_SYS_RESOURCE (LXC, nested containers)
    sandbox_image: str | None = None  # default: <imageRepository>/pause:<kubeadm's version>
    registry_mirrors: dict[str, list[str]] = field(default_factory=dict)  # registry host -> mirror URLs
    config_patch: str = ""

    @property
    def given(self) -> bool:
        return bool(self.restrict_oom_score_adj or self.sandbox_image or self.registry_mirrors or self.config_patch)


@dataclass
class RuntimeSettings:
    containerd: ContainerdSettings = field(default_factory=ContainerdSettings)


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


@dataclass
class ClusterSpec:
    name: str = "kubernetes"
    kubernetes_version: str = DEFAULT_VERSION
    control_plane_endpoint: str | None = None
    bind_port: int = 6443
    image_repository: str = "registry.k8s.io"
    networking: Networking = field(default_factory=Networking)
    hosts: list[Host] = field(default_factory=list)
    pki: PKIOptions = field(default_factory=PKIOptions)
    extra_args: dict[str, dict[str, str]] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=Artifacts)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    kubeconfig_dir: str = "/etc/kubernetes"
    managed: dict[str, Any] | None = None
    source: str | None = None  # the file it came from, for messages

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
        return int(_VERSION_RE.match(self.kubernetes_version).group(2))  # validated

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


# --------------------------------------------------------------------------
# Reading raw YAML into a spec. `_Reader` walks a mapping and remembers the
# YAML path so every error names where it is.


class _Reader:
    def __init__(self, data: Any, path: str, source: str | None):
        self.path, self.source = path, source
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, not {_kind(data)}")
        self.data = data
        self.used: set[str] = set()

    def fail(self, msg: str, key: str | None = None):
        raise SpecError(self.sub(key) if key else self.path, msg, self.source)

    def sub(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool in (type(value),) and bool not in kinds:
            self.fail(f"must be {_names(kinds)}, not a boolean", key)
        if int in kinds and float not in kinds and isinstance(value, float):
            self.fail(f"must be {_names(kinds)}, not {value!r}", key)
        if not isinstance(value, kinds):
            if str in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)  # `version: 1.31` is a YAML float; take it as text
            self.fail(f"must be {_names(kinds)}, not {_kind(value)}", key)
        return value

    def child(self, key: str) -> "_Reader":
        return _Reader(self.get(key, dict, {}), self.sub(key), self.source)

    def done(self, allowed_extra: tuple[str, ...] = ()) -> None:
        unknown = [k for k in self.data if k not in self.used and k not in allowed_extra]
        if unknown:
            k = unknown[0]
            known = ", ".join(sorted(self.used))
            self.fail(f"unknown field {k!r} (known fields: {known})", str(k))


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "a boolean", type(None): "empty"}.get(type(v), type(v).__name__)


def _names(kinds: tuple) -> str:
    names = {str: "text", int: "an integer", dict: "a mapping", list: "a list", bool: "true or false",
             float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_file(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster file (kubeinit's or kubeadm's v1beta4)."""
    import yaml

    from kubeinit import userfile

    p = Path(path)
    try:
        text = userfile.read(p, "cluster file", userfile.CLUSTER_FILE_LIMIT, "pass the right file").decode()
    except FileNotFoundError:
        raise SpecError("", f"no such file {str(p)!r}; pass an existing cluster file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError("", f"cannot read {str(p)!r}: {e.__class__.__name__}") from None
    try:
        # libyaml's parser when PyYAML has it: the same documents, several times faster
        docs = [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise SpecError("", f"is not valid YAML at {where}: {problem}", str(p)) from None
    return load_documents(docs, source=str(p))


def load_documents(docs: list[Any], source: str | None = None) -> ClusterSpec:
    if not docs:
        raise SpecError("", "is empty; write a Cluster document (see `kubeinit config print init-defaults`)", source)
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise SpecError(f"document {i + 1}", f"must be a mapping, not {_kind(d)}", source)
    kinds = [(d.get("apiVersion"), d.get("kind")) for d in docs]
    if any(api == KUBEADM_API for api, _ in kinds):
        return _from_kubeadm(docs, source)
    if len(docs) > 1:
        raise SpecError("", f"holds {len(docs)} documents; a kubeinit cluster file holds one Cluster", source)
    return from_dict(docs[0], source)


def from_dict(raw: dict[str, Any], source: str | None = None) -> ClusterSpec:
    r = _Reader(raw, "", source)
    api = r.get("apiVersion", str)
    if api != API_VERSION:
        r.fail(f"{api!r} is not supported; use {API_VERSION} (or kubeadm's {KUBEADM_API})" if api
               else f"is missing; use {API_VERSION}", "apiVersion")
    kind = r.get("kind", str)
    if kind != "Cluster":
        r.fail(f"{kind!r} is not supported; use Cluster" if kind else "is missing; use Cluster", "kind")
    spec = ClusterSpec(source=source)
    spec.name = r.get("name", str, spec.name)
    spec.kubernetes_version = r.get("kubernetesVersion", str, spec.kubernetes_version)
    spec.control_plane_endpoint = r.get("controlPlaneEndpoint", str)
    spec.bind_port = r.get("bindPort", int, spec.bind_port)
    spec.image_repository = r.get("imageRepository", str, spec.image_repository)
    spec.kubeconfig_dir = r.get("kubeconfigDir", str, spec.kubeconfig_dir)

    n = r.child("networking")
    spec.networking = Networking(
        service_subnet=n.get("serviceSubnet", str, Networking.service_subnet),
        pod_subnet=n.get("podSubnet", str, Networking.pod_subnet),
        dns_domain=n.get("dnsDomain", str, Networking.dns_domain),
    )
    n.done()

    p = r.child("pki")
    spec.pki = PKIOptions(
        algorithm=p.get("keyAlgorithm", str, PKIOptions.algorithm),
        validity_hours=_hours(p, "certificateValidity", PKIOptions.validity_hours),
        ca_validity_hours=_hours(p, "caCertificateValidity", PKIOptions.ca_validity_hours),
        cert_sans=_str_list(p, "certSANs"),
        cert_dir=p.get("certificatesDir", str, PKIOptions.cert_dir),
    )
    p.done()

    hosts = r.get("hosts", list, [])
    spec.hosts = [_host(h, f"hosts[{i}]", source) for i, h in enumerate(hosts)]

    comps = r.child("components")
    for c in COMPONENTS:
        cr = comps.child(c)
        spec.extra_args[c] = _str_map(cr, "extraArgs")
        cr.done()
    comps.done()

    a = r.child("artifacts")
    images = _images(a)
    spec.artifacts = _artifacts(a)
    spec.artifacts.images = images

    rt = r.child("runtime")
    spec.runtime = RuntimeSettings(containerd=_containerd(rt.child("containerd")))
    rt.done()

    managed = r.get("managed", dict)
    spec.managed = managed
    r.done()
    validate(spec)
    return spec


def _host(raw: Any, path: str, source: str | None) -> Host:
    r = _Reader(raw, path, source)
    name = r.get("name", str)
    if not name:
        r.fail("is missing; every host needs a name", "name")
    address = r.get("address", str)
    if not address:
        r.fail("is missing; give the host's IP address or DNS name", "address")
    role = r.get("role", str, "worker")
    s = r.child("ssh")
    ssh = SSHOptions(user=s.get("user", str, "root"), port=s.get("port", int, 22),
                     key=s.get("key", str), bastion=s.get("bastion", str))
    s.done()
    r.done()
    return Host(name=name, address=address, role=role, ssh=ssh)


def _artifacts(a: _Reader) -> Artifacts:
    mirror = a.get("mirror", str)
    arch = a.get("arch", str)
    unlisted = a.get("allowUnlistedVersions", bool, False)
    insecure = a.get("allowInsecureMirror", bool, False)
    comps: dict[str, Artifact] = {}
    for key in list(a.data):
        if key in ("mirror", "arch", "allowUnlistedVersions", "allowInsecureMirror"):
            continue
        if key not in (*DEFAULT_ARTIFACTS, *KUBERNETES_BINARIES):
            continue  # reported by done() as unknown
        c = a.child(key)
        enabled = c.get("enabled", bool, key != "kubeadm")  # kubeadm: opt-in
        version = c.get("version", str)
        if not version and enabled and key not in KUBERNETES_BINARIES:  # those default to kubernetesVersion
            c.fail("is missing", "version")
        if not version:
            version = DEFAULT_ARTIFACTS.get(key, "")
        sha = c.get("sha256", str)
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            c.fail(f"{sha!r} is not a sha256 digest (64 hexadecimal characters)", "sha256")
        c.done()
        comps[key] = Artifact(version.lstrip("v"), sha.lower() if sha else None, enabled)
    a.done()
    if arch is not None and arch not in ("amd64", "arm64"):
        a.fail(f"{arch!r} is not one of amd64, arm64", "arch")
    return Artifacts(mirror=mirror, arch=arch, components=comps, allow_unlisted_versions=unlisted,
                     allow_insecure_mirror=insecure)


# A fully qualified reference, as containerd stores it: registry host first, then a tag or digest.
_IMAGE_REF = re.compile(r"^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|[a-z0-9.-]+:[0-9]+)(/[a-z0-9]+([._-]+[a-z0-9]+)*)+"
                        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def _images(a: _Reader) -> list[ImageArchive]:
    items = a.get("images", list, [])
    out: list[ImageArchive] = []
    base = Path(a.source).expanduser().resolve().parent if a.source and not a.source.startswith("(") else Path.cwd()
    for i, raw in enumerate(items):
        c = _Reader(raw, f"{a.sub('images')}[{i}]", a.source)
        name, names, sha = c.get("name", str), c.get("names", list), c.get("sha256", str)
        url, path = c.get("url", str), c.get("path", str)
        c.done()
        if (name is None) == (names is None):
            c.fail("give the image reference the tarball holds as name (e.g. registry.k8s.io/pause:3.10), or "
                   "several as names", "names" if names is not None else "name")
        key, names = ("name", [name]) if name is not None else ("names", names)
        if not names:
            c.fail("is empty; list the image references the tarball holds", key)
        for j, n in enumerate(names):
            where = key if key == "name" else f"names[{j}]"
            if not isinstance(n, str) or not _IMAGE_REF.match(n) or not re.search(r"(:[^/]+|@sha256:[0-9a-f]{64})$", n):
                c.fail(f"{n!r} is not a full image reference with a tag, as containerd lists it (e.g. "
                       "registry.k8s.io/kube-apiserver:v1.31.4, docker.io/library/busybox:1.36)", where)
            if n in names[:j] or any(n in x.names for x in out):
                c.fail(f"{n!r} is listed twice", where)
        if (url is None) == (path is None):
            c.fail("give either url or path (where the image tarball is)", "url" if url else "")
        if url is not None and not re.match(r"^(https?|file)://\S+$", url):
            c.fail(f"{url!r} must be an http(s):// or file:// URL", "url")
        if not sha or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            c.fail("is missing; every image tarball needs its sha256 (`sha256sum FILE`)" if not sha else
                   f"{sha!r} is not a sha256 digest (64 hexadecimal characters)", "sha256")
        if path is not None:
            path = str(base / Path(path).expanduser())
        out.append(ImageArchive(list(names), sha.lower(), url, path))
    return out


_REGISTRY = re.compile(r"^(_default|[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?)$")


def _containerd(c: _Reader) -> ContainerdSettings:
    out = ContainerdSettings(restrict_oom_score_adj=c.get("restrictOOMScoreAdj", bool, False),
                             sandbox_image=c.get("sandboxImage", str), config_patch=c.get("configPatch", str, ""))
    if out.sandbox_image is not None and not re.fullmatch(r"[a-z0-9][^\s\"\\]*", out.sandbox_image):
        c.fail(f"{out.sandbox_image!r} is not an image reference like registry.k8s.io/pause:3.10", "sandboxImage")
    mirrors = c.get("registryMirrors", dict, {})
    for host, urls in mirrors.items():
        path = f"{c.sub('registryMirrors')}.{host}"
        if not isinstance(host, str) or not _REGISTRY.match(host):
            raise SpecError(path, "is not a registry host (docker.io, registry.example.com:5000, or _default for "
                            "every registry)", c.source)
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls:
            raise SpecError(path, "must list one or more mirror URLs", c.source)
        for i, u in enumerate(urls):
            if not isinstance(u, str) or not re.fullmatch(r"https?://[^\s\"\\/]+(/[^\s\"\\]*)?", u):
                raise SpecError(f"{path}[{i}]", f"{u!r} is not an http(s) URL of a registry mirror", c.source)
        out.registry_mirrors[host] = list(urls)
    if out.config_patch:
        import tomllib

        try:
            tomllib.loads(out.config_patch)
        except tomllib.TOMLDecodeError as e:
            c.fail(f"is not valid TOML: {e}", "configPatch")
    c.done()
    return out


def _str_list(r: _Reader, key: str) -> list[str]:
    items = r.get(key, list, [])
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v:
            raise SpecError(f"{r.sub(key)}[{i}]", f"must be non-empty text, not {_kind(v)}", r.source)
    return list(items)


def _str_map(r: _Reader, key: str) -> dict[str, str]:
    m = r.get(key, dict, {})
    out = {}
    for k, v in m.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, (str, int, float)):
            raise SpecError(f"{r.sub(key)}.{k}", f"must be text, not {_kind(v)}", r.source)
        out[str(k)] = str(v)
    return out


def _hours(r: _Reader, key: str, default: int) -> int:
    v = r.get(key, str)
    if v is None:
        return default
    return parse_duration_hours(v, r.sub(key), r.source)


def parse_duration_hours(v: str, path: str, source: str | None = None) -> int:
    m = _DURATION_RE.match(v.strip())
    if not v.strip() or not m or not any(m.groups()):
        raise SpecError(path, f"{v!r} is not a duration like 8760h", source)
    h, mi, s = (int(g or 0) for g in m.groups())
    hours = h + mi // 60 + s // 3600
    if hours < 1:
        raise SpecError(path, f"{v!r} is shorter than one hour", source)
    return hours


# --------------------------------------------------------------------------
# kubeadm's v1beta4 InitConfiguration + ClusterConfiguration


def _from_kubeadm(docs: list[dict], source: str | None) -> ClusterSpec:
    spec = ClusterSpec(source=source)
    node_name = advertise = None
    for i, d in enumerate(docs):
        api, kind = d.get("apiVersion"), d.get("kind")
        base = f"document {i + 1} ({kind or 'no kind'})"
        if api != KUBEADM_API:
            if kind in ("KubeletConfiguration", "KubeProxyConfiguration"):
                continue  # accepted by kubeadm; kubeinit keeps its own defaults for now
            raise SpecError(f"{base}.apiVersion", f"{api!r} cannot be mixed with {KUBEADM_API}", source)
        r = _Reader(d, "", source)
        r.used |= {"apiVersion", "kind"}
        if kind == "InitConfiguration":
            nr = r.child("nodeRegistration")
            node_name = nr.get("name", str)
            nr.used |= {"criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors",
                        "imagePullPolicy", "imagePullSerial"}
            nr.done()
            le = r.child("localAPIEndpoint")
            advertise = le.get("advertiseAddress", str)
            spec.bind_port = le.get("bindPort", int, spec.bind_port)
            le.done()
            r.used |= {"bootstrapTokens", "dryRun", "certificateKey", "skipPhases", "patches", "timeouts"}
            r.done()
        elif kind == "ClusterConfiguration":
            spec.name = r.get("clusterName", str, spec.name)
            spec.kubernetes_version = r.get("kubernetesVersion", str, spec.kubernetes_version)
            spec.control_plane_endpoint = r.get("controlPlaneEndpoint", str)
            spec.image_repository = r.get("imageRepository", str, spec.image_repository)
            spec.pki.cert_dir = r.get("certificatesDir", str, spec.pki.cert_dir)
            spec.pki.algorithm = r.get("encryptionAlgorithm", str, spec.pki.algorithm)
            spec.pki.validity_hours = _hours(r, "certificateValidityPeriod", spec.pki.validity_hours)
            spec.pki.ca_validity_hours = _hours(r, "caCertificateValidityPeriod", spec.pki.ca_validity_hours)
            n = r.child("networking")
            spec.networking.service_subnet = n.get("serviceSubnet", str, spec.networking.service_subnet)
            spec.networking.pod_subnet = n.get("podSubnet", str, spec.networking.pod_subnet)
            spec.networking.dns_domain = n.get("dnsDomain", str, spec.networking.dns_domain)
            n.done()
            for key, comp in (("apiServer", "apiServer"), ("controllerManager", "controllerManager"),
                              ("scheduler", "scheduler")):
                c = r.child(key)
                spec.extra_args[comp] = _kubeadm_args(c)
                if key == "apiServer":
                    spec.pki.cert_sans = _str_list(c, "certSANs")
                c.used |= {"extraVolumes", "extraEnvs"}
                c.done()
            r.used |= {"etcd", "dns", "proxy", "featureGates"}
            r.done()
        else:
            raise SpecError(f"{base}.kind", f"{kind!r} is not supported here; use InitConfiguration and "
                            "ClusterConfiguration", source)
    name = node_name or _local_hostname()
    spec.hosts = [Host(name=name, address=advertise or default_address(), role="control-plane", local=True)]
    validate(spec)
    return spec


def _kubeadm_args(r: _Reader) -> dict[str, str]:
    items = r.get("extraArgs", list, [])
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        path = f"{r.sub('extraArgs')}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SpecError(path, "must be a mapping with name and value (v1beta4 list form)", r.source)
        out[item["name"]] = str(item.get("value", ""))
    return out


# --------------------------------------------------------------------------
# Validation of a whole spec: everything that can be caught before a host is touched.


def validate(spec: ClusterSpec) -> None:
    src = spec.source

    def fail(path: str, msg: str):
        raise SpecError(path, msg, src)

    if not _DNS1123_SUB.match(spec.name or "") or len(spec.name) > 63:
        fail("name", f"{spec.name!r} is not a valid cluster name (lower-case letters, digits, '-' and '.')")
    m = _VERSION_RE.match(spec.kubernetes_version.strip())
    if not m:
        fail("kubernetesVersion", f"{spec.kubernetes_version!r} is not a version like {DEFAULT_VERSION}")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 1 or minor not in SUPPORTED_MINORS:
        fail("kubernetesVersion", f"{spec.kubernetes_version!r} is not supported; use v1.{SUPPORTED_MINORS[0]}.x "
             f"to v1.{SUPPORTED_MINORS[-1]}.x")
    spec.kubernetes_version = "v" + spec.kubernetes_version.strip().lstrip("v")
    if not 1 <= spec.bind_port <= 65535:
        fail("bindPort", f"{spec.bind_port} is not a TCP port (1-65535)")
    if spec.control_plane_endpoint is not None:
        _check_endpoint(spec.control_plane_endpoint, "controlPlaneEndpoint", fail)

    net = spec.networking
    nets = {}
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
        fail("networking.serviceSubnet", f"{net.service_subnet!r} must hold at least 10 addresses and at most "
             f"2^20 (a /{svc.max_prefixlen - 20} or smaller)")
    for a in nets["serviceSubnet"]:
        for b in nets["podSubnet"]:
            if a.overlaps(b):
                fail("networking.podSubnet", f"{str(b)!r} overlaps the service subnet {str(a)!r}; choose "
                     "ranges that do not overlap")
    if not _DNS1123_SUB.match(net.dns_domain):
        fail("networking.dnsDomain", f"{net.dns_domain!r} is not a DNS domain")

    pki = spec.pki
    if pki.algorithm not in KEY_ALGORITHMS:
        fail("pki.keyAlgorithm", f"{pki.algorithm!r} is not one of {', '.join(KEY_ALGORITHMS)}")
    if pki.validity_hours > pki.ca_validity_hours:
        fail("pki.certificateValidity", "is longer than the CA's validity; leaf certificates cannot outlive their CA")
    if not pki.cert_dir.startswith("/"):
        fail("pki.certificatesDir", f"{pki.cert_dir!r} must be an absolute path")
    for i, san in enumerate(pki.cert_sans):
        if not (_is_ip(san) or _DNS1123_SUB.match(san.lower().removeprefix("*."))):
            fail(f"pki.certSANs[{i}]", f"{san!r} is neither an IP address nor a DNS name")

    for comp, args in spec.extra_args.items():
        for k in args:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", k):
                fail(f"components.{comp}.extraArgs.{k}", "is not a flag name (write it without leading dashes)")

    if not spec.hosts:
        fail("hosts", "is empty; list at least one control-plane host")
    names: dict[str, int] = {}
    addrs: dict[str, int] = {}
    for i, h in enumerate(spec.hosts):
        base = f"hosts[{i}]"
        if h.role not in ROLES:
            fail(f"{base}.role", f"{h.role!r} is not one of {', '.join(ROLES)}")
        if not _DNS1123_SUB.match(h.name) or len(h.name) > 253:
            fail(f"{base}.name", f"{h.name!r} is not a valid node name (lower-case letters, digits, '-' and '.')")
        if h.name in names:
            fail(f"{base}.name", f"{h.name!r} is already used by hosts[{names[h.name]}]; host names must be unique")
        names[h.name] = i
        if not (_is_ip(h.address) or _DNS1123_SUB.match(h.address.lower())):
            fail(f"{base}.address", f"{h.address!r} is neither an IP address nor a host name")
        if h.address in addrs:
            fail(f"{base}.address", f"{h.address!r} is already used by hosts[{addrs[h.address]}]")
        addrs[h.address] = i
        if _is_ip(h.address):
            ip = ipaddress.ip_address(h.address)
            for key, cidrs in nets.items():
                for c in cidrs:
                    if ip in c:
                        fail(f"{base}.address", f"{h.address} lies inside networking.{key} {str(c)!r}; "
                             "host addresses must be outside the cluster's ranges")
        if not 1 <= h.ssh.port <= 65535:
            fail(f"{base}.ssh.port", f"{h.ssh.port} is not a TCP port (1-65535)")
        if not re.fullmatch(r"[a-z_][a-z0-9_.-]*", h.ssh.user):
            fail(f"{base}.ssh.user", f"{h.ssh.user!r} is not a user name")
        if h.ssh.bastion is not None and not re.fullmatch(r"(?:[a-z_][a-z0-9_.-]*@)?[A-Za-z0-9.:\[\]-]+", h.ssh.bastion):
            fail(f"{base}.ssh.bastion", f"{h.ssh.bastion!r} is not user@host[:port]")
    if not spec.control_planes:
        fail("hosts", "has no host with role control-plane; give at least one")
    if len(spec.control_planes) > 1 and not spec.control_plane_endpoint:
        fail("controlPlaneEndpoint", "is required with more than one control-plane host (a load balancer or "
             "DNS name in front of them)")
    _check_containerd(spec, fail)
    if spec.artifacts.mirror is not None and not re.match(r"^(https?://|/|file://)", spec.artifacts.mirror):
        fail("artifacts.mirror", f"{spec.artifacts.mirror!r} must be an http(s) URL or an absolute directory")
    if (spec.artifacts.mirror or "").lower().startswith("http://") and not spec.artifacts.allow_insecure_mirror:
        fail("artifacts.mirror", f"{spec.artifacts.mirror!r} is plain http, where anyone on the way can swap an "
             "artifact and its checksum file; use https or a directory, or set artifacts.allowInsecureMirror: true")


# In config version 3 (containerd 2.x) the CRI options moved out of io.containerd.grpc.v1.cri,
# which keeps only its streaming server's; version 2 (containerd 1.x) knows no cri.v1 plugins.
_CRI_V3_KEEPS = {"disable_tcp_service", "stream_server_address", "stream_server_port", "stream_idle_timeout",
                 "enable_tls_streaming", "x509_key_pair_streaming"}


def _check_containerd(spec: ClusterSpec, fail) -> None:
    """What can only be judged against the containerd version: a patch in the other layout
    would be ignored by containerd (or refused at start), so say so now."""
    c = spec.runtime.containerd
    if not c.given:
        return
    a = spec.artifact("containerd")
    if not a.enabled:
        fail("runtime.containerd", "is set, but artifacts.containerd.enabled is false: kubeinit writes containerd's "
             "config only when it installs containerd; remove these settings or let kubeinit install it")
    if not c.config_patch:
        return
    import tomllib

    patch = tomllib.loads(c.config_patch)  # parsed when read
    major = int(a.version.split(".")[0]) if a.version.split(".")[0].isdigit() else 1
    version, path = (3 if major >= 2 else 2), "runtime.containerd.configPatch"
    if "version" in patch and patch["version"] != version:
        fail(path, f"sets version = {patch['version']!r}, but containerd {a.version} is configured with version "
             f"{version}; leave version out")
    plugins = patch.get("plugins", {}) if isinstance(patch.get("plugins"), dict) else {}
    if version == 2 and (v3 := sorted(p for p in plugins if p.startswith("io.containerd.cri.v1."))):
        fail(path, f"uses {v3[0]!r}, a plugin of containerd 2.x's config version 3; containerd {a.version} reads "
             "version 2: write it under plugins.\"io.containerd.grpc.v1.cri\"")
    cri = plugins.get("io.containerd.grpc.v1.cri", {})
    if version == 3 and isinstance(cri, dict) and (old := sorted(set(cri) - _CRI_V3_KEEPS)):
        fail(path, f"sets plugins.\"io.containerd.grpc.v1.cri\".{old[0]}, which containerd {a.version}'s config "
             "version 3 moved to io.containerd.cri.v1.runtime or io.containerd.cri.v1.images; write it there")


def _check_endpoint(value: str, path: str, fail) -> None:
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port is not None and (not port.isdigit() or not 1 <= int(port) <= 65535):
        fail(path, f"{value!r} has an invalid port; use host or host:port")
    if not (_is_ip(host) or _DNS1123_SUB.match(host.lower())):
        fail(path, f"{value!r} is not host or host:port")


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Defaults for `kubeinit init` with no file, and flag overrides.


def _local_hostname() -> str:
    import socket

    return socket.gethostname().split(".")[0].lower()


def default_address() -> str:
    """The IPv4 address of the interface holding the default route, as kubeadm picks it."""
    import fcntl
    import socket
    import struct

    try:
        with open("/proc/net/route") as f:
            rows = [line.split() for line in f.read().splitlines()[1:]]
    except OSError:
        rows = []
    for row in rows:
        if len(row) > 3 and row[1] == "00000000" and int(row[3], 16) & 2:  # default, RTF_GATEWAY
            iface = row[0]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface[:15].encode()))
                    return socket.inet_ntoa(packed[20:24])  # SIOCGIFADDR
                except OSError:
                    continue
    raise SpecError("--apiserver-advertise-address", "is needed: this machine has no default route to pick an "
                    "address from")


def local_default() -> ClusterSpec:
    """The embedded default: a single-node cluster on this machine."""
    spec = ClusterSpec(source="(embedded default)")
    spec.hosts = [Host(name=_local_hostname(), address="", role="control-plane", local=True)]
    return spec


@dataclass
class Overrides:
    """Flags that override the file (kubeadm's names)."""

    advertise_address: str | None = None
    control_plane_endpoint: str | None = None
    node_name: str | None = None
    kubernetes_version: str | None = None
    pod_network_cidr: str | None = None
    service_cidr: str | None = None
    cert_dir: str | None = None
    kubeconfig_dir: str | None = None
    cert_extra_sans: list[str] | None = None


def apply_overrides(spec: ClusterSpec, o: Overrides, local: bool = True) -> ClusterSpec:
    """Apply flags and re-validate; flags are named in errors by their flag name."""
    if o.kubernetes_version is not None:
        spec.kubernetes_version = o.kubernetes_version
    if o.control_plane_endpoint is not None:
        spec.control_plane_endpoint = o.control_plane_endpoint
    if o.pod_network_cidr is not None:
        spec.networking.pod_subnet = o.pod_network_cidr
    if o.service_cidr is not None:
        spec.networking.service_subnet = o.service_cidr
    if o.cert_dir is not None:
        spec.pki.cert_dir = o.cert_dir
    if o.kubeconfig_dir is not None:
        spec.kubeconfig_dir = o.kubeconfig_dir
    if o.cert_extra_sans:
        spec.pki.cert_sans = [*spec.pki.cert_sans, *o.cert_extra_sans]
    if local:
        host = spec.hosts[0] if spec.hosts else Host(name=_local_hostname(), address="")
        host.local = True
        if o.node_name is not None:
            host.name = o.node_name
        if o.advertise_address is not None:
            if not _is_ip(o.advertise_address):
                raise SpecError("--apiserver-advertise-address", f"{o.advertise_address!r} is not an IP address")
            host.address = o.advertise_address
        if not host.address:
            host.address = default_address()
        spec.hosts = [host]
    given = {path for path, attr in _FLAG_FOR.items() if getattr(o, attr) is not None}
    try:
        validate(spec)
    except SpecError as e:
        if e.path in given:  # the flag, not the file, carried the bad value
            raise SpecError(_FLAG_NAME[e.path], e.message) from None
        raise
    return spec


_FLAG_FOR = {  # YAML path -> Overrides attribute
    "kubernetesVersion": "kubernetes_version",
    "controlPlaneEndpoint": "control_plane_endpoint",
    "networking.podSubnet": "pod_network_cidr",
    "networking.serviceSubnet": "service_cidr",
    "hosts[0].name": "node_name",
    "hosts[0].address": "advertise_address",
    "pki.certificatesDir": "cert_dir",
}
_FLAG_NAME = {
    "kubernetesVersion": "--kubernetes-version",
    "controlPlaneEndpoint": "--control-plane-endpoint",
    "networking.podSubnet": "--pod-network-cidr",
    "networking.serviceSubnet": "--service-cidr",
    "hosts[0].name": "--node-name",
    "hosts[0].address": "--apiserver-advertise-address",
    "pki.certificatesDir": "--cert-dir",
}
