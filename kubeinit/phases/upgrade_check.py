"""Whether the cluster may be upgraded to the file's version: upgrade's preflight, and up's guard.

PREFLIGHT  (upgrade, the first control plane, read-only) reads the cluster's version (kubeadm-config)
           and its Nodes through admin.conf (kube/clusterversion.py), applies kubeadm's version
           rules (kube/versionskew.py), and wants every Node Ready (`NodesReady`, which
           --ignore-preflight-errors turns into a warning) and every host of the file a Node.
           A refusal ends the run before any host is changed: one line, exit 2. Later phases
           find what it read in ctx.shared: FROM, the cluster's version before the upgrade (None
           when a dry run could not read it), and STATE, the ClusterState.
up_guard   (up's preflight, the first control plane) `up` with another version than the cluster's
           would rewrite every control plane at once: refused, pointing at `upgrade apply`.
           A host without admin.conf or a cluster without kubeadm-config is a cluster being made,
           not refused; a server that does not answer is a warning (a run that cannot know).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.errors import KubeinitError, UserError
from kubeinit.facts import Fact, File, Unknown
from kubeinit.facts.host import Arch
from kubeinit.kube import clusterversion, versionskew
from kubeinit.kube.client import Unreachable
from kubeinit.kube.clusterversion import ClusterState
from kubeinit.phases import PhaseImpl
from kubeinit.steps import Check, Notice, Skip, Step

FROM = "upgrade-from"  # ctx.shared: the cluster's version as the upgrade found it (str; None: not read)
STATE = "upgrade-state"  # ctx.shared: the ClusterState read (absent: not read)


class Refused(UserError):
    """The cluster may not go to the file's version (or not yet): changing the input is the fix."""

    resumable = False


def command(ctx: Context, verb: str) -> str:
    """`kubeinit upgrade apply -f FILE` (verb "upgrade apply") for the file this run read."""
    return f"kubeinit {verb} -f {shlex.quote(ctx.spec.source or 'cluster.yaml')}"


def judge(ctx: Context, state: ClusterState) -> Iterator[Step]:
    """The checks of the cluster as read, the verdict last; raises Refused."""
    spec, ignore = ctx.spec, ctx.options.ignore_preflight_errors
    if state.version is None:
        raise Refused(
            f"cluster {spec.name!r} has no ConfigMap {clusterversion.CONFIGMAP}, so its version is not known: "
            f"it is not a cluster `kubeinit up` finished; run `{command(ctx, 'up')}` first"
        )
    verdict = versionskew.verdict(state.version, spec.kubernetes_version)
    if verdict.refused:
        raise Refused(verdict.reason)
    missing = [h.name for h in spec.hosts if state.node(h.name) is None]
    if missing:
        raise Refused(
            f"{', '.join(missing)} of the file {'is not a Node' if len(missing) == 1 else 'are not Nodes'} of the "
            f"cluster: join {'it' if len(missing) == 1 else 'them'} first (`{command(ctx, 'up')}` with "
            f"kubernetesVersion: {state.version}, the cluster's) or take {'it' if len(missing) == 1 else 'them'} "
            "out of the file"
        )
    yield from _nodes_ready(state, ignore)
    hosts = {h.name for h in spec.hosts}
    for n in state.nodes:
        if n.name not in hosts:
            yield Notice(f"node {n.name} is not a host of the file: it is not upgraded (its kubelet is {n.version})")
        elif why := versionskew.kubelet_skew(n.name, n.version, spec.kubernetes_version):
            yield Check("KubeletVersion", False, f"{why}; this upgrade installs its kubelet too", fatal=False)
    if verdict.kind == versionskew.CURRENT:
        yield Notice(f"the cluster already runs {state.version}: finishing any host not yet upgraded")
    else:
        yield Check("Upgrade", True, f"{state.version} -> {spec.kubernetes_version}")


def _nodes_ready(state: ClusterState, ignore: frozenset[str]) -> Iterator[Check]:
    down = [n for n in state.nodes if not n.ready]
    if not down:
        yield Check("NodesReady", True, f"{len(state.nodes)} node{'s' if len(state.nodes) != 1 else ''} Ready")
        return
    why = "; ".join(f"{n.name} is NotReady ({n.why})" for n in down)
    if "nodesready" not in ignore and "all" not in ignore:
        raise Refused(
            f"{why}: an upgrade starts from a healthy cluster; bring {'it' if len(down) == 1 else 'them'} back "
            "(`journalctl -u kubelet` there) or pass --ignore-preflight-errors=NodesReady"
        )
    yield Check("NodesReady", False, f"{why} (ignored)", fatal=False)


def plan_preflight(ctx: Context, target: Target) -> Iterator[Step]:
    state = ctx.learn(lambda: clusterversion.read(ctx.kube(target)), lambda e: isinstance(e, Unreachable))
    if isinstance(state, Unknown):
        ctx.shared[FROM] = None
        yield Notice(
            f"the cluster's version and Nodes cannot be read yet ({state}): a real run reads them first, "
            "and refuses before any host is changed when the file's version may not follow"
        )
        return
    ctx.shared[STATE] = state
    yield from judge(ctx, state)
    ctx.shared[FROM] = state.version


def admin_conf(ctx: Context) -> str:
    return posixpath.join(ctx.kubeconfig_dir, "admin.conf")


def up_guard_facts(ctx: Context, target: Target) -> list[Fact]:
    """The guard's one question, asked with up's other preflight facts (no round trip of its own)."""
    return [File(admin_conf(ctx))] if _first(ctx, target) else []


def _first(ctx: Context, target: Target) -> bool:
    return target.host.is_control_plane and target.name == ctx.spec.first_control_plane.name


def up_guard(ctx: Context, target: Target) -> Iterator[Check]:
    """On the first control plane of a running cluster: its version must be the file's."""
    if not _first(ctx, target) or target.facts.file(admin_conf(ctx)) is None:
        return
    try:  # the client the later API phases use (Context.kube): a converged re-run pays one GET
        have = clusterversion.version(ctx.kube(target))
    except KubeinitError as e:  # a real run cannot know either: a warning, in a dry run as in a real one
        yield Check(
            "ClusterVersion",
            False,
            f"the cluster's version could not be read ({str(e).rstrip('.')}): not compared with the file's",
            fatal=False,
        )
        return
    if have is None:
        yield Check("ClusterVersion", True, f"no {clusterversion.CONFIGMAP} yet: a cluster being made")
        return
    want, name = ctx.spec.kubernetes_version, ctx.spec.name
    verdict = versionskew.verdict(have, want)
    if verdict.kind == versionskew.CURRENT:
        yield Check("ClusterVersion", True, f"the cluster runs {have}, as the file says")
        return
    if verdict.refused:
        raise Refused(f"cluster {name!r}: {verdict.reason}")
    raise Refused(
        f"cluster {name!r} runs {have} and the file says {want}: upgrade it with `{command(ctx, 'upgrade apply')}` "
        "(it rolls through the hosts one at a time)"
    )


PREFLIGHT = PhaseImpl(plan_preflight, read_only=True)


def plan_reach(ctx: Context, target: Target) -> Iterator[Step]:
    yield Skip(f"{target.name} answers ({target.facts.get(Arch())}) and is locked for this run")


# Before the first turn: every host logged into, probed and locked, so a host that cannot be
# reached (or that another run holds) stops the upgrade before any host has changed.
REACH = PhaseImpl(plan_reach, lambda ctx, target: [Arch()], read_only=True)
