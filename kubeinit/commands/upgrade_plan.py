"""`kubeinit upgrade plan -f cluster.yaml`: what `upgrade apply` would do, changing nothing.

It logs in to the first control plane only and plans upgrade's own preflight phase there
(phases/upgrade_check.py: the cluster's version and Nodes read through admin.conf, the version
rules, every Node Ready), as the executor plans any phase: the same login, errors and refusals as
`upgrade apply`. No host lock is taken: nothing is changed. Then it prints the control plane's
and each Node's kubelet version now and after, the warnings, and one verdict line.
"""

from __future__ import annotations

import shlex

from kubeinit import ui
from kubeinit.kube import versionskew
from kubeinit.kube.clusterversion import ClusterState
from kubeinit.spec import ClusterSpec


def plan(file: str, known_hosts: str | None, trust_new_host_keys: bool) -> None:
    from kubeinit.apply import plan_phase
    from kubeinit.context import Context, Options
    from kubeinit.phases.upgrade_check import STATE
    from kubeinit.runner import SSH, ssh_targets
    from kubeinit.spec import load_file

    spec = load_file(file)
    logins: list = []
    ctx = Context(spec, ssh_targets(spec, SSH(known_hosts, trust_new_host_keys), logins), Options(parallel=1))
    try:
        planned = plan_phase(ctx, preflight_phase()).targets[0]
    finally:
        ctx.close()
        for pool in logins:
            pool.close()
    state: ClusterState | None = ctx.shared.get(STATE)
    if state is not None and state.version is not None:
        show(spec, state)
    if planned.error is not None:  # a refusal (exit 2) or why the cluster could not be read
        raise planned.error
    assert state is not None and state.version is not None  # the phase refuses a cluster it could not read
    for warning in warnings(spec, state):
        ui.warn(warning)
    ui.ok(verdict_line(spec, state, file))


def preflight_phase():
    """upgrade's preflight leaf (its tree's first), on the first control plane."""
    from kubeinit import upgrade, workflow

    return workflow.find(upgrade.upgrade_phases(), "preflight")


def kubelet_after(spec: ClusterSpec, name: str) -> str | None:
    """The kubelet version node `name` has after `upgrade apply` (the file's); None: kubeinit leaves
    its kubelet alone (not a host of the file, or artifacts.kubelet.enabled: false)."""
    kubelet = spec.artifact("kubelet")
    if not kubelet.enabled or all(h.name != name for h in spec.hosts):
        return None
    return "v" + kubelet.version.lstrip("v")


def rows(spec: ClusterSpec, state: ClusterState) -> list[tuple[str, str, str, str]]:
    out = [("control plane", "", state.version or "", spec.kubernetes_version)]
    for n in state.nodes:
        after = kubelet_after(spec, n.name)
        why = "not in the file" if all(h.name != n.name for h in spec.hosts) else "artifacts.kubelet.enabled: false"
        out.append((f"kubelet on {n.name}", n.status, n.version, after or f"unchanged ({why})"))
    return out


def show(spec: ClusterSpec, state: ClusterState) -> None:
    ui.table(["component", "status", "now", "after"], rows(spec, state), title=f"cluster {spec.name!r}")


def warnings(spec: ClusterSpec, state: ClusterState) -> list[str]:
    names = {h.name for h in spec.hosts}
    return [
        why
        for n in state.nodes
        if n.name in names and (why := versionskew.kubelet_skew(n.name, n.version, spec.kubernetes_version))
    ]


def unfinished(spec: ClusterSpec, state: ClusterState) -> list[str]:
    """The file's Nodes an upgrade has not finished: another kubelet version than the file's, or cordoned."""
    hosts = {h.name for h in spec.hosts}
    return [
        n.name
        for n in state.nodes
        if n.name in hosts and (n.version != (kubelet_after(spec, n.name) or n.version) or not n.schedulable)
    ]


def verdict_line(spec: ClusterSpec, state: ClusterState, file: str) -> str:
    apply = f"kubeinit upgrade apply -f {shlex.quote(file)}"
    have, want = state.version or "", spec.kubernetes_version
    if versionskew.verdict(have, want).kind == versionskew.UPGRADE:
        return f"upgrade {have} -> {want}: run `{apply}`"
    left = unfinished(spec, state)
    if left:
        return (
            f"the cluster runs {have}, as the file says, but {', '.join(left)} "
            f"{'is' if len(left) == 1 else 'are'} not upgraded (or still cordoned): `{apply}` finishes the job"
        )
    return f"nothing to upgrade: the cluster runs {have}, as the file says"
