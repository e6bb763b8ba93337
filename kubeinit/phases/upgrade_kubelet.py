"""upgrade's kubelet phase (every host, in its turn): the kubelet's files for the cluster's new
version, and the kubelet restarted on its new binary.

On the first control plane this is init's kubelet-start (its KubeletConfiguration rendered from
the cluster file). On the other hosts the KubeletConfiguration comes from the cluster, as
`kubeadm upgrade node`'s kubelet-config phase takes it: ConfigMap kube-system/kubelet-config,
which the first control plane's turn has brought up to date, read through that host's API
connection (a worker has no admin.conf). join's kubelet-start cannot serve here: a host that has
joined only skips there, and would keep running its old kubelet beside the new binary.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts import Fact, Unknown
from kubeinit.facts.host import UnitState
from kubeinit.kube import joining, objects
from kubeinit.kube.client import ApiError, Unreachable
from kubeinit.phases import PhaseImpl, kubelet
from kubeinit.steps import Notice, Step

KUBELET_CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
}


def facts(ctx: Context, target: Target) -> list[Fact]:
    return kubelet.facts(ctx, target)


def cluster_kubelet_config(ctx: Context) -> str | Unknown:
    """The cluster's KubeletConfiguration (kubelet-config's `kubelet` key), through the first control plane."""
    first = ctx.target(ctx.spec.first_control_plane.name)

    def read() -> str:
        cm = objects.get(ctx.kube(first), KUBELET_CONFIG)
        config = ((cm or {}).get("data") or {}).get("kubelet")
        if not config:
            raise KubeinitError(
                "the cluster has no ConfigMap kube-system/kubelet-config with a kubelet key: run the "
                "upload-config phase on the first control plane (`kubeinit up --only upload-config`)"
            )
        return config

    return ctx.learn(read, lambda e: isinstance(e, (Unreachable, ApiError)))


def plan_kubelet(ctx: Context, target: Target) -> Iterator[Step]:
    if target.name == ctx.spec.first_control_plane.name:
        yield from kubelet.plan_kubelet_start(ctx, target)
        return
    config = cluster_kubelet_config(ctx)
    if isinstance(config, Unknown):
        yield Notice(f"the cluster's kubelet-config cannot be read yet ({config.error}): shown with init's")
        config = kubelet.config_yaml(ctx, False)
    resolved = target.facts.get(UnitState("systemd-resolved")).active == "active"
    yield from kubelet.plan_kubelet_start(ctx, target, joining.for_this_node(config, resolved))


KUBELET = PhaseImpl(plan_kubelet, facts, preload=kubelet.preload)
