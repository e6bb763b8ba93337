"""networking.cni: bridge: a pod network with no image and no daemon, for hosts on one L2 segment.

Each host gets, from the Nodes the API holds (a fact, read once per run through the first
control plane; kube/nodes.py):
  /etc/cni/net.d/10-kubeinit-bridge.conflist   the CNI plugins bridge (cni0) and host-local with
                                               the podCIDR the controller-manager gave this
                                               node, and portmap (the runtime phase installs
                                               them; containerd uses loopback for lo)
  /var/lib/kubeinit/pod-network                a script: a route to every other node's podCIDR
                                               through its InternalIP, tagged `proto 147`
                                               (so that kubeinit's are told apart, replaced and
                                               removed), stale ones removed; and masquerade
                                               for what this node's pods send outside the pod
                                               range (chain KUBEINIT-POD-MASQ)
  kubeinit-pod-network.service                 runs that script at boot (the routes persist)

The script runs when it or the unit changed, or when the kernel's routes are not the wanted
ones (a fact), so a re-run on a converged host only skips. A Node that registers later is
routed to on the next run (`kubeinit up` joins it first).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import KubeinitError
from kubeinit.facts import Fact, Unknown
from kubeinit.facts.host import UnitState
from kubeinit.hostops.install import STATE
from kubeinit.kube import nodes as nodesmod
from kubeinit.kube.client import Unreachable
from kubeinit.phases.runtime import CNI_BIN, CNI_CONF
from kubeinit.render import render
from kubeinit.steps import Notice, Run, Skip, Step

CONFLIST = f"{CNI_CONF}/10-kubeinit-bridge.conflist"
SCRIPT = f"{STATE}/pod-network"
SERVICE = "kubeinit-pod-network.service"
UNIT = f"/etc/systemd/system/{SERVICE}"
PROTO = 147  # the routing protocol number kubeinit's routes carry (unassigned in iproute2's rt_protos)
MASQ_CHAIN = "KUBEINIT-POD-MASQ"
PLUGINS = ("bridge", "host-local", "portmap", "loopback")
TEMPLATES = ("cni/bridge.conflist.j2", "cni/pod-network.sh.j2", "cni/kubeinit-pod-network.service.j2")


@dataclass(frozen=True)
class Network:
    routes: frozenset[tuple[str, str]]  # (destination, gateway) of the routes tagged proto PROTO
    masquerading: bool  # POSTROUTING jumps to KUBEINIT-POD-MASQ (IPv4)


@dataclass(frozen=True)
class PodRoutes(Fact[Network]):
    """kubeinit's routes (both families) and whether its masquerade chain is in use."""

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            f"ip -o route show proto {PROTO} 2>/dev/null; ip -6 -o route show proto {PROTO} 2>/dev/null; "
            f"iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -q -- '-j {MASQ_CHAIN}' && echo masquerading; true",
        )

    def parse(self, r: Result) -> Network:
        routes, masq = set(), False
        for line in r.out.splitlines():
            words = line.split()
            if words == ["masquerading"]:
                masq = True
            elif "via" in words[:-1]:
                routes.add((words[0], words[words.index("via") + 1]))
        return Network(frozenset(routes), masq)


@dataclass(frozen=True)
class MissingFiles(Fact[frozenset]):
    """Which of these paths are not executable files on the host."""

    paths: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", 'for p; do [ -x "$p" ] || echo "$p"; done', "sh", *self.paths)

    def parse(self, r: Result) -> frozenset:
        return frozenset(line.strip() for line in r.out.splitlines() if line.strip())


PLUGIN_FILES = MissingFiles(tuple(f"{CNI_BIN}/{p}" for p in PLUGINS))


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [PodRoutes(), PLUGIN_FILES, UnitState(SERVICE)]


def first_control_plane(ctx: Context) -> Target:
    name = ctx.spec.first_control_plane.name
    return next(t for t in ctx.targets if t.name == name)


_READ = threading.Lock()


def cluster_nodes(ctx: Context) -> list[nodesmod.NodeNet] | Unknown:
    """The Nodes, read once per run (every host's plan shares the answer) as the first control
    plane's admin.conf; Unknown while a plan-only run cannot reach the API server (Context.learn)."""
    with _READ:
        if "cni-nodes" not in ctx.shared:
            client = ctx.kube(first_control_plane(ctx))
            ctx.shared["cni-nodes"] = ctx.learn(
                lambda: nodesmod.pod_networks(client), lambda e: isinstance(e, Unreachable)
            )
        return ctx.shared["cni-nodes"]


def wanted_routes(me: nodesmod.NodeNet, nodes: list[nodesmod.NodeNet]) -> list[tuple[str, str]]:
    """(podCIDR, InternalIP) of every other node, per family, for the families this node has."""
    out = []
    for other in nodes:
        if other.name == me.name:
            continue
        for cidr in other.pod_cidrs:
            via = other.address(ipaddress.ip_network(cidr).version)
            if via is not None:
                out.append((cidr, via))
    return out


def plan(ctx: Context, target: Target) -> Iterator[Step]:
    check_plugins(ctx, target)
    nodes = cluster_nodes(ctx)
    if isinstance(nodes, Unknown):
        yield Notice(
            f"the Nodes cannot be read yet ({nodes}): {CONFLIST} will hold this node's podCIDR, "
            f"and {SERVICE} the routes to the other nodes' pods"
        )
        return
    yield from node_network(target, nodes, ctx.spec.networking.pod_subnet)


def check_plugins(ctx: Context, target: Target) -> None:
    """The plugins the bridge config names are on the host, or this run's runtime phase installs them."""
    from kubeinit.phases import runtime

    missing = target.facts.get(PLUGIN_FILES)
    if missing and (target.name, "cni-plugins") not in ctx.shared.get(runtime.PLANNED, set()):
        raise KubeinitError(
            f"the CNI plugins {', '.join(sorted(missing))} are missing: run the runtime phase first "
            "(`kubeinit up --only runtime`)"
        )


def node_network(target: Target, nodes: list[nodesmod.NodeNet], pod_subnet: str) -> Iterator[Step]:
    """This host's conflist, script and unit, from the Nodes and the cluster's pod range."""
    me = next((n for n in nodes if n.name == target.host.name), None)
    if me is None:
        raise KubeinitError(
            f"node {target.host.name} is not registered yet, so it has no podCIDR for its bridge: "
            "join it first (`kubeinit up --only join`), then run the cni phase again"
        )
    if not me.pod_cidrs:
        raise KubeinitError(
            f"node {me.name} has no podCIDR after {nodesmod.CIDR_WAIT:.0f} s: the controller-manager gives one "
            f"from networking.podSubnet {pod_subnet} (--allocate-node-cidrs); "
            "`kubectl -n kube-system logs -l component=kube-controller-manager` says why it did not"
        )
    unrouted = [n.name for n in nodes if n.name != me.name and not n.pod_cidrs]
    if unrouted:
        yield Notice(f"no route to the pods of {', '.join(unrouted)} yet: no podCIDR; the next run adds them")
    yield from _files(target, me, nodes, pod_subnet)


def _files(target: Target, me: nodesmod.NodeNet, nodes: list[nodesmod.NodeNet], pod_subnet: str) -> Iterator[Step]:
    routes = wanted_routes(me, nodes)
    versions = [ipaddress.ip_network(c).version for c in me.pod_cidrs]
    conflist = render(
        "cni/bridge.conflist.j2",
        ranges=me.pod_cidrs,
        gateways=["0.0.0.0/0" if v == 4 else "::/0" for v in versions],
    )
    cluster = {ipaddress.ip_network(c.strip()).version: c.strip() for c in pod_subnet.split(",") if c.strip()}
    families = [
        ("IPv4" if v == 4 else "IPv6", [r for r in routes if ipaddress.ip_network(r[0]).version == v]) for v in versions
    ]
    masquerade = [
        ("iptables" if v == 4 else "ip6tables", c, cluster[v])
        for v, c in zip(versions, me.pod_cidrs, strict=True)
        if v in cluster
    ]
    script = render("cni/pod-network.sh.j2", proto=PROTO, families=families, masquerade=masquerade, chain=MASQ_CHAIN)
    unit = render("cni/kubeinit-pod-network.service.j2", script=SCRIPT)

    yield from ensure_file(target, CONFLIST, conflist, 0o644, note=f"the bridge for {', '.join(me.pod_cidrs)}")
    changed = False
    for path, content, mode in ((SCRIPT, script, 0o755), (UNIT, unit, 0o644)):
        for step in ensure_file(target, path, content, mode):
            changed = changed or not isinstance(step, Skip)
            yield step
    have = target.facts.get(PodRoutes())
    state = target.facts.get(UnitState(SERVICE))
    shown = ", ".join(f"{d} via {v}" for d, v in routes) or "none (no other node has a podCIDR)"
    stale = have.routes != frozenset(routes) or (4 in versions and 4 in cluster and not have.masquerading)
    if changed or stale or state.enabled != "enabled":
        yield Run(
            ("sh", "-c", f"{SCRIPT} && systemctl daemon-reload && systemctl enable -q --now {SERVICE}"),
            note=f"routes to the other nodes' pods: {shown}",
        )
    else:
        yield Skip(f"the routes to the other nodes' pods are set ({shown})")
