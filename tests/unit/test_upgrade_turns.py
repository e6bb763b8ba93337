"""`upgrade apply`'s rolling run: every phase for one host, then the next host; the hosts' order."""

from __future__ import annotations

import pytest
import test_apply as ta

from kubeinit import runner, upgrade
from kubeinit import spec as specmod
from kubeinit.errors import StepFailed
from kubeinit.phases import PhaseImpl
from kubeinit.steps import Run
from kubeinit.workflow import ALL, FIRST_CONTROL_PLANE, Phase


def _spec(*roles: tuple[str, str]) -> specmod.ClusterSpec:
    return specmod.ClusterSpec(
        hosts=[specmod.Host(name, f"10.0.0.{i + 1}", role) for i, (name, role) in enumerate(roles)]
    )


def test_the_first_control_plane_goes_first_then_the_other_control_planes_then_the_workers():
    spec = _spec(("w1", "worker"), ("cp1", "control-plane"), ("w2", "worker"), ("cp2", "control-plane"))
    assert upgrade.turns(spec) == [["cp1"], ["cp2"], ["w1"], ["w2"]]


def _marker(name: str, targets: str = ALL) -> Phase:
    return Phase(name, name, PhaseImpl(lambda ctx, t: iter([Run(("mark", name, t.name))])), targets, path=name)


def _rolling(hosts, phases):
    ctx = ta.make(hosts)
    run = runner.Run("upgrade apply", ctx.spec, phases, lambda p: "", runner.skip_hint, turns=upgrade.turns(ctx.spec))
    return ctx, run


def test_each_host_has_all_its_phases_before_the_next_host_begins():
    hosts = [ta.MemoryHost("a"), ta.MemoryHost("b"), ta.MemoryHost("c")]
    log: list[tuple[str, str]] = []
    for h in hosts:
        original = h._one

        def one(argv, h=h, original=original):
            if argv[0] == "mark":
                log.append((argv[2], argv[1]))
            return original(argv)

        h._one = one
    phases = [_marker("drain"), _marker("kubelet"), _marker("addon", FIRST_CONTROL_PLANE), _marker("uncordon")]
    ctx, run = _rolling(hosts, phases)
    summary = runner._turns(ctx, run, ta.View(), None)
    assert log == [
        ("a", "drain"),
        ("a", "kubelet"),
        ("a", "addon"),  # the first control plane's turn only
        ("a", "uncordon"),
        ("b", "drain"),
        ("b", "kubelet"),
        ("b", "uncordon"),
        ("c", "drain"),
        ("c", "kubelet"),
        ("c", "uncordon"),
    ]
    assert summary.changed == {"a": 4, "b": 3, "c": 3}
    assert ctx.only is None, "the run's context serves the whole cluster again afterwards"


def test_a_failed_turn_leaves_the_later_hosts_untouched():
    hosts = [ta.MemoryHost("a"), ta.MemoryHost("b", fail_on="kubelet"), ta.MemoryHost("c")]
    ctx, run = _rolling(hosts, [_marker("drain"), _marker("kubelet"), _marker("uncordon")])
    with pytest.raises(StepFailed, match=r"^b: phase kubelet failed"):
        runner._turns(ctx, run, ta.View(), None)
    assert not any(argv[0] == "mark" for argv in hosts[2].ran)
    assert ["mark", "uncordon", "b"] not in hosts[1].ran


def test_the_upgrade_takes_kubeadms_order_within_a_turn():
    paths = [leaf.path for top in upgrade.upgrade_phases() for leaf in top.leaves()]
    assert paths == [
        "preflight",
        "drain",
        "kubernetes",
        "images",
        "etcd",
        "control-plane",
        "kubelet",
        "wait",
        "uncordon",
        "upload-config/kubeadm",
        "upload-config/kubelet",
        "addon/coredns",
        "addon/kube-proxy",
    ]
