"""`kubeinit upgrade apply -f FILE`: the cluster brought to the file's kubernetesVersion, one host
at a time, kubeadm's way.

The file is the desired state, as for `up`. The first control plane's turn checks the rules
before any host is changed (phases/upgrade_check.py: no downgrade, one minor at a time, every
Node Ready), then each host in turn (the first control plane, the other control planes, then the
workers, in the file's order) is drained when its kubelet will restart, given the new binaries,
images, etcd (a member at a time), static pods and kubelet configuration, waited for (Node Ready,
its control plane's pods on the new images), and uncordoned. The first control plane's turn ends, as `kubeadm upgrade
apply` does, with the cluster's own records (kubeadm-config, kubelet-config) and the addons
(kube-proxy, CoreDNS) on the new version, so the hosts after it read the new kubelet-config.

Every phase compares and skips what is done: a run killed anywhere, run again, finishes the job
(the check allows a cluster already at the target: its hosts may not all be).
"""

from __future__ import annotations

from pathlib import Path

from kubeinit import workflow
from kubeinit.runner import SSH
from kubeinit.spec import ClusterSpec
from kubeinit.workflow import ALL, CONTROL_PLANES, FIRST_CONTROL_PLANE, Phase, Ref


def upgrade_phases() -> list[Phase]:
    """The phases of one host's turn, in order (a FIRST_CONTROL_PLANE leaf runs in that host's turn only)."""
    up = {p.name: p for p in workflow.up_phases()}
    init = {p.name: p for p in workflow.init_phases()}
    return workflow.tree(
        [
            Phase(
                "preflight",
                "Check the upgrade: the cluster's version and the file's, one minor at a time, every Node Ready",
                Ref("upgrade_check", lambda m: m.PREFLIGHT),
                FIRST_CONTROL_PLANE,
            ),
            Phase(
                "drain",
                "Cordon the node and evict its pods, when its kubelet will restart",
                Ref("upgrade_node", lambda m: m.DRAIN),
                ALL,
            ),
            up["kubernetes"],
            up["images"],
            Phase(
                "etcd",
                "etcd's binary and unit, and etcd restarted on them (a member at a time)",
                Ref("upgrade_etcd", lambda m: m.ETCD),
                CONTROL_PLANES,
            ),
            Phase(
                "control-plane",
                "The static pod manifests of the new version",
                Ref("cp_prepare", lambda m: m.CONTROL_PLANE),
                CONTROL_PLANES,
            ),
            Phase(
                "kubelet",
                "The kubelet's configuration, and the kubelet restarted on its new binary",
                Ref("upgrade_kubelet", lambda m: m.KUBELET),
                ALL,
            ),
            Phase(
                "wait",
                "Wait for the Node to be Ready and its control plane's pods to run the new images",
                Ref("upgrade_node", lambda m: m.WAIT),
                ALL,
            ),
            Phase(
                "uncordon",
                "Make the node schedulable again (when kubeinit cordoned it)",
                Ref("upgrade_node", lambda m: m.UNCORDON),
                ALL,
            ),
            init["upload-config"],
            init["addon"],
        ]
    )


def reach_phase() -> Phase:
    """Run on every host before the first turn: each reached, probed and locked."""
    return workflow.tree(
        [Phase("hosts", "Reach and lock every host before the first turn", Ref("upgrade_check", lambda m: m.REACH))]
    )[0]


def turns(spec: ClusterSpec) -> list[list[str]]:
    """The hosts in the order they are upgraded, one per turn: the first control plane, the
    other control planes, then the workers (each in the file's order)."""
    first = spec.first_control_plane.name
    cps = [h.name for h in spec.hosts if h.is_control_plane and h.name != first]
    workers = [h.name for h in spec.hosts if not h.is_control_plane]
    return [[name] for name in [first, *cps, *workers]]


def again_command(file: str, known_hosts: str | None, ignore: frozenset[str] = frozenset()) -> str:
    """What finishes an upgrade a failure or an interrupt stopped: the same command again."""
    import shlex

    cmd = ["kubeinit", "upgrade", "apply", "-f", str(file), "--yes"]
    if known_hosts:
        cmd += ["--known-hosts", known_hosts]
    if ignore:
        cmd += ["--ignore-preflight-errors", ",".join(sorted(ignore))]
    return shlex.join(cmd)


def apply(file: Path | str, ssh: SSH, dry_run: bool, yes: bool, ignore: frozenset[str] = frozenset()) -> None:
    """Run the upgrade over SSH, asking first unless `yes` (it restarts every kubelet and the control plane)."""
    from kubeinit.runner import Run, run_workflow, skip_hint
    from kubeinit.spec import load_file

    spec = load_file(file)
    again = again_command(str(file), ssh.known_hosts, ignore)

    def confirm(spec: ClusterSpec) -> None:
        if yes:
            return
        from kubeinit.commands.base import ask_first

        hosts = ", ".join(h for turn in turns(spec) for h in turn)
        ask_first(
            "upgrading",
            f"cluster {spec.name!r}",
            f"Upgrade cluster {spec.name!r} to {spec.kubernetes_version}, one host at a time ({hosts})? Each node "
            "is drained while its kubelet restarts, and each control plane's pods restart.",
            "nothing was upgraded",
        )

    run_workflow(
        Run(
            "upgrade apply",
            spec,
            workflow.select(upgrade_phases()),
            lambda path: again,
            skip_hint,
            dry_run,
            ignore,
            ssh=ssh,
            confirm=confirm,
            whole=True,
            file=str(file),
            turns=turns(spec),
            ahead=[reach_phase()],
        )
    )
