"""control-plane/<component>: kubeadm's static pod manifests for kube-apiserver,
kube-controller-manager and kube-scheduler, in /etc/kubernetes/manifests (§5.1-5.4).

The flags are kubeadm's defaults for the spec's Kubernetes version, then
components.<name>.extraArgs: a name given there replaces kubeadm's value, and the
list is sorted by name, as kubeadm's ArgumentsToCommand does. etcd is kubeinit's
systemd service on this host (kubeadm's "external" etcd); it listens on
127.0.0.1:2379 with the certificates kubeadm's local etcd uses, so the apiserver gets
the same etcd flags a stacked kubeadm control plane gets.

The kubelet picks a manifest up when its file changes, so writing the file is the whole
of this phase; an unchanged file is skipped.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from kubeinit.context import Context, Target, ensure_file
from kubeinit.facts import Fact, files
from kubeinit.facts.host import Exists, Mode
from kubeinit.phases import NamedPhase
from kubeinit.render import render
from kubeinit.steps import Run, Step

MANIFESTS = "/etc/kubernetes/manifests"
MODE = 0o600  # kubeadm writes the manifests 0600, in a 0700 directory
BINARY = {"apiserver": "kube-apiserver", "controller-manager": "kube-controller-manager", "scheduler": "kube-scheduler"}
SPEC_KEY = {"apiserver": "apiServer", "controller-manager": "controllerManager", "scheduler": "scheduler"}
CPU = {"apiserver": "250m", "controller-manager": "200m", "scheduler": "100m"}
CONTROLLER_MANAGER_PORT, SCHEDULER_PORT = 10257, 10259
ETCD_SERVERS = "https://127.0.0.1:2379"
AUTHZ_MODES = "Node,RBAC"
FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
CA_CERTS = "/etc/ssl/certs"
# Mounted too when the host has them: /etc/ssl/certs may hold symlinks into these.
CA_CERTS_EXTRA = (
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
)
# Startup probe failures allowed: ceil(controlPlaneComponentHealthCheck 4m / period 10s).
STARTUP_FAILURES = 24

CA_DIRS = Exists(CA_CERTS_EXTRA)


def manifest_path(name: str) -> str:
    return posixpath.join(MANIFESTS, f"{BINARY[name]}.yaml")


def _ca_paths(ctx: Context) -> tuple[str, str]:
    return posixpath.join(ctx.cert_dir, "ca.crt"), posixpath.join(ctx.cert_dir, "ca.key")


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [CA_DIRS, Mode(MANIFESTS), *files([*(manifest_path(n) for n in BINARY), *_ca_paths(ctx)])]


def preload() -> None:
    from kubeinit import render as r

    r.warm("control-plane/pod.yaml.j2")


@dataclass(frozen=True)
class HostState:
    ca_dirs: tuple[str, ...] = ()  # which of CA_CERTS_EXTRA the host has
    external_ca: bool = False  # ca.crt without ca.key: the cluster CA's key is kept elsewhere
    manifests_mode: int | None = 0o700  # of the manifests directory, None when it is missing


def host_state(ctx: Context, target: Target) -> HostState:
    facts = target.facts
    have = facts.get(CA_DIRS)
    crt, key = _ca_paths(ctx)
    return HostState(
        tuple(d for d in CA_CERTS_EXTRA if d in have),
        facts.file(crt) is not None and facts.file(key) is None,
        facts.get(Mode(MANIFESTS)),
    )


def _sorted_command(binary: str, defaults: dict[str, str], extra: Mapping[str, str]) -> list[str]:
    """kubeadm's ArgumentsToCommand: extraArgs replace defaults of the same name, then all
    sorted by name (and value)."""
    args = {**defaults, **extra}
    return [binary, *(f"--{k}={v}" for k, v in sorted(args.items()))]


def apiserver_flags(ctx: Context, target: Target) -> dict[str, str]:
    spec, pki = ctx.spec, ctx.cert_dir
    extra = spec.extra_args.get("apiServer", {})
    f = {
        "advertise-address": target.host.address,
        "allow-privileged": "true",
        "client-ca-file": f"{pki}/ca.crt",
        "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true",
        "etcd-cafile": f"{pki}/etcd/ca.crt",
        "etcd-certfile": f"{pki}/apiserver-etcd-client.crt",
        "etcd-keyfile": f"{pki}/apiserver-etcd-client.key",
        "etcd-servers": ETCD_SERVERS,
        "kubelet-client-certificate": f"{pki}/apiserver-kubelet-client.crt",
        "kubelet-client-key": f"{pki}/apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": f"{pki}/front-proxy-client.crt",
        "proxy-client-key-file": f"{pki}/front-proxy-client.key",
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-client-ca-file": f"{pki}/front-proxy-ca.crt",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "secure-port": str(spec.bind_port),
        "service-account-issuer": f"https://kubernetes.default.svc.{spec.networking.dns_domain}",
        "service-account-key-file": f"{pki}/sa.pub",
        "service-account-signing-key-file": f"{pki}/sa.key",
        "service-cluster-ip-range": spec.networking.service_subnet,
        "tls-cert-file": f"{pki}/apiserver.crt",
        "tls-private-key-file": f"{pki}/apiserver.key",
    }
    # A structured authorization config replaces the mode flag (the apiserver refuses both).
    if "authorization-config" not in extra:
        f["authorization-mode"] = AUTHZ_MODES
    return f


def controller_manager_flags(ctx: Context, target: Target, external_ca: bool = False) -> dict[str, str]:
    spec, pki = ctx.spec, ctx.cert_dir
    conf = posixpath.join(ctx.kubeconfig_dir, "controller-manager.conf")
    f = {
        "authentication-kubeconfig": conf,
        "authorization-kubeconfig": conf,
        "bind-address": "127.0.0.1",
        "client-ca-file": f"{pki}/ca.crt",
        "cluster-name": spec.name,
        # Empty with an external CA: the CSR signer then stays off instead of failing on a missing key.
        "cluster-signing-cert-file": "" if external_ca else f"{pki}/ca.crt",
        "cluster-signing-key-file": "" if external_ca else f"{pki}/ca.key",
        "controllers": "*,bootstrapsigner,tokencleaner",
        "kubeconfig": conf,
        "leader-elect": "true",
        "requestheader-client-ca-file": f"{pki}/front-proxy-ca.crt",
        "root-ca-file": f"{pki}/ca.crt",
        "service-account-private-key-file": f"{pki}/sa.key",
        "use-service-account-credentials": "true",
    }
    # Node CIDRs are handed out only when the cluster has a pod network range.
    if spec.networking.pod_subnet.strip():
        f |= {
            "allocate-node-cidrs": "true",
            "cluster-cidr": spec.networking.pod_subnet,
            "service-cluster-ip-range": spec.networking.service_subnet,
        }
    return f


def scheduler_flags(ctx: Context, target: Target) -> dict[str, str]:
    conf = posixpath.join(ctx.kubeconfig_dir, "scheduler.conf")
    return {
        "authentication-kubeconfig": conf,
        "authorization-kubeconfig": conf,
        "bind-address": "127.0.0.1",
        "kubeconfig": conf,
        "leader-elect": "true",
    }


def command(ctx: Context, target: Target, name: str, state: HostState = HostState()) -> list[str]:
    if name == "apiserver":
        defaults = apiserver_flags(ctx, target)
    elif name == "controller-manager":
        defaults = controller_manager_flags(ctx, target, state.external_ca)
    else:
        defaults = scheduler_flags(ctx, target)
    return _sorted_command(BINARY[name], defaults, ctx.spec.extra_args.get(SPEC_KEY[name], {}))


def _probe_host(addr: str) -> str:
    """kubeadm probes the bind/advertise address; an unspecified one means the pod IP (empty)."""
    return "" if addr in ("0.0.0.0", "::") else addr


def _probes(ctx: Context, target: Target, name: str) -> tuple[dict, int]:
    """liveness/readiness/startup (kubeadm's createHTTPProbe values) and the port they use."""
    spec, extra = ctx.spec, ctx.spec.extra_args.get(SPEC_KEY[name], {})
    paths: tuple[str, str | None, str]  # liveness, readiness (None: none), startup
    if name == "apiserver":
        host, port, paths = _probe_host(target.host.address), spec.bind_port, ("/livez", "/readyz", "/livez")
    elif name == "controller-manager":
        host, port, paths = (
            _probe_host(extra.get("bind-address", "127.0.0.1")),
            CONTROLLER_MANAGER_PORT,
            ("/healthz", None, "/healthz"),
        )
    else:
        host, port = _probe_host(extra.get("bind-address", "127.0.0.1")), SCHEDULER_PORT
        # kubeadm 1.32 moved the scheduler off its deprecated /healthz.
        paths = ("/livez", "/readyz", "/livez") if spec.minor >= 32 else ("/healthz", None, "/healthz")
    # kubeadm 1.34 names the probed port ("probe-port") and probes it by name.
    ref = "probe-port" if spec.minor >= 34 else port
    live, ready, start = paths
    probes = {
        "liveness": dict(host=host, path=live, port=ref, initial_delay=10, timeout=15, failure_threshold=8, period=10),
        "readiness": ready
        and dict(host=host, path=ready, port=ref, initial_delay=0, timeout=15, failure_threshold=3, period=1),
        "startup": dict(
            host=host, path=start, port=ref, initial_delay=10, timeout=15, failure_threshold=STARTUP_FAILURES, period=10
        ),
    }
    return probes, port


@dataclass(frozen=True)
class Volume:
    name: str
    path: str
    type: str = "DirectoryOrCreate"
    read_only: bool = True


def volumes(ctx: Context, name: str, state: HostState) -> list[Volume]:
    """kubeadm's hostPath volumes, sorted by name as it sorts them (mounted at the same path)."""
    extra = ctx.spec.extra_args.get(SPEC_KEY[name], {})
    ca = [Volume("ca-certs", CA_CERTS), *(Volume(d.replace("/", "-")[1:], d) for d in state.ca_dirs)]
    if name == "apiserver":
        vols = [Volume("k8s-certs", ctx.cert_dir), *ca]
    elif name == "controller-manager":
        vols = [
            Volume("k8s-certs", ctx.cert_dir),
            *ca,
            Volume("kubeconfig", posixpath.join(ctx.kubeconfig_dir, "controller-manager.conf"), "FileOrCreate"),
            # read-write: third-party flexvolume drivers talk to their backends over sockets here
            Volume("flexvolume-dir", extra.get("flex-volume-plugin-dir", FLEXVOLUME_DIR), read_only=False),
        ]
    else:
        vols = [Volume("kubeconfig", posixpath.join(ctx.kubeconfig_dir, "scheduler.conf"), "FileOrCreate")]
    return sorted(vols, key=lambda v: v.name)


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def manifest(ctx: Context, target: Target, name: str, state: HostState = HostState()) -> str:
    spec = ctx.spec
    probes, port = _probes(ctx, target, name)
    annotations = {}
    if name == "apiserver":
        annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = _endpoint(
            target.host.address, spec.bind_port
        )
    return render(
        "control-plane/pod.yaml.j2",
        component=BINARY[name],
        kubernetes_version=spec.kubernetes_version,
        annotations=annotations,
        command=command(ctx, target, name, state),
        image=f"{spec.image_repository}/{BINARY[name]}:{spec.kubernetes_version}",
        probes=probes,
        named_port=port if spec.minor >= 34 else None,
        cpu=CPU[name],
        volumes=volumes(ctx, name, state),
    )


def plan_component(ctx: Context, target: Target, name: str) -> Iterator[Step]:
    state = host_state(ctx, target)
    target.facts.gather(facts(ctx, target))  # gathered with the probe already, under the executor
    made = ctx.shared.setdefault("manifests-dir", set())
    if state.manifests_mode is None and target.name not in made:
        made.add(target.name)  # once per host, whichever component comes first
        yield Run(("sh", "-c", f"mkdir -p -m 0700 {MANIFESTS}"), note=f"create {MANIFESTS} (0700)")
    yield from ensure_file(
        target, manifest_path(name), manifest(ctx, target, name, state), MODE, f"{BINARY[name]} static pod"
    )


COMPONENT = NamedPhase(plan_component, facts, preload)  # bound to a component's name by the tree
