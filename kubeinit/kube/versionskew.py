"""The upgrade's version rules, kubeadm's (cmd/kubeadm/app/phases/upgrade/policy.go), as pure functions.

    parse(v) -> (major, minor, patch) | None       "v1.31.4" or "1.31.4"; None for anything else
    verdict(cluster, target) -> Verdict            upgrade, nothing to do, or refused with the reason
    kubelet_skew(name, kubelet, target) -> str     why a Node's kubelet is outside the skew kubeadm
                                                   supports with the target's control plane ("" if inside)

kubeinit refuses every downgrade (kubeadm allows one minor down; a cluster file is the desired
state, and rolling a cluster backwards is not what a changed version number should do by accident)
and a jump of more than one minor. The same version is allowed: a run killed half-way, run
again, must be able to finish the hosts it did not reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeinit.spec.model import VERSION_RE

UPGRADE = "upgrade"
CURRENT = "current"  # the cluster already runs the target: only hosts not yet upgraded are left
REFUSED = "refused"
KUBELET_SKEW = 1  # kubeadm's MaximumAllowedMinorVersionKubeletSkew: kubelets this many minors behind, at most

Version = tuple[int, int, int]


def parse(v: str) -> Version | None:
    m = VERSION_RE.match(v.strip()) if isinstance(v, str) else None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def show(v: Version) -> str:
    return "v{}.{}.{}".format(*v)


@dataclass(frozen=True)
class Verdict:
    kind: str  # UPGRADE, CURRENT or REFUSED
    cluster: str  # the cluster's version, as read
    target: str  # the file's kubernetesVersion
    reason: str = ""  # REFUSED: the one line that says why and what to do

    @property
    def refused(self) -> bool:
        return self.kind == REFUSED


def verdict(cluster: str, target: str) -> Verdict:
    """What an upgrade from the cluster's version to the file's may do."""
    have, want = parse(cluster), parse(target)
    if have is None:
        return Verdict(
            REFUSED,
            cluster,
            target,
            f"the cluster's version {cluster!r} (kube-system/kubeadm-config) is not a version like v1.31.4",
        )
    if want is None:  # validate() refuses it first; a spec made in code may skip validate()
        return Verdict(
            REFUSED, cluster, target, f"the file's kubernetesVersion {target!r} is not a version like v1.31.4"
        )
    if want == have:
        return Verdict(CURRENT, cluster, target)
    if want < have:
        return Verdict(
            REFUSED,
            cluster,
            target,
            f"the cluster runs {show(have)} and the file says {show(want)}: kubeinit does not downgrade a "
            f"cluster; set kubernetesVersion: {show(have)} (or newer) in the file",
        )
    if want[0] != have[0]:
        return Verdict(REFUSED, cluster, target, f"{show(have)} -> {show(want)} changes the major version")
    if want[1] > have[1] + 1:
        return Verdict(
            REFUSED,
            cluster,
            target,
            f"the cluster runs {show(have)} and the file says {show(want)}: upgrade one minor at a time: "
            f"first to v{have[0]}.{have[1] + 1}.x",
        )
    return Verdict(UPGRADE, cluster, target)


def kubelet_skew(name: str, kubelet: str, target: str) -> str:
    """Why node `name`'s kubelet (its Node's kubeletVersion) is outside kubeadm's supported skew with
    a control plane at `target`, or "". kubeadm only warns (it is skippable there): the upgrade
    itself puts the target's kubelet on every host of the file."""
    have, want = parse(kubelet), parse(target)
    if want is None:
        return ""
    if have is None:
        return f"node {name} reports kubelet version {kubelet or '(none)'!r}, not a version like v1.31.4"
    if have > want:
        return f"node {name}'s kubelet {show(have)} is newer than the file's {show(want)}"
    if have[0] != want[0] or want[1] > have[1] + KUBELET_SKEW:
        return (
            f"node {name}'s kubelet {show(have)} is more than {KUBELET_SKEW} minor behind {show(want)}, "
            "a skew kubeadm does not support while the control plane is upgraded"
        )
    return ""
