"""The end of a run of every phase (`up`, `init` with no --only): the cluster's Nodes with their
status and roles, read through the first control plane's API server as the cluster admin (the
client the API phases used, so a converged re-run pays one GET), each top-level phase's time,
and the kubectl line to use.

    phase_times(times) -> [(phase, seconds)]      by top-level phase, in run order
    read(ctx, names, wait) -> Nodes               the Nodes, or why they could not be read
    kubectl_line(file, known_hosts, admin_conf)   how to reach the cluster with kubectl
    show(nodes, times, line)                      prints it (ui)
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from kubeinit import ui
from kubeinit.context import Context
from kubeinit.kube import nodestate
from kubeinit.kube.nodestate import NodeState

READY_WAIT = 90.0  # seconds a run that changed the cluster gives its nodes to become Ready


@dataclass
class Nodes:
    """What the summary says of the cluster's Nodes."""

    expected: list[str]  # the hosts the cluster file names
    nodes: list[NodeState] = field(default_factory=list)
    error: str = ""  # why they could not be read
    waited: float = 0.0  # > 0: how long the run waited for them to be Ready
    no_network: bool = False  # networking.cni none: they stay NotReady until a pod network runs

    @property
    def missing(self) -> list[str]:
        have = {n.name for n in self.nodes}
        return [h for h in self.expected if h not in have]

    @property
    def ready(self) -> int:
        return sum(n.ready for n in self.nodes)


def phase_times(times: dict[str, float]) -> list[tuple[str, float]]:
    """Each top-level phase's seconds (its leaves added up), in the order they ran."""
    out: dict[str, float] = {}
    for path, seconds in times.items():
        top = path.split("/")[0]
        out[top] = out.get(top, 0.0) + seconds
    return list(out.items())


def read(ctx: Context, names: list[str], wait: bool) -> Nodes:
    """The Nodes through the first control plane; with `wait` (the run changed something and there
    is a pod network), read again until every one of `names` is Ready, at most READY_WAIT s."""
    from kubeinit.connection import HostUnreachable
    from kubeinit.errors import KubeinitError

    first = ctx.spec.first_control_plane.name
    target = next((t for t in ctx.targets if t.name == first), ctx.targets[0])
    out = Nodes(names, no_network=ctx.spec.networking.cni == "none")
    try:
        client = ctx.kube(target)
        out.nodes = nodestate.read(client)
        if wait and not out.no_network and not nodestate.all_ready(out.nodes, names):
            ui.info(f"waiting up to {READY_WAIT:.0f} s for every node to be Ready")
            began = time.monotonic()
            out.nodes = nodestate.wait_ready(lambda: nodestate.read(client), names, READY_WAIT)
            out.waited = time.monotonic() - began
    except (KubeinitError, HostUnreachable, OSError) as e:
        out.error = f"the nodes could not be read through {target.name}'s API server: {str(e).rstrip('.')}"
    return out


def kubectl_line(file: str | None, known_hosts: str | None, admin_conf: str) -> str:
    if file is None:  # on the control plane itself
        return f"kubectl: `kubectl --kubeconfig {shlex.quote(admin_conf)} get nodes` (as root: admin.conf is 0600)"
    cmd = ["kubeinit", "kubeconfig", "-f", file, *(["--known-hosts", known_hosts] if known_hosts else [])]
    return (
        f"kubectl: `{shlex.join(cmd)}` puts the cluster's admin entry in ~/.kube/config (or $KUBECONFIG), "
        "then `kubectl get nodes`"
    )


def show(nodes: Nodes, times: dict[str, float], line: str) -> None:
    ui.info("time per phase: " + ", ".join(f"{p} {s:.1f}s" for p, s in phase_times(times)))
    if nodes.error:
        ui.warn(nodes.error)
    else:
        rows = [(n.name, n.status, n.role, n.version, n.why) for n in nodes.nodes]
        rows += [(h, "not registered", "", "", "its kubelet has not registered the Node") for h in nodes.missing]
        ui.table(["node", "status", "roles", "version", ""], rows)
        total = len(nodes.expected) + sum(n.name not in nodes.expected for n in nodes.nodes)
        said = f"{nodes.ready} of {total} nodes Ready" + (f" after {nodes.waited:.0f} s" if nodes.waited else "")
        if nodes.ready == total:
            ui.ok(said)
        elif nodes.no_network:
            ui.warn(f"{said}: networking.cni is none, so they stay NotReady until you install a pod network")
        else:
            ui.warn(
                f"{said}; the pod network may still be starting: watch with `kubectl get nodes -w`, "
                "and see a node's reason with `kubectl describe node NAME` or its `journalctl -u kubelet`"
            )
    ui.info(line)
