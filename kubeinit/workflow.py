"""The phase tree, with kubeadm's names and order, and selection by path.

A leaf phase has a `plan` function (context, target) -> steps, and says which
hosts it applies to. A leaf with no `plan` is part of the tree but not built
yet: it shows in --help and --dry-run, and running it fails with
NotAvailableYet instead of doing nothing.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from kubeinit.errors import UserError

# Which hosts a phase works on.
ALL = "all"
CONTROL_PLANES = "control-planes"
FIRST_CONTROL_PLANE = "first-control-plane"
JOINING = "joining"  # every host but the first control plane


@dataclass
class Phase:
    name: str
    help: str
    plan: str | None = None  # "module:function[:argument]" under kubeinit.phases, imported when run
    targets: str = ALL
    # "module:function" (context, target) -> (commands, files): the facts the plan will ask
    # for, gathered in one round trip per host; see apply.execute.
    gather: str | None = None
    read_only: bool = False  # changes nothing on hosts (preflight): later phases' facts can be gathered first
    children: list["Phase"] = field(default_factory=list)
    path: str = ""

    @property
    def available(self) -> bool:
        return self.plan is not None if not self.children else any(c.available for c in self.children)

    def leaves(self) -> Iterator["Phase"]:
        if not self.children:
            yield self
        for c in self.children:
            yield from c.leaves()

    def planner(self) -> Callable:
        """(context, target) -> steps; a shared planner gets its argument (e.g. which cert) bound."""
        mod, func, *arg = self.plan.split(":")
        fn = getattr(importlib.import_module(f"kubeinit.phases.{mod}"), func)
        return functools.partial(fn, name=arg[0]) if arg else fn

    def gatherer(self) -> Callable | None:
        if self.gather is None:
            return None
        mod, func = self.gather.split(":")
        return getattr(importlib.import_module(f"kubeinit.phases.{mod}"), func)


def _tree(phases: list[Phase], prefix: str = "") -> list[Phase]:
    for p in phases:
        p.path = f"{prefix}{p.name}"
        _tree(p.children, p.path + "/")
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
    return _tree([
        Phase("preflight", "Run pre-flight checks", "preflight:plan_init", CONTROL_PLANES, "preflight:gather",
              read_only=True),
        Phase("certs", "Generate the certificates (under --cert-dir)", children=[
            *(Phase(n, f"Generate {h}", f"certs:plan_cert:{n}", FIRST_CONTROL_PLANE) for n, h in CERTS),
            Phase("sa", "Generate the key pair that signs service account tokens", "certs:plan_cert:sa",
                  FIRST_CONTROL_PLANE),
        ]),
        Phase("kubeconfig", "Generate the kubeconfig files (under --kubeconfig-dir)", children=[
            Phase(n, f"Generate {h}", f"kubeconfig:plan_kubeconfig:{n}", FIRST_CONTROL_PLANE)
            for n, h in KUBECONFIGS
        ]),
        Phase("etcd", "Run etcd for the control plane", children=[
            Phase("local", "Run etcd on this host (a systemd service)", "etcd:plan_etcd", CONTROL_PLANES,
                  "etcd:gather"),
        ]),
        Phase("control-plane", "Write the control plane's static pod manifests", children=[
            Phase(n, f"kube-{n}", f"control_plane:plan_component:{n}", CONTROL_PLANES, "control_plane:gather")
            for n in ("apiserver", "controller-manager", "scheduler")
        ]),
        Phase("kubelet-start", "Write the kubelet's config, unit and flags, and (re)start it",
              "kubelet:plan_kubelet_start", FIRST_CONTROL_PLANE, "kubelet:gather"),
        Phase("wait-control-plane", "Wait for the API server to answer /readyz", "cluster_api:plan_wait",
              FIRST_CONTROL_PLANE),
        Phase("upload-config", "Store the configuration in the cluster", children=[
            Phase("kubeadm", "ConfigMap kube-system/kubeadm-config and its RBAC", "cluster_api:plan_upload_kubeadm",
                  FIRST_CONTROL_PLANE),
            Phase("kubelet", "ConfigMap kube-system/kubelet-config and its RBAC", "cluster_api:plan_upload_kubelet",
                  FIRST_CONTROL_PLANE),
        ]),
        Phase("upload-certs", "Store the shared certificates, encrypted, for joining control planes", None,
              FIRST_CONTROL_PLANE),
        Phase("mark-control-plane", "Label and taint the control-plane node", "cluster_api:plan_mark_control_plane",
              FIRST_CONTROL_PLANE),
        Phase("bootstrap-token", "The RBAC of TLS bootstrap, and cluster-info for discovery",
              "cluster_api:plan_bootstrap_token", FIRST_CONTROL_PLANE),
        Phase("kubelet-finalize", "Point kubelet.conf at the rotated client certificate", children=[
            Phase("enable-client-cert-rotation", "Use the kubelet's rotating client certificate", None,
                  CONTROL_PLANES),
        ]),
        Phase("addon", "Install the required addons", children=[
            Phase("coredns", "CoreDNS", None, FIRST_CONTROL_PLANE),
            Phase("kube-proxy", "kube-proxy", None, FIRST_CONTROL_PLANE),
        ]),
        Phase("cni", "Install the pod network", None, FIRST_CONTROL_PLANE),
        Phase("show-join-command", "Show how to join more nodes", None, FIRST_CONTROL_PLANE),
    ])


def join_phases() -> list[Phase]:
    return _tree([
        Phase("preflight", "Run join pre-flight checks", "preflight:plan_join", JOINING, "preflight:gather",
              read_only=True),
        Phase("control-plane-prepare", "Prepare this host to serve the control plane", children=[
            Phase("download-certs", "Fetch the shared certificates from kubeadm-certs", None, JOINING),
            Phase("certs", "Generate this host's certificates", None, JOINING),
            Phase("kubeconfig", "Generate this host's kubeconfig files", None, JOINING),
            Phase("control-plane", "Write the static pod manifests", None, JOINING),
        ]),
        Phase("kubelet-start", "Discover the cluster, write bootstrap-kubelet.conf, start the kubelet", None,
              JOINING),
        Phase("control-plane-join", "Join etcd and mark this host as a control plane", children=[
            Phase("etcd", "Add this host to etcd", None, JOINING),
            Phase("mark-control-plane", "Label and taint this node", None, JOINING),
        ]),
    ])


def up_phases() -> list[Phase]:
    """`kubeinit up`: host preparation on every host, then init's and join's phases."""
    init = {p.name: p for p in init_phases()}
    join = {p.name: p for p in join_phases()}
    return _tree([
        Phase("preflight", "Check every host: OS, privileges, swap, binaries, ports, sysctls, clock",
              "preflight:plan_up", ALL, "preflight:gather", read_only=True),
        Phase("runtime", "Install containerd, runc, the CNI plugins and crictl", "runtime:plan_runtime", ALL,
              "runtime:gather"),
        Phase("kubernetes", "Install kubelet and kubectl", "kubernetes:plan_kubernetes", ALL,
              "kubernetes:gather"),
        Phase("images", "Import the image tarballs of artifacts.images into containerd", "images:plan_images", ALL,
              "images:gather"),
        *(init[n] for n in ("certs", "kubeconfig", "etcd", "control-plane", "kubelet-start",
                            "wait-control-plane", "upload-config", "mark-control-plane", "bootstrap-token",
                            "addon", "cni")),
        Phase("join", "Join the other hosts", children=[
            join["control-plane-prepare"], join["kubelet-start"], join["control-plane-join"],
        ]),
    ])


def reset_phases() -> list[Phase]:
    return _tree([
        Phase("preflight", "Show what of kubeinit's (and kubeadm's) state this host has", "reset:plan_preflight",
              ALL, "reset:gather", read_only=True),
        Phase("remove-etcd-member", "Remove this host from etcd", "reset:plan_remove_etcd_member", CONTROL_PLANES,
              read_only=True),
        Phase("cleanup-node", "Stop etcd and the kubelet, remove the certificates, kubeconfigs, manifests and data",
              "reset:plan_cleanup", ALL, "reset:gather"),
    ])


def find(tree: list[Phase], path: str) -> Phase:
    parts = [p for p in path.strip("/").split("/") if p]
    nodes, found = tree, None
    for part in parts:
        found = next((n for n in nodes if n.name == part), None)
        if found is None:
            raise UserError(f"{path!r} is not a phase; known phases: {', '.join(all_paths(tree))}")
        nodes = found.children
    if found is None:
        raise UserError("an empty phase name was given")
    return found


def all_paths(tree: list[Phase]) -> list[str]:
    out: list[str] = []

    def walk(ps: list[Phase]):
        for p in ps:
            out.append(p.path)
            walk(p.children)

    walk(tree)
    return out


def _split(values: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def select(tree: list[Phase], only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[Phase]:
    """The leaves to run, in tree order: within `only` (if given), minus `skip`.

    Paths name a phase or a whole sub-tree (`certs`, `certs/apiserver`), as
    kubeadm's --skip-phases does; an unknown name is an error, never ignored.
    """
    leaves = [leaf for p in tree for leaf in p.leaves()]
    only_l, skip_l = _split(only), _split(skip)
    chosen = leaves
    if only_l:
        keep = {leaf.path for name in only_l for leaf in find(tree, name).leaves()}
        chosen = [leaf for leaf in leaves if leaf.path in keep]
    drop = {leaf.path for name in skip_l for leaf in find(tree, name).leaves()}
    return [leaf for leaf in chosen if leaf.path not in drop]
