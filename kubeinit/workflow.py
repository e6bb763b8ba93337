"""The phase tree, with kubeadm's names and order, and selection by path.

A leaf refers to its implementation (a PhaseImpl its module under kubeinit/phases exports:
plan, declared facts, read_only, preload, serial) lazily (`Ref`: the module, and the value taken
from it, so --help imports no phase), and says which hosts it applies to. A leaf with no
implementation is not built yet: it shows in --help and --dry-run, and running it fails with
NotAvailableYet instead of doing nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubeinit.phaseselect import all_paths, find, select

__all__ = ["all_paths", "find", "select"]  # selection by path lives in phaseselect

if TYPE_CHECKING:
    from types import ModuleType

    from kubeinit.phases import NamedPhase, PhaseImpl

# Which hosts a phase works on.
ALL = "all"
CONTROL_PLANES = "control-planes"
FIRST_CONTROL_PLANE = "first-control-plane"
JOINING = "joining"  # every host but the first control plane
JOINING_CONTROL_PLANES = JOINING_CP = "joining-control-planes"  # the control planes but the first


@dataclass(frozen=True)
class Ref:
    """A phase's implementation: the module under kubeinit.phases that exports it, and the
    value taken from that module (an attribute, visible to the import graph and dead-code checks)."""

    module: str
    take: Callable[[ModuleType], PhaseImpl]

    def load(self) -> PhaseImpl:
        """The one place a phase module is imported."""
        from kubeinit.phases import PhaseImpl

        impl = self.take(importlib.import_module(f"kubeinit.phases.{self.module}"))
        if not isinstance(impl, PhaseImpl):
            raise TypeError(f"kubeinit.phases.{self.module} gave {impl!r}, not a PhaseImpl")
        return impl


@dataclass
class Phase:
    name: str
    help: str
    plan: Ref | PhaseImpl | None = None  # None: not built yet
    targets: str = ALL
    children: list[Phase] = field(default_factory=list)
    path: str = ""

    @property
    def available(self) -> bool:
        return self.plan is not None if not self.children else any(c.available for c in self.children)

    def leaves(self) -> Iterator[Phase]:
        if not self.children:
            yield self
        for c in self.children:
            yield from c.leaves()

    def impl(self) -> PhaseImpl:
        """What this leaf does (its module imported on first use)."""
        if self.plan is None:
            raise TypeError(f"phase {self.path} is not built yet")
        return self.plan.load() if isinstance(self.plan, Ref) else self.plan


def _named(module: str, take: Callable[[ModuleType], NamedPhase], name: str) -> Ref:
    """The leaf `name` of a phase with one leaf per name (a certificate, a kubeconfig, a component)."""
    return Ref(module, lambda m: take(m).bound(name))


def tree(phases: list[Phase], prefix: str = "") -> list[Phase]:
    for p in phases:
        p.path = f"{prefix}{p.name}"
        tree(p.children, p.path + "/")
    return phases


CERTS = [
    ("ca", "the self-signed Kubernetes CA"),
    ("apiserver", "the certificate for serving the Kubernetes API"),
    ("apiserver-kubelet-client", "the certificate the API server uses to reach the kubelet"),
    ("front-proxy-ca", "the self-signed CA for the front proxy"),
    ("front-proxy-client", "the certificate of the front proxy client"),
    ("etcd-ca", "the self-signed CA of etcd"),
    ("etcd-server", "the certificate for serving etcd"),
    ("etcd-peer", "the certificate etcd nodes use to talk to each other"),
    ("etcd-healthcheck-client", "the certificate liveness probes use to check etcd"),
    ("apiserver-etcd-client", "the certificate the API server uses to reach etcd"),
]
KUBECONFIGS = [
    ("admin", "admin.conf, for the cluster administrators (kubeadm:cluster-admins)"),
    ("super-admin", "super-admin.conf, for the break-glass system:masters user"),
    ("kubelet", "kubelet.conf, for the kubelet of this node"),
    ("controller-manager", "controller-manager.conf"),
    ("scheduler", "scheduler.conf"),
]


def init_phases() -> list[Phase]:
    """kubeadm init's phases, in kubeadm's run order."""
    return tree(
        [
            Phase("preflight", "Run pre-flight checks", Ref("preflight", lambda m: m.INIT), CONTROL_PLANES),
            Phase(
                "certs",
                "Generate the certificates (under --cert-dir)",
                children=[
                    *(
                        Phase(n, f"Generate {h}", _named("certs", lambda m: m.CERT, n), FIRST_CONTROL_PLANE)
                        for n, h in CERTS
                    ),
                    Phase(
                        "sa",
                        "Generate the key pair that signs service account tokens",
                        _named("certs", lambda m: m.CERT, "sa"),
                        FIRST_CONTROL_PLANE,
                    ),
                ],
            ),
            Phase(
                "kubeconfig",
                "Generate the kubeconfig files (under --kubeconfig-dir)",
                children=[
                    Phase(
                        n,
                        f"Generate {h}",
                        _named("kubeconfig", lambda m: m.KUBECONFIG, n),
                        FIRST_CONTROL_PLANE,
                    )
                    for n, h in KUBECONFIGS
                ],
            ),
            Phase(
                "etcd",
                "Run etcd for the control plane",
                children=[
                    Phase(
                        "local",
                        "Run etcd on this host (a systemd service): the first member",
                        Ref("etcd", lambda m: m.LOCAL),
                        FIRST_CONTROL_PLANE,
                    ),
                ],
            ),
            Phase(
                "control-plane",
                "Write the control plane's static pod manifests",
                children=[
                    Phase(n, f"kube-{n}", _named("control_plane", lambda m: m.COMPONENT, n), FIRST_CONTROL_PLANE)
                    for n in ("apiserver", "controller-manager", "scheduler")
                ],
            ),
            Phase(
                "kubelet-start",
                "Write the kubelet's config, unit and flags, and (re)start it",
                Ref("kubelet", lambda m: m.START),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "wait-control-plane",
                "Wait for the API server to answer /readyz",
                Ref("cluster_api", lambda m: m.WAIT),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "upload-config",
                "Store the configuration in the cluster",
                children=[
                    Phase(
                        "kubeadm",
                        "ConfigMap kube-system/kubeadm-config and its RBAC",
                        Ref("cluster_api", lambda m: m.UPLOAD_KUBEADM),
                        FIRST_CONTROL_PLANE,
                    ),
                    Phase(
                        "kubelet",
                        "ConfigMap kube-system/kubelet-config and its RBAC",
                        Ref("cluster_api", lambda m: m.UPLOAD_KUBELET),
                        FIRST_CONTROL_PLANE,
                    ),
                ],
            ),
            Phase(
                "upload-certs",
                "With --upload-certs: the shared CAs and keys, encrypted, in Secret kube-system/kubeadm-certs",
                Ref("upload_certs", lambda m: m.UPLOAD_CERTS),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "mark-control-plane",
                "Label and taint the control-plane node",
                Ref("cluster_api", lambda m: m.MARK_CONTROL_PLANE),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "bootstrap-token",
                "The RBAC of TLS bootstrap, and cluster-info for discovery",
                Ref("cluster_api", lambda m: m.BOOTSTRAP_TOKEN),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "kubelet-finalize",
                "Point kubelet.conf at the rotated client certificate",
                children=[
                    Phase(
                        "enable-client-cert-rotation",
                        "Use the kubelet's rotating client certificate",
                        Ref("finalize", lambda m: m.ENABLE_CLIENT_CERT_ROTATION),
                        CONTROL_PLANES,
                    ),
                ],
            ),
            Phase(
                "addon",
                "Install the required addons",
                children=[
                    Phase(
                        "coredns",
                        "CoreDNS: its Deployment, the kube-dns Service, ConfigMap and RBAC",
                        Ref("addons", lambda m: m.COREDNS),
                        FIRST_CONTROL_PLANE,
                    ),
                    Phase(
                        "kube-proxy",
                        "kube-proxy: its DaemonSet, ConfigMap (proxy.config) and RBAC",
                        Ref("addons", lambda m: m.KUBE_PROXY),
                        FIRST_CONTROL_PLANE,
                    ),
                ],
            ),
            Phase("cni", "Install the pod network (networking.cni)", Ref("cni", lambda m: m.CNI), ALL),
            Phase(
                "show-join-command",
                "Make a bootstrap token and print the join command",
                Ref("join", lambda m: m.SHOW_JOIN_COMMAND),
                FIRST_CONTROL_PLANE,
            ),
        ]
    )


def _cp(name: str, help: str, take: Callable[[ModuleType], PhaseImpl], module: str = "cp_prepare") -> Phase:
    return Phase(name, help, Ref(module, take), JOINING_CP)


def join_phases() -> list[Phase]:
    return tree(
        [
            Phase("preflight", "Run join pre-flight checks", Ref("preflight", lambda m: m.JOIN), JOINING),
            Phase(
                "control-plane-prepare",
                "Prepare this host to serve the control plane",
                children=[
                    _cp(
                        "download-certs",
                        "The shared CAs and keys (up: from control plane 1)",
                        lambda m: m.DOWNLOAD_CERTS,
                    ),
                    _cp("certs", "Generate this host's certificates", lambda m: m.CERTS),
                    _cp("kubeconfig", "Generate this host's kubeconfig files", lambda m: m.KUBECONFIG),
                    _cp("control-plane", "Write the static pod manifests", lambda m: m.CONTROL_PLANE),
                ],
            ),
            Phase(
                "kubelet-start",
                "Discover the cluster, write bootstrap-kubelet.conf, start the kubelet, wait for its TLS bootstrap",
                Ref("join", lambda m: m.KUBELET_START),
                JOINING,
            ),
            Phase(
                "control-plane-join",
                "Join etcd and mark this host as a control plane",
                children=[
                    _cp(
                        "etcd",
                        "Add this host to etcd, start its etcd (a host at a time)",
                        lambda m: m.ETCD,
                        "etcd_join",
                    ),
                    _cp("mark-control-plane", "Label and taint its node", lambda m: m.MARK_CONTROL_PLANE, "etcd_join"),
                ],
            ),
            Phase("cni", "This node's share of the pod network (bridge)", Ref("cni_join", lambda m: m.JOIN), JOINING),
        ]
    )


def up_phases() -> list[Phase]:
    """`kubeinit up`: host preparation on every host, then init's and join's phases."""
    init = {p.name: p for p in init_phases()}
    join = {p.name: p for p in join_phases()}
    return tree(
        [
            Phase(
                "preflight",
                "Check every host: OS, privileges, swap, binaries, ports, sysctls, clock",
                Ref("preflight", lambda m: m.UP),
                ALL,
            ),
            Phase(
                "runtime",
                "Install containerd, runc, the CNI plugins and crictl",
                Ref("runtime", lambda m: m.RUNTIME),
                ALL,
            ),
            Phase("kubernetes", "Install kubelet and kubectl", Ref("kubernetes", lambda m: m.KUBERNETES), ALL),
            Phase(
                "images",
                "Import the image tarballs of artifacts.images into containerd",
                Ref("images", lambda m: m.IMAGES),
                ALL,
            ),
            *(
                init[n]
                for n in (
                    "certs",
                    "kubeconfig",
                    "etcd",
                    "control-plane",
                    "kubelet-start",
                    "wait-control-plane",
                    "upload-config",
                    "mark-control-plane",
                    "bootstrap-token",
                    "kubelet-finalize",
                    "addon",
                )
            ),
            Phase(
                "join",
                "Join the other hosts",
                children=[
                    Phase(
                        "bootstrap-token",
                        "A bootstrap token for this run's joining hosts (none when every host has joined)",
                        Ref("join", lambda m: m.RUN_TOKEN),
                        FIRST_CONTROL_PLANE,
                    ),
                    join["control-plane-prepare"],
                    join["kubelet-start"],
                    join["control-plane-join"],
                ],
            ),
            init["cni"],  # after join: bridge sets up each host from its registered Node
        ]
    )


def reset_phases(clean_network: Callable[[], bool] = lambda: False) -> list[Phase]:
    """`clean_network()`: whether cleanup-network removes what it finds (asked when the phase is
    loaded, so a question asked on the terminal before the run can answer it)."""
    return tree(
        [
            Phase(
                "preflight",
                "Show what of kubeinit's (and kubeadm's) state this host has",
                Ref("reset", lambda m: m.PREFLIGHT),
                ALL,
            ),
            Phase(
                "remove-etcd-member",
                "Remove this host from etcd",
                Ref("reset", lambda m: m.REMOVE_ETCD_MEMBER),
                CONTROL_PLANES,
            ),
            Phase(
                "cleanup-node",
                "Stop etcd and the kubelet, remove the certificates, kubeconfigs, manifests and data",
                Ref("reset", lambda m: m.CLEANUP),
                ALL,
            ),
            Phase(
                "cleanup-network",
                "The CNI config, kubeinit's routes, kube-proxy's and the CNI's iptables/nftables: "
                "removed with --clean-network, else named",
                Ref("reset_network", lambda m: m.cleanup_network(clean_network())),
                ALL,
            ),
        ]
    )


def has_hosts(phase: Phase, spec) -> bool:
    """Whether a leaf works on any host of this cluster (an unbuilt one with none does not block a run)."""
    first = spec.first_control_plane.name if spec.control_planes else None
    joining = [h for h in spec.hosts if h.name != first]
    return {JOINING: bool(joining), JOINING_CP: any(h.is_control_plane for h in joining)}.get(phase.targets, True)
