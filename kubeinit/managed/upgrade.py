"""upgrade cluster: the control plane first, waiting for it, then each node pool, waiting for each.

The clouds move a control plane one minor version at a time (and pools may not run ahead
of it), so a version that skips a minor, or goes back, is refused after reading the
cluster's current version and before any change. As everywhere, only ctx.api() reaches
the cloud: --dry-run prints the calls and sends nothing.
"""

from __future__ import annotations

import dataclasses
import re

from kubeinit import ui
from kubeinit.errors import UserError
from kubeinit.managed.record import Record, record_path
from kubeinit.managed.spec import _VERSION, ManagedSpec
from kubeinit.providers import get_provider
from kubeinit.providers.base import Fault

_RULE = "a version that skips a minor version of the cluster's current one, or is older, is refused"


def minor(version: str) -> tuple[int, int]:
    m = re.match(r"^v?(\d+)\.(\d+)", str(version))
    if not m:
        raise UserError(f"{version!r} is not a Kubernetes version")
    return int(m.group(1)), int(m.group(2))


def check_step(title: str, name: str, current: str, target: str) -> bool:
    """True if the control plane must move (target's minor is current's + 1); False if it runs that minor."""
    cur, new = minor(current), minor(target)
    if new == cur:
        return False
    if new < cur:
        raise UserError(f"{title} cluster {name} runs {current}: {target} is older, and clusters are not downgraded")
    if new[0] != cur[0] or new[1] != cur[1] + 1:
        raise UserError(
            f"{title} cluster {name} runs {current}: upgrade one minor version at a time "
            f"({cur[0]}.{cur[1] + 1} first), as the clouds allow"
        )
    return True


def upgrade_cluster(spec: ManagedSpec, record: Record | None, version: str, opts) -> None:
    from kubeinit.managed.ops import Interrupted, _ctx

    if not _VERSION.match(version):
        raise UserError(f'--version {version!r} is not a Kubernetes version such as "1.31"')
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "scale")
    rec = record or Record(record_path(spec.provider, spec.name), spec, persist=False)
    ctx = _ctx(provider, spec, rec, opts)
    try:
        _IMPL[spec.provider](ctx, version)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while {ctx.stopped_at or ctx.label}; the upgrade goes on in the cloud: "
            "run the same command again to wait for it and go on"
        ) from None
    if opts.dry_run:
        return
    if record is not None:
        record.spec = dataclasses.replace(record.spec, version=version)
        record.save()
    ui.ok(f"{provider.title} cluster {spec.name} and its node pools run Kubernetes {version}")


def _same(current, target) -> bool:
    return minor(current) == minor(target)


# -- EKS ------------------------------------------------------------------------
def _eks_update_done(r):
    u = r["update"]
    if u["status"] == "Successful":
        return True
    if u["status"] in ("Failed", "Cancelled"):
        errs = u.get("errors") or []
        return Fault(
            "failed",
            errs[0].get("errorCode", u["status"]) if errs else u["status"],
            "; ".join(e.get("errorMessage", "") for e in errs),
        )
    return u["status"]


def _eks(ctx, version: str) -> None:
    s, eks = ctx.spec, ctx.api("eks")
    with ctx.step(f"reading EKS cluster {s.name}"):
        current = eks.describe_cluster(name=s.name)["cluster"]["version"]
    move = ctx.decide(lambda: check_step("EKS", s.name, current, version), _RULE)
    if move is not False:
        with ctx.step(f"upgrading the control plane of EKS cluster {s.name} to {version}"):
            update = eks.update_cluster_version(name=s.name, version=version)["update"]
        ctx.wait(
            f"the control plane of EKS cluster {s.name} runs {version}",
            lambda: eks.describe_update(name=s.name, updateId=update["id"]),
            _eks_update_done,
        )
    with ctx.step(f"listing the nodegroups of EKS cluster {s.name}"):
        names = eks.list_nodegroups(clusterName=s.name)["nodegroups"]
    for ng in names:
        with ctx.step(f"reading EKS nodegroup {ng}"):
            ng_version = eks.describe_nodegroup(clusterName=s.name, nodegroupName=ng)["nodegroup"]["version"]
        if ctx.decide(lambda v=ng_version: _same(v, version), "a nodegroup already on it is skipped") is True:
            ctx.note(f"EKS nodegroup {ng} already runs {version}")
            continue
        with ctx.step(f"upgrading EKS nodegroup {ng} to {version}"):
            update = eks.update_nodegroup_version(clusterName=s.name, nodegroupName=ng, version=version)["update"]
        ctx.wait(
            f"EKS nodegroup {ng} runs {version}",
            lambda ng=ng, u=update: eks.describe_update(name=s.name, nodegroupName=ng, updateId=u["id"]),
            _eks_update_done,
        )


# -- GKE ------------------------------------------------------------------------
def _gke(ctx, version: str) -> None:
    s, container, provider = ctx.spec, ctx.api("container"), ctx.provider
    path = provider._cluster_path(s)
    with ctx.step(f"reading GKE cluster {s.name}"):
        cluster = container.get_cluster(request={"name": path})
    move = ctx.decide(lambda: check_step("GKE", s.name, cluster.current_master_version, version), _RULE)
    if move is not False:
        with ctx.step(f"upgrading the control plane of GKE cluster {s.name} to {version}"):
            op = container.update_master(request={"name": path, "master_version": version})
        provider._wait_op(ctx, f"the control plane of GKE cluster {s.name} runs {version}", op.name)
    for pool in cluster.node_pools:
        if ctx.decide(lambda p=pool: _same(p.version, version), "a node pool already on it is skipped") is True:
            ctx.note(f"GKE node pool {pool.name} already runs {version}")
            continue
        image = ctx.decide(lambda p=pool: p.config.image_type or "COS_CONTAINERD", "the pool's image type")
        with ctx.step(f"upgrading GKE node pool {pool.name} to {version}"):
            op = container.update_node_pool(
                request={"name": f"{path}/nodePools/{pool.name}", "node_version": version, "image_type": image}
            )
        provider._wait_op(ctx, f"GKE node pool {pool.name} runs {version}", op.name)


# -- AKS ------------------------------------------------------------------------
def _aks(ctx, version: str) -> None:
    s = ctx.spec
    cs = ctx.api("containerservice")
    with ctx.step(f"reading AKS cluster {s.name}"):
        mc = cs.managed_clusters.get(s.resource_group, s.name)
    current = mc["properties"]["currentKubernetesVersion"]
    move = ctx.decide(lambda: check_step("AKS", s.name, current, version), _RULE)
    if move is not False:
        with ctx.step(f"upgrading the control plane of AKS cluster {s.name} to {version}"):
            mc["properties"]["kubernetesVersion"] = version  # the pools keep their orchestratorVersion
            poller = cs.managed_clusters.begin_create_or_update(s.resource_group, s.name, mc)
        ctx.wait_lro(f"the control plane of AKS cluster {s.name} runs {version}", poller)
    with ctx.step(f"listing the node pools of AKS cluster {s.name}"):
        pools = ctx.all(cs.agent_pools.list(s.resource_group, s.name))
    for pool in pools:
        name = pool["name"]

        def on_it(p=pool):
            have = p["properties"].get("currentOrchestratorVersion") or p["properties"].get("orchestratorVersion")
            return bool(have) and _same(have, version)

        if ctx.decide(on_it, "a node pool already on it is skipped") is True:
            ctx.note(f"AKS node pool {name} already runs {version}")
            continue
        with ctx.step(f"upgrading AKS node pool {name} to {version}"):
            pool["properties"]["orchestratorVersion"] = version  # PUT replaces the pool: send it whole
            poller = cs.agent_pools.begin_create_or_update(s.resource_group, s.name, name, pool)
        ctx.wait_lro(f"AKS node pool {name} runs {version}", poller)


_IMPL = {"eks": _eks, "gke": _gke, "aks": _aks}
