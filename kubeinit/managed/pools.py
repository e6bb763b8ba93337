"""Node pools of an existing cluster: list, create, delete (EKS nodegroups, GKE node pools, AKS agent pools).

A pool kubeinit creates is recorded in the cluster's record (kind KIND[provider]), so
`delete cluster` removes it with the rest; without a record (a cluster kubeinit did
not make) nothing is written, and deleting that cluster deletes its pools anyway.
As everywhere, the clouds are reached only through ctx.api(), so --dry-run sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeinit import ui
from kubeinit.errors import UserError
from kubeinit.managed.record import Record, record_path
from kubeinit.managed.spec import ManagedSpec, NodePoolSpec, _parse_pools
from kubeinit.providers import get_provider

KIND = {"eks": "nodegroup", "gke": "node_pool", "aks": "agent_pool"}
_FLAG = {
    "name": "NAME",
    "count": "--nodes",
    "min": "--nodes-min",
    "max": "--nodes-max",
    "instanceType": "--node-type",
    "diskSize": "--node-volume-size",
    "labels": "--labels",
    "spot": "--spot",
}
_AKS_SYSTEM = "kubeinitsys0"  # stands for the system pool while checking a user pool


def parse_pool(provider: str, raw: dict[str, Any]) -> NodePoolSpec:
    """One pool from flags, checked with the cluster file's rules; errors name the flag (exit 2)."""

    def err(where: str, msg: str) -> UserError:
        key = where.rsplit(".", 1)[-1]
        return UserError(f"{_FLAG.get(key, key)}: {msg}")

    raw = {k: v for k, v in raw.items() if v is not None}
    if provider == "aks":  # a new AKS pool is a user pool: check it as the second
        return _parse_pools([{"name": _AKS_SYSTEM, "count": 1}, raw], provider, err)[1]
    return _parse_pools([raw], provider, err)[0]


def _setup(spec: ManagedSpec, record: Record | None, opts, action: str = "scale"):
    from kubeinit.managed.ops import _ctx

    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, action)
    if record is None:  # not kubeinit's cluster: remember nothing (deleting the cluster takes its pools)
        record = Record(record_path(spec.provider, spec.name), spec, persist=False)
    return provider, spec, record, _ctx(provider, spec, record, opts)


def _interrupted(ctx, what: str):
    from kubeinit.managed.ops import Interrupted

    return Interrupted(f"interrupted while {ctx.stopped_at or ctx.label}; {what}")


def list_pools(spec: ManagedSpec, record: Record | None) -> list[dict]:
    from kubeinit.managed.run import LiveCtx

    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "scale")
    rec = record or Record(record_path(spec.provider, spec.name), spec, persist=False)
    rows = _LIST[spec.provider](LiveCtx(provider, spec, rec))
    mine = {p.name for p in rec.spec.node_pools} if record else set()
    mine |= {e["name"] for e in rec.resources if e["kind"] == KIND[spec.provider]}
    for row in rows:
        row["recorded"] = row["name"] in mine
    return rows


def create_pool(spec: ManagedSpec, record: Record | None, pool: NodePoolSpec, opts) -> None:
    provider, spec, record, ctx = _setup(spec, record, opts)
    try:
        _CREATE[spec.provider](ctx, pool)
    except KeyboardInterrupt:
        raise _interrupted(ctx, "run the same command again to resume") from None
    if not opts.dry_run:
        where = f"; recorded in {record.path}" if record.persist else ""
        ui.ok(f"node pool {pool.name} of {provider.title} cluster {spec.name} is ready{where}")


def delete_pool(spec: ManagedSpec, record: Record | None, name: str, opts) -> None:
    provider, spec, record, ctx = _setup(spec, record, opts)
    kind = KIND[spec.provider]
    if spec.provider == "aks" and record.persist and record.spec.node_pools and record.spec.node_pools[0].name == name:
        raise UserError(
            f"node pool {name} is the AKS cluster's system pool: it is deleted with the cluster "
            f"(`kubeinit delete cluster --provider aks --name {spec.name}`)"
        )
    entry = record.get(kind, name) or {"kind": kind, "name": name, "id": name, "data": {}}
    before = ctx.removed
    try:
        provider.delete(ctx, [entry])
    except KeyboardInterrupt:
        raise _interrupted(ctx, "the deletion goes on in the cloud; run the same command again to finish") from None
    if opts.dry_run:
        return
    if ctx.removed == before:
        raise UserError(f"node pool {name} of {provider.title} cluster {spec.name} was not found")
    ui.ok(f"node pool {name} of {provider.title} cluster {spec.name} deleted")


# -- EKS ------------------------------------------------------------------------
def _eks_list(ctx) -> list[dict]:
    s, eks, rows = ctx.spec, ctx.api("eks"), []
    with ctx.step(f"listing the nodegroups of EKS cluster {s.name}"):
        names: list[str] = []
        kw: dict[str, str] = {}
        while True:
            page = eks.list_nodegroups(clusterName=s.name, **kw)
            names += page["nodegroups"]
            if not page.get("nextToken"):
                break
            kw = {"nextToken": page["nextToken"]}
        for name in names:
            ng = eks.describe_nodegroup(clusterName=s.name, nodegroupName=name)["nodegroup"]
            sc = ng.get("scalingConfig") or {}
            rows.append(
                {
                    "name": name,
                    "instance_type": ",".join(ng.get("instanceTypes") or []),
                    "nodes": sc.get("desiredSize"),
                    "min": sc.get("minSize"),
                    "max": sc.get("maxSize"),
                    "spot": ng.get("capacityType") == "SPOT",
                    "version": ng.get("version", ""),
                    "status": ng.get("status", ""),
                }
            )
    return rows


def _eks_create(ctx, pool: NodePoolSpec) -> None:
    s, eks, provider = ctx.spec, ctx.api("eks"), ctx.provider
    role = s.node_role_arn or ((ctx.record.get("iam_role", "node") or {}).get("data") or {}).get("arn")
    subnets = list(s.subnets) or [
        e["id"] for e in ctx.record.resources if e["kind"] == "subnet" and e["name"].startswith("private-")
    ]
    if not (role and subnets):  # not in the record: take them from a nodegroup the cluster has
        with ctx.step(f"reading the node role and subnets of EKS cluster {s.name}'s nodegroups"):
            names = eks.list_nodegroups(clusterName=s.name)["nodegroups"]
            try:
                ng = eks.describe_nodegroup(clusterName=s.name, nodegroupName=names[0])["nodegroup"]
            except IndexError:
                raise UserError(
                    f"EKS cluster {s.name} has no nodegroup to take the node role and subnets from, "
                    "and kubeinit has no record of them"
                ) from None
            role, subnets = ng["nodeRole"], ng["subnets"]
    provider.ensure_nodegroup(ctx, pool, role, subnets)
    provider._wait_nodegroup(ctx, pool.name)


# -- GKE ------------------------------------------------------------------------
def _gke_list(ctx) -> list[dict]:
    s, provider = ctx.spec, ctx.provider
    with ctx.step(f"listing the node pools of GKE cluster {s.name}"):
        resp = ctx.api("container").list_node_pools(request={"parent": provider._cluster_path(s)})
    rows = []
    for p in resp.node_pools:
        auto = p.autoscaling
        rows.append(
            {
                "name": p.name,
                "instance_type": p.config.machine_type,
                "nodes": p.initial_node_count,
                "min": auto.min_node_count if auto.enabled else None,
                "max": auto.max_node_count if auto.enabled else None,
                "spot": bool(p.config.spot),
                "version": p.version,
                "status": p.status.name,
            }
        )
    return rows


def _gke_create(ctx, pool: NodePoolSpec) -> None:
    s, container, provider = ctx.spec, ctx.api("container"), ctx.provider
    body = provider._pool_body(pool)
    entry = ctx.ensure(
        "node_pool",
        pool.name,
        f"GKE node pool {pool.name}",
        lambda: (
            pool.name,
            {
                "operation": container.create_node_pool(
                    request={"parent": provider._cluster_path(s), "node_pool": body}
                ).name
            },
        ),
    )
    if entry["data"].get("operation") is not None:
        provider._wait_op(ctx, f"GKE node pool {pool.name} is created", entry["data"]["operation"])
    else:  # found after an interrupted create: its operation's name is unknown, so watch the pool
        ctx.wait(
            f"GKE node pool {pool.name} is created",
            lambda: container.get_node_pool(request={"name": f"{provider._cluster_path(s)}/nodePools/{pool.name}"}),
            provider._running,
        )


def gke_delete(provider, ctx, e) -> None:
    if getattr(ctx, "deleting_cluster", False):
        return  # the cluster's deletion takes its node pools
    name = f"{provider._cluster_path(ctx.spec)}/nodePools/{e['id']}"
    op = ctx.api("container").delete_node_pool(request={"name": name})
    provider._wait_op(ctx, f"GKE node pool {e['id']} is deleted", op.name)


# -- AKS ------------------------------------------------------------------------
def _aks_list(ctx) -> list[dict]:
    s = ctx.spec
    with ctx.step(f"listing the node pools of AKS cluster {s.name}"):
        pools = ctx.all(ctx.api("containerservice").agent_pools.list(s.resource_group, s.name))
    rows = []
    for p in pools:
        pr = p["properties"]
        auto = pr.get("enableAutoScaling")
        rows.append(
            {
                "name": p["name"],
                "instance_type": pr.get("vmSize", ""),
                "nodes": pr.get("count"),
                "min": pr.get("minCount") if auto else None,
                "max": pr.get("maxCount") if auto else None,
                "spot": pr.get("scaleSetPriority") == "Spot",
                "mode": pr.get("mode", ""),
                "version": pr.get("currentOrchestratorVersion") or pr.get("orchestratorVersion", ""),
                "status": pr.get("provisioningState", ""),
            }
        )
    return rows


def _aks_create(ctx, pool: NodePoolSpec) -> None:
    s, pools = ctx.spec, ctx.api("containerservice").agent_pools
    body = {"properties": ctx.provider._pool_body(s, pool, system=False)}
    pollers = []

    def create():
        pollers.append(pools.begin_create_or_update(s.resource_group, s.name, pool.name, body))
        return pool.name

    ctx.ensure("agent_pool", pool.name, f"AKS node pool {pool.name}", create)
    what = f"AKS node pool {pool.name} is created"
    if pollers:
        ctx.wait_lro(what, pollers[0])
    else:  # resumed: watch the pool itself
        ctx.wait(what, lambda: pools.get(s.resource_group, s.name, pool.name), _aks_provisioned)


def _aks_provisioned(p):
    from kubeinit.providers.base import Fault

    state = p["properties"].get("provisioningState", "")
    if state in ("Failed", "Canceled"):
        return Fault("failed", state, f"the node pool's provisioning state is {state}")
    return True if state == "Succeeded" else state


def aks_delete(provider, ctx, e) -> None:
    if getattr(ctx, "deleting_cluster", False):
        return  # the cluster's deletion takes its agent pools
    s = ctx.spec
    poller = ctx.api("containerservice").agent_pools.begin_delete(s.resource_group, s.name, e["id"])
    ctx.wait_lro(f"AKS node pool {e['id']} is deleted", poller)


_LIST: dict[str, Callable[[Any], list[dict]]] = {"eks": _eks_list, "gke": _gke_list, "aks": _aks_list}
_CREATE: dict[str, Callable[[Any, NodePoolSpec], None]] = {"eks": _eks_create, "gke": _gke_create, "aks": _aks_create}
