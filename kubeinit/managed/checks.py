"""Input checks every managed command runs before its first cloud call (exit 2, one line).

Shapes follow each cloud's naming: a wrong region fails here rather than after
IAM roles exist, and a count the cloud would refuse is refused before anything is made.
"""

from __future__ import annotations

import re

from kubeinit.errors import UserError

_PLACE = {
    # eu-west-1, us-gov-west-1, ap-southeast-2, cn-north-1, us-isob-east-1
    "eks": (re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"), "an AWS region such as eu-west-1"),
    # europe-west1 (regional) or europe-west1-b (zonal)
    "gke": (
        re.compile(r"^[a-z]+(-[a-z]+)*\d+(-[a-z])?$"),
        "a GCP region such as europe-west1 or zone such as europe-west1-b",
    ),
    "aks": (re.compile(r"^[a-z][a-z0-9]{1,40}$"), "an Azure location name such as westeurope (lowercase, no spaces)"),
}
_WHERE_FLAG = {"eks": "--region", "gke": "--location/--zone/--region", "aks": "--location"}
# Most nodes one pool may have: EKS's per-nodegroup quota (its default), GKE's per zone, AKS's per pool.
MAX_NODES = {"eks": 450, "gke": 1000, "aks": 1000}
_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_RG = re.compile(r"^[-\w.()]{0,89}[-\w()]$")


def place(spec) -> None:
    """The region/zone/location and account fields of a resolved spec have the cloud's shape."""
    p = spec.provider
    if spec.region is not None:
        pattern, what = _PLACE[p]
        if not pattern.match(spec.region):
            raise UserError(f"{spec.region!r} is not {what}: pass {_WHERE_FLAG[p]} with one")
    if p == "gke" and spec.project and not _PROJECT.match(spec.project):
        raise UserError(
            f"{spec.project!r} is not a GCP project id (6-30 lowercase letters, digits or '-', starting with a letter)"
        )
    if p == "aks" and spec.subscription and not _GUID.match(spec.subscription):
        raise UserError(f"{spec.subscription!r} is not an Azure subscription id (a GUID)")
    if p == "aks" and spec.resource_group and not _RG.match(spec.resource_group):
        raise UserError(
            f"{spec.resource_group!r} is not an Azure resource group name (1-90 letters, digits, "
            "'-', '_', '.', '(' or ')', not ending with '.')"
        )


def count(provider: str, what: str, n: int | None) -> None:
    if n is not None and n > MAX_NODES[provider]:
        per = " per zone" if provider == "gke" else ""
        raise UserError(
            f"{what} {n} is more than {provider.upper()} allows in one node pool{per} ({MAX_NODES[provider]})"
        )


def scale(spec, record, pool: str, nodes: int, min_: int | None, max_: int | None) -> None:
    """`scale nodepool`'s numbers, checked against what the cloud would accept."""
    p = spec.provider
    for what, n in (("--nodes", nodes), ("--nodes-min", min_), ("--nodes-max", max_)):
        count(p, what, n)
    if p in ("gke", "aks") and (min_ is None) != (max_ is None):
        raise UserError(
            f"{p.upper()} autoscaling needs both --nodes-min and --nodes-max (got only "
            f"{'--nodes-min' if max_ is None else '--nodes-max'})"
        )
    if min_ is not None and max_ is not None and min_ > max_:
        raise UserError(f"--nodes-min {min_} is more than --nodes-max {max_}")
    if min_ is not None and nodes < min_ or max_ is not None and nodes > max_:
        raise UserError(
            f"--nodes {nodes} is outside --nodes-min/--nodes-max [{min_ if min_ is not None else ''}, "
            f"{max_ if max_ is not None else ''}]"
        )
    if p == "eks" and max_ == 0:
        raise UserError("--nodes-max must be at least 1: EKS nodegroups need maxSize ≥ 1")
    if (
        p == "aks"
        and nodes == 0
        and record is not None
        and record.spec.node_pools
        and record.spec.node_pools[0].name == pool
    ):
        raise UserError(f"node pool {pool} is the AKS cluster's system pool: it needs at least 1 node")


_SAME_CLUSTER = {"profile"}  # how kubeinit reaches the cloud, not what the cluster is


def changes(old, new) -> tuple[list[str], list[str]]:
    """What a re-run's spec changes against the recorded one, and the commands that make those changes."""
    said, commands = [], []
    a, b = old.to_dict(), new.to_dict()
    for key in a:
        if key in ("node_pools", *_SAME_CLUSTER) or a[key] == b.get(key):
            continue
        said.append(f"{key.replace('_', ' ')} {_show(a[key])} → {_show(b.get(key))}")
    pools_a = {p["name"]: p for p in a["node_pools"]}
    pools_b = {p["name"]: p for p in b["node_pools"]}
    where = f"--provider {new.provider} --cluster {new.name}"
    for name, pb in pools_b.items():
        pa = pools_a.get(name)
        if pa is None:
            said.append(f"node pool {name} is new")
            commands.append(f"kubeinit create nodepool {name} {where} --nodes {pb['count']}")
            continue
        diff = [k for k in pb if pb[k] != pa.get(k)]
        if not diff:
            continue
        said.append(
            f"node pool {name}: "
            + ", ".join(f"{k.replace('_', ' ')} {_show(pa.get(k))} → {_show(pb[k])}" for k in diff)
        )
        if set(diff) <= {"count", "min", "max"}:
            bounds = "".join(f" --nodes-{k} {pb[k]}" for k in ("min", "max") if pb[k] is not None and k in diff)
            commands.append(f"kubeinit scale nodepool {name} {where} --nodes {pb['count']}{bounds}")
    for name in pools_a.keys() - pools_b.keys():
        said.append(f"node pool {name} is no longer given")
    return said, commands


def _show(v) -> str:
    if v is None or v == () or v == [] or v == {}:
        return "(none)"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)
