"""The `managed:` section of a cluster file, and the same thing from flags.

parse_managed() validates a plain dict into a ManagedSpec; every error names
its YAML path (`managed.nodePools[1].count: must be an integer ≥ 0`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from kubeinit.errors import SpecError
from kubeinit.managed.checks import MAX_NODES

PROVIDERS = ("eks", "gke", "aks")
# Per provider: first pool's name, node count and instance type when none is given.
DEFAULT_POOL = {
    "eks": ("ng-1", 2, "m5.large"),
    "gke": ("default-pool", 3, "e2-medium"),
    "aks": ("nodepool1", 3, "Standard_DS2_v2"),
}
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_POOL_NAME = {
    "eks": (re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9_]{0,62}$"), "letters, digits, '-' or '_', at most 63"),
    "gke": (re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"), "lowercase letters, digits and '-', at most 40"),
    "aks": (re.compile(r"^[a-z][a-z0-9]{0,11}$"), "lowercase letters and digits, at most 12"),
}
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([-.+][0-9A-Za-z.-]+)?$")
_ONLY_FOR = {
    "project": "gke",
    "resourceGroup": "aks",
    "subscription": "aks",
    "subnets": "eks",
    "clusterRoleArn": "eks",
    "nodeRoleArn": "eks",
    "profile": "eks",
}


@dataclass(frozen=True)
class NodePoolSpec:
    name: str
    count: int
    instance_type: str
    min: int | None = None
    max: int | None = None
    disk_size: int | None = None  # GiB
    labels: dict[str, str] = field(default_factory=dict)
    spot: bool = False  # EKS capacityType SPOT, GKE spot VMs, AKS scaleSetPriority Spot (user pools only)


@dataclass(frozen=True)
class ManagedSpec:
    provider: str
    name: str
    region: str | None  # AWS region, GCP zone or region, Azure location
    version: str | None = None
    node_pools: tuple[NodePoolSpec, ...] = ()
    project: str | None = None  # gke
    resource_group: str | None = None  # aks
    subscription: str | None = None  # aks
    subnets: tuple[str, ...] = ()  # eks: use these instead of creating a VPC
    cluster_role_arn: str | None = None  # eks: use this role instead of creating one
    node_role_arn: str | None = None  # eks
    tags: dict[str, str] = field(default_factory=dict)
    zones: tuple[str, ...] = ()  # EKS subnet AZs, GKE node locations, AKS availability zones
    profile: str | None = None  # eks: AWS named profile (a name, not a credential)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManagedSpec:
        d = dict(d)
        d["node_pools"] = tuple(NodePoolSpec(**p) for p in d.get("node_pools", ()))
        d["subnets"] = tuple(d.get("subnets", ()))
        d["zones"] = tuple(d.get("zones", ()))
        return cls(**d)


# the fields a flag replaces whole (merge_flags); the place and the first pool's fields merge
_PLAIN_KEYS = (
    "provider",
    "name",
    "version",
    "project",
    "resourceGroup",
    "subscription",
    "subnets",
    "clusterRoleArn",
    "nodeRoleArn",
    "tags",
    "zones",
    "profile",
)
_PLACES = ("region", "zone", "location")
_KEYS = {*_PLAIN_KEYS, *_PLACES, "nodePools"}
_POOL_KEYS = {"name", "count", "instanceType", "min", "max", "diskSize", "labels", "spot"}


def parse_managed(raw: Any, path: str = "managed", name: str | None = None, source: str | None = None) -> ManagedSpec:
    """Validate a `managed:` mapping. `name` is the file's top-level name, if any."""

    def err(where: str, msg: str) -> SpecError:
        return SpecError(f"{path}.{where}" if path else where, msg, source)

    if not isinstance(raw, dict):
        raise SpecError(path, "must be a mapping", source)
    unknown = sorted(set(raw) - _KEYS, key=str)  # YAML keys may be numbers too
    if unknown:
        raise err(unknown[0], f"unknown field (expected one of {', '.join(sorted(_KEYS))})")
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise err("provider", f"must be one of {', '.join(PROVIDERS)}")

    name = raw.get("name", name)
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 40:
        raise err("name", "must be 1-40 lowercase letters, digits or '-', starting with a letter")

    places = [k for k in _PLACES if raw.get(k) is not None]
    if len(places) > 1:
        raise err(places[1], f"give only one of region, zone or location (also got {places[0]})")
    region = raw.get(places[0]) if places else None
    if region is not None and (not isinstance(region, str) or not region.strip()):
        raise err(places[0], "must be a non-empty string")

    version = raw.get("version")
    if isinstance(version, float):
        raise err("version", f'must be a string such as "1.30" (quote it: YAML reads it as the number {version})')
    if version is not None and (not isinstance(version, str) or not _VERSION.match(version)):
        raise err("version", 'must be a Kubernetes version such as "1.30"')

    for key, only in _ONLY_FOR.items():
        if raw.get(key) is not None and provider != only:
            raise err(key, f"applies only to provider {only}")
    for key in ("project", "resourceGroup", "subscription", "clusterRoleArn", "nodeRoleArn"):
        if raw.get(key) is not None and (not isinstance(raw[key], str) or not raw[key]):
            raise err(key, "must be a non-empty string")
    for key in ("clusterRoleArn", "nodeRoleArn"):
        if raw.get(key) and not raw[key].startswith("arn:"):
            raise err(key, "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    subnets = raw.get("subnets") or []
    if not isinstance(subnets, list) or not all(isinstance(s, str) and s for s in subnets):
        raise err("subnets", "must be a list of subnet ids")
    if len(subnets) == 1:
        raise err("subnets", "EKS needs at least two subnets in different availability zones")
    tags = _str_map(raw.get("tags"), err, "tags")
    zones, profile = _zones(raw.get("zones"), provider, subnets, err), raw.get("profile")
    if profile is not None and (not isinstance(profile, str) or not re.match(r"^[\w.@+-]+$", profile)):
        raise err("profile", "must be the name of an AWS profile (letters, digits, '.', '@', '+', '-', '_')")

    pools = _parse_pools(raw.get("nodePools"), provider, err)
    return ManagedSpec(
        provider=provider,
        name=name,
        region=region,
        version=version,
        node_pools=pools,
        project=raw.get("project"),
        resource_group=raw.get("resourceGroup"),
        subscription=raw.get("subscription"),
        subnets=tuple(subnets),
        cluster_role_arn=raw.get("clusterRoleArn"),
        node_role_arn=raw.get("nodeRoleArn"),
        tags=tags,
        zones=zones,
        profile=profile,
    )


def _zones(raw: Any, provider: str, subnets: list, err) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(z, str) and z for z in raw):
        raise err("zones", "must be a non-empty list of zone names")
    if len(set(raw)) != len(raw):
        raise err("zones", "lists a zone twice")
    if provider == "eks" and subnets:
        raise err("zones", "give either subnets (their zones are used) or zones, not both")
    if provider == "eks" and not 2 <= len(raw) <= 4:
        raise err(
            "zones",
            "EKS needs two to four availability zones (kubeinit's VPC has a public and a private /19 subnet in each)",
        )
    if provider == "aks" and not all(z in ("1", "2", "3") for z in raw):
        raise err("zones", "AKS availability zones are 1, 2 or 3")
    return tuple(raw)


def _pool_int(v: Any, at: str, provider: str | None, err) -> int | None:
    """A node pool's number (None: not given); with `provider`, a node count within its limit."""
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        raise err(at, "must be an integer ≥ 0")
    if provider is not None and v is not None and v > MAX_NODES[provider]:
        per = " per zone" if provider == "gke" else ""
        raise err(at, f"must be ≤ {MAX_NODES[provider]}: {provider.upper()}'s most nodes in one node pool{per}")
    return v


def _parse_pools(raw: Any, provider: str, err) -> tuple[NodePoolSpec, ...]:
    pool_name, count, itype = DEFAULT_POOL[provider]
    if raw is None:
        return (NodePoolSpec(pool_name, count, itype),)
    if not isinstance(raw, list) or not raw:
        raise err("nodePools", "must be a non-empty list")
    pools, seen = [], set()
    pattern, rule = _POOL_NAME[provider]
    for i, p in enumerate(raw):
        at = f"nodePools[{i}]"
        if not isinstance(p, dict):
            raise err(at, "must be a mapping")
        unknown = sorted(set(p) - _POOL_KEYS, key=str)
        if unknown:
            raise err(f"{at}.{unknown[0]}", f"unknown field (expected one of {', '.join(sorted(_POOL_KEYS))})")
        name = p.get("name", pool_name if i == 0 else None)
        if not isinstance(name, str) or not pattern.match(name):
            raise err(f"{at}.name", f"must be {rule} characters")
        if name in seen:
            raise err(f"{at}.name", f"duplicate node pool name {name!r}")
        seen.add(name)
        nodes = _pool_int(p.get("count", count), f"{at}.count", provider, err)
        if nodes is None:  # `count:` left empty
            raise err(f"{at}.count", "must be an integer ≥ 0")
        low, high = (_pool_int(p.get(k), f"{at}.{k}", provider, err) for k in ("min", "max"))
        disk = _pool_int(p.get("diskSize"), f"{at}.diskSize", None, err)
        if low is not None and low > nodes:
            raise err(f"{at}.min", f"must be ≤ count ({nodes})")
        if high is not None and high < max(nodes, low or 0):
            raise err(f"{at}.max", "must be ≥ count and ≥ min")
        instance_type = p.get("instanceType", itype)
        if not isinstance(instance_type, str) or not instance_type:
            raise err(f"{at}.instanceType", "must be a non-empty string")
        spot = p.get("spot", False)
        if not isinstance(spot, bool):
            raise err(f"{at}.spot", "must be true or false")
        if spot and provider == "aks" and i == 0:
            raise err(
                f"{at}.spot",
                "AKS system pools (the first) cannot be spot: create the cluster without it, "
                "then add a spot pool with `kubeinit create nodepool NAME --cluster C --spot`",
            )
        pools.append(
            NodePoolSpec(
                name,
                nodes,
                instance_type,
                low,
                high,
                disk,
                _str_map(p.get("labels"), err, f"{at}.labels"),
                spot,
            )
        )
    if provider == "aks" and not any(pl.count > 0 for pl in pools[:1]):
        raise err("nodePools[0].count", "must be ≥ 1: AKS needs a system pool with nodes")
    return tuple(pools)


def _str_map(raw: Any, err, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise err(where, "must be a mapping of strings to strings")
    return dict(raw)


def load_file(path: str) -> tuple[dict[str, Any], str | None]:
    """Read a cluster file through kubeinit's one loader (so `config validate` judges it the same),
    which must find a valid managed section; return that mapping as written, for flags to go over,
    and the file's top-level `name`."""
    from kubeinit import spec as cluster

    docs = cluster.read_documents(path)
    cluster.load_documents(docs, source=str(path), require="managed")
    return docs[0]["managed"], docs[0].get("name")


def merge_flags(raw: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Overlay command-line values on a raw `managed` mapping (flags win).

    `nodes`, `node_type`, `nodes_min`, `nodes_max` apply to the first node pool.
    """
    raw = dict(raw)
    for key in _PLAIN_KEYS:
        if flags.get(key) is not None:
            raw[key] = flags[key]
    place = [k for k in _PLACES if flags.get(k)]
    if place:
        for k in _PLACES:
            raw.pop(k, None)
        for k in place:
            raw[k] = flags[k]
    pool_flags = {
        "count": flags.get("nodes"),
        "instanceType": flags.get("node_type"),
        "min": flags.get("nodes_min"),
        "max": flags.get("nodes_max"),
        "labels": flags.get("labels"),
        "diskSize": flags.get("node_volume_size"),
        "spot": flags.get("spot") or None,
    }
    pool_flags = {k: v for k, v in pool_flags.items() if v is not None}
    if pool_flags:
        pools = [dict(p) if isinstance(p, dict) else p for p in (raw.get("nodePools") or [{}])]
        if isinstance(pools[0], dict):
            pools[0].update(pool_flags)
        raw["nodePools"] = pools
    return raw
