"""upgrade's etcd phase (each control plane, in its turn): the etcd binary and unit the file
names, and etcd restarted on them, one member at a time as the turns go (the other members
keep the quorum). The first control plane's etcd is init's etcd/local; another control plane's
is join's control-plane-join/etcd, which only converges a member that has joined already.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.phases import PhaseImpl, etcd, etcd_join
from kubeinit.steps import Step


def _first(ctx: Context, target: Target) -> bool:
    return target.name == ctx.spec.first_control_plane.name


def plan_etcd(ctx: Context, target: Target) -> Iterable[Step]:
    return etcd.LOCAL.plan(ctx, target) if _first(ctx, target) else etcd_join.ETCD.plan(ctx, target)


def facts(ctx: Context, target: Target) -> list[Fact]:
    return etcd.facts(ctx, target) if _first(ctx, target) else etcd.join_facts(ctx, target)


ETCD = PhaseImpl(plan_etcd, facts, preload=etcd.preload)
