"""The upgrade's version rules (kubeinit/kube/versionskew.py): kubeadm's policy, with every downgrade refused."""

from __future__ import annotations

import pytest

from kubeinit.kube import versionskew as vs


@pytest.mark.parametrize(
    ("cluster", "target", "kind"),
    [
        ("v1.31.4", "v1.31.5", vs.UPGRADE),  # a patch
        ("v1.31.4", "v1.32.0", vs.UPGRADE),  # the next minor
        ("1.31.4", "v1.32.9", vs.UPGRADE),  # kubeadm-config written without the v
        ("v1.31.5", "v1.31.5", vs.CURRENT),  # a re-run finishes the hosts
        ("v1.31.5", "1.31.5", vs.CURRENT),
        ("v1.31.5", "v1.31.4", vs.REFUSED),  # a patch down
        ("v1.32.0", "v1.31.9", vs.REFUSED),  # a minor down (kubeadm allows it; kubeinit does not)
        ("v1.31.4", "v1.33.0", vs.REFUSED),  # two minors up
        ("v1.31.4", "v2.0.0", vs.REFUSED),
    ],
)
def test_verdict(cluster, target, kind):
    v = vs.verdict(cluster, target)
    assert v.kind == kind, v
    assert bool(v.reason) == (kind == vs.REFUSED)


def test_refusals_say_why_and_what_to_do_in_one_line():
    jump = vs.verdict("v1.31.4", "v1.33.2").reason
    assert jump == ("the cluster runs v1.31.4 and the file says v1.33.2: upgrade one minor at a time: first to v1.32.x")
    down = vs.verdict("v1.31.5", "v1.31.4").reason
    assert "does not downgrade" in down and "set kubernetesVersion: v1.31.5" in down
    odd = vs.verdict("latest", "v1.31.4").reason
    assert "'latest'" in odd and "kubeadm-config" in odd
    for reason in (jump, down, odd):
        assert "\n" not in reason


def test_parse_takes_only_plain_versions():
    assert vs.parse("v1.31.4") == (1, 31, 4) == vs.parse(" 1.31.4 ")
    assert vs.parse("v1.31") is None and vs.parse("v1.31.4-rc.0") is None and vs.parse("") is None


@pytest.mark.parametrize(
    ("kubelet", "target", "problem"),
    [
        ("v1.31.4", "v1.31.5", ""),
        ("v1.31.4", "v1.32.0", ""),  # one minor behind while the control plane goes first: supported
        ("v1.30.9", "v1.32.0", "more than 1 minor behind v1.32.0"),
        ("v1.32.1", "v1.32.0", "newer than the file's v1.32.0"),
        ("v1.20.2-dirty", "v1.32.0", "not a version like"),
        ("", "v1.32.0", "not a version like"),
    ],
)
def test_kubelet_skew(kubelet, target, problem):
    got = vs.kubelet_skew("w1", kubelet, target)
    assert (problem in got and got.startswith("node w1")) if problem else got == ""
