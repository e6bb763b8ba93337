"""upgrade's work on each host's Node, around that host's upgrade (every host, in its turn):

drain     when this run restarts what runs on the host: a kubelet binary the kubernetes phase installs, a
          restart a stopped run left pending (the kubelet's binary or files changed since it started),
          or, on a control plane, a static pod manifest the control-plane phase rewrites. The Node is
          cordoned and its pods evicted as `kubectl drain --ignore-daemonsets --delete-emptydir-data`
          does (kube/drain.py); a host where nothing restarts is skipped. (A kubelet configuration the
          cluster changed alone is not foreseen: an upgrade brings a new kubelet binary.)
wait      the Node Ready, reporting the version of the kubelet binary its host has, and on a control
          plane the mirror pods of kube-apiserver, kube-controller-manager and kube-scheduler running
          the image and command of their manifests, Ready. Read once when nothing restarted here.
uncordon  the Node schedulable again when kubeinit cordoned it (its annotation); a Node its user had
          cordoned stays so.

A worker has no admin.conf: its calls go through the first control plane's (ApiCall.through). What a
drain plans is handed to the later phases (Context.shared), so the printed plan shows the wait and the
uncordon a real run makes after it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import yaml

from kubeinit.connection import Result
from kubeinit.context import Context, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts import Fact, Unknown, files
from kubeinit.kube import drain
from kubeinit.kube.client import ApiError, Unreachable
from kubeinit.phases import PhaseImpl, control_plane, kubelet, kubernetes
from kubeinit.steps import ApiCall, Skip, Step

DRAIN_TIMEOUT = 300.0  # evictions a PodDisruptionBudget holds up are asked again until then
WAIT_TIMEOUT = 300.0  # a control plane's pods on a new image: kubeadm's upgrade waits 5 min too
DRAINED = "upgrade-drained"  # Context.shared: the hosts whose drain this run plans
CORDONS = "upgrade-cordons"  # Context.shared: the Nodes this run's drain cordons (its uncordon's to undo)


@dataclass(frozen=True)
class KubeletVersion(Fact[str]):
    """The version the host's kubelet binary reports ("v1.31.5"; "" without one), as its Node will."""

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            f'k={kubelet.OURS}; [ -x "$k" ] || k=$(command -v kubelet 2>/dev/null) || k=\n'
            '[ -z "$k" ] || "$k" --version 2>/dev/null; true',
        )

    def parse(self, r: Result) -> str:
        m = re.search(r"\bv\d+\.\d+\.\d+\S*", r.out)
        return m[0] if m else ""


def _through(ctx: Context, target: Target) -> tuple[Target, str]:
    """The host whose admin.conf reaches the API, and the ApiCall's `through` ("" for the host itself)."""
    first = ctx.spec.first_control_plane.name
    return (target, "") if target.name == first else (ctx.target(first), first)


def _node(ctx: Context, target: Target) -> dict | Unknown:
    """The host's Node as the API has it (Unknown while it cannot be learned yet: Context.learn)."""
    api, _ = _through(ctx, target)

    def get() -> dict:
        try:
            return ctx.kube(api).get(drain.node_path(target.name))
        except ApiError as e:
            if e.code != 404:
                raise
            raise KubeinitError(
                f"node {target.name} is not registered in the cluster; is its kubelet running? "
                "(`journalctl -u kubelet` on it), or is it a host the cluster has not joined yet (`kubeinit up`)?"
            ) from None

    return ctx.learn(get, lambda e: isinstance(e, (Unreachable, ApiError)))


def drain_facts(ctx: Context, target: Target) -> list[Fact]:
    out = [*kubernetes.facts(ctx, target), kubelet.KUBELET, *files(kubelet.compared(ctx))]
    return out + (control_plane.facts(ctx, target) if target.host.is_control_plane else [])


def restarts(ctx: Context, target: Target) -> list[str]:
    """What this run restarts on the host, and why ([]: nothing)."""
    why = []
    wanted = kubernetes.wanted(ctx, target)
    if "kubelet" in wanted.todo:
        why.append(f"{wanted.rels['kubelet'].label} is installed: the kubelet restarts on it")
    elif kubelet.restart_pending(ctx, target):
        why.append("the kubelet restarts on the binary and files it has (a stopped run changed them)")
    if target.host.is_control_plane:
        state = control_plane.host_state(ctx, target)
        for name, component in control_plane.BINARY.items():
            have = target.facts.file(control_plane.manifest_path(name))
            text = control_plane.manifest(ctx, target, name, state)
            if have is None or have.sha256 != hashlib.sha256(text.encode()).hexdigest():
                why.append(f"{component} restarts on its new manifest")
    return why


def plan_drain(ctx: Context, target: Target) -> Iterator[Step]:
    why = restarts(ctx, target)
    if not why:
        yield Skip(f"{target.name} is already at the target: nothing on it restarts, its Node is not drained")
        return
    ctx.shared.setdefault(DRAINED, set()).add(target.name)
    node = _node(ctx, target)
    if isinstance(node, Unknown) or not (node.get("spec") or {}).get("unschedulable"):
        ctx.shared.setdefault(CORDONS, set()).add(target.name)
    elif not drain.cordoned_by_kubeinit(node):
        why.append("its user cordoned it: it stays cordoned")
    _, through = _through(ctx, target)
    yield ApiCall(
        drain.DRAIN, drain.node_path(target.name), note="; ".join(why), timeout=DRAIN_TIMEOUT, through=through
    )


def wait_facts(ctx: Context, target: Target) -> list[Fact]:
    return [KubeletVersion(), *(control_plane.facts(ctx, target) if target.host.is_control_plane else [])]


def expected(ctx: Context, target: Target) -> dict:
    """What the Node is waited for (drain.pending's `want`): its kubelet's version and, on a control
    plane, each mirror pod's image and command as its manifest has them."""
    want: dict = {"node": target.name, "kubelet": target.facts.get(KubeletVersion()), "pods": {}}
    if target.host.is_control_plane:
        state = control_plane.host_state(ctx, target)
        for name in control_plane.BINARY:
            pod = yaml.safe_load(control_plane.manifest(ctx, target, name, state))
            container = pod["spec"]["containers"][0]
            mirror = f"{pod['metadata']['name']}-{target.name}"  # the kubelet's name for a static pod's mirror
            want["pods"][mirror] = {"image": container["image"], "command": container["command"]}
    return want


def plan_wait(ctx: Context, target: Target) -> Iterator[Step]:
    want = expected(ctx, target)
    api, through = _through(ctx, target)
    # a kubelet this run installs says its version once there: the plan is printed before that
    kubelet_is = "its new kubelet" if target.facts.placed(kubelet.OURS) else f"kubelet {want['kubelet'] or '(any)'}"
    what = f"Ready on {kubelet_is}" + (", its control plane's pods on their manifests" if want["pods"] else "")
    wait = ApiCall(
        drain.WAIT, drain.node_path(target.name), want, what, timeout=WAIT_TIMEOUT, watch="kubelet", through=through
    )
    if target.name in ctx.shared.get(DRAINED, ()):  # this run restarts what runs there
        yield wait
        return
    try:
        why = drain.pending(ctx.kube(api), want)
    except (Unreachable, ApiError) as e:  # the API server restarting on its new manifest: waited for
        why = [str(e)]
    yield replace(wait, note=why[0]) if why else Skip(f"node {target.name} is {what}")


def plan_uncordon(ctx: Context, target: Target) -> Iterator[Step]:
    node = _node(ctx, target)
    _, through = _through(ctx, target)
    if target.name in ctx.shared.get(CORDONS, ()) or (
        not isinstance(node, Unknown) and drain.cordoned_by_kubeinit(node)
    ):
        yield ApiCall(drain.UNCORDON, drain.node_path(target.name), note="kubeinit cordoned it", through=through)
    elif isinstance(node, Unknown):
        yield Skip(f"node {target.name} cannot be read yet ({node.error}); a run uncordons it if kubeinit cordoned it")
    elif (node.get("spec") or {}).get("unschedulable"):
        yield Skip(f"node {target.name} is cordoned, not by kubeinit: it stays so")
    else:
        yield Skip(f"node {target.name} is schedulable (not cordoned by kubeinit)")


DRAIN = PhaseImpl(plan_drain, drain_facts)
WAIT = PhaseImpl(plan_wait, wait_facts)
UNCORDON = PhaseImpl(plan_uncordon)
