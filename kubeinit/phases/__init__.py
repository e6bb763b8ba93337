"""The phases: each module exports its phase(s) as PhaseImpl values, which the tree in
kubeinit/workflow.py refers to (imported when a run needs them, so `--help` imports none).

A PhaseImpl is what a leaf of the tree does: `plan(context, target)` yields steps and only
reads; `facts(context, target)` declares the facts the plan reads, which the executor gathers
in one round trip per host (with the next phases' when this one only reads); `preload` warms
what the plan will need (templates) while the hosts answer; a `serial` phase works on its
hosts one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubeinit.context import Context, Target
    from kubeinit.facts import Fact
    from kubeinit.steps import Step


def _none(ctx: Context, target: Target) -> list[Fact]:
    return []


@dataclass(frozen=True)
class PhaseImpl:
    plan: Callable[[Context, Target], Iterable[Step]]
    facts: Callable[[Context, Target], list[Fact]] = _none
    read_only: bool = False  # changes nothing on hosts (preflight): later phases' facts can be gathered first
    preload: Callable[[], None] | None = None
    # one host after the other, each planned once the one before is applied (an etcd member joins
    # a cluster whose earlier members have all started)
    serial: bool = False


@dataclass(frozen=True)
class NamedPhase:
    """One phase per name (which certificate, kubeconfig or component): its plan also takes the
    name, which the tree binds (`bound`) to make each leaf's PhaseImpl."""

    plan: Callable[[Context, Target, str], Iterable[Step]]
    facts: Callable[[Context, Target], list[Fact]] = _none
    preload: Callable[[], None] | None = None

    def bound(self, name: str) -> PhaseImpl:
        plan = self.plan
        return PhaseImpl(lambda ctx, target: plan(ctx, target, name), self.facts, preload=self.preload)
