"""The executor: the one place that turns planned steps into changes.

For each selected phase (a barrier between phases), every host it applies to
is planned, in parallel up to `parallel` hosts, into one value, the phase's plan
(`plan_phase` -> PhasePlan: each host's steps, or why it could not be planned). --dry-run
prints that value; a real run applies it. The printed plan is, by construction, what a
real run does. No phase knows whether it runs dry: a fact --dry-run cannot learn yet (the
API server before it runs, a checksum file out of reach) is Unknown (Context.learn).

Before a host plans a phase, the facts that phase declares (PhaseImpl.facts) are gathered
in one round trip. After a read-only phase (preflight) nothing has changed, so the facts
of the phases that follow it are gathered with its own: on a converged host,
`up --only preflight,runtime` costs one probe round trip. After a phase changed a host,
its facts are asked again (Facts.changed), but for the stable ones (architecture, OS).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kubeinit import workflow
from kubeinit.connection import HostUnreachable
from kubeinit.context import Context, Target
from kubeinit.errors import KubeinitError, NotAvailableYet, StepFailed
from kubeinit.hostlock import HostBusy
from kubeinit.redact import mask
from kubeinit.steps import ApiCall, Check, Local, Notice, Run, Skip, Step, Transfer, Upload, is_change


@dataclass
class HostOutcome:
    host: str
    steps: list[Step] = field(default_factory=list)
    changed: int = 0
    skipped: int = 0
    error: KubeinitError | None = None


@dataclass
class Summary:
    phases: list[str] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    times: dict[str, float] = field(default_factory=dict)  # each phase's path -> its seconds (plan and apply)

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


class RunLog:
    """A log file of the run; every line masked."""

    def __init__(self, path: Path | None):
        self.path = path
        self._f = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._f = os.fdopen(fd, "a", buffering=1)

    def write(self, host: str, phase: str, text: str) -> None:
        if self._f:
            stamp = time.strftime("%H:%M:%S")
            for line in mask(text).splitlines() or [""]:
                self._f.write(f"{stamp} {host} [{phase}] {line}\n")

    def close(self) -> None:
        if self._f:
            self._f.close()


def unavailable(phases: list[workflow.Phase], spec=None) -> list[str]:
    """The unbuilt leaves; with `spec`, only those that would work on one of its hosts."""
    return [p.path for p in phases if p.plan is None and (spec is None or workflow.has_hosts(p, spec))]


@dataclass
class TargetPlan:
    """One host's part of a phase's plan: its steps, or why it could not be planned."""

    target: Target
    steps: list[Step] = field(default_factory=list)
    error: StepFailed | None = None


@dataclass
class PhasePlan:
    """What a phase does, host by host, over the facts as they are (or, in --dry-run, as the
    earlier phases' plans leave them): --dry-run prints it, a real run applies it."""

    phase: workflow.Phase
    targets: list[TargetPlan]


def plan_phase(
    ctx: Context,
    phase: workflow.Phase,
    ahead: list[workflow.Phase] | None = None,
    probing=lambda: None,
    targets: list[Target] | None = None,
) -> PhasePlan:
    """Gather each target's facts (with those of `ahead`, the read-only run after it) in one
    round trip, take its host lock, and plan it: hosts in parallel, nothing changed."""
    targets = ctx.targets_for(phase) if targets is None else targets
    workers = max(1, min(ctx.options.parallel, len(targets)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        planned = list(pool.map(lambda t: _plan_target(ctx, phase, t, ahead or [phase], probing), targets))
    return PhasePlan(phase, planned)


def connect_ahead(ctx: Context, phases: list[workflow.Phase]) -> None:
    """Log in to the first phase's hosts (as many as run at once) in the background, so that
    the rest of start-up runs while they answer: on a converged cluster the logins are most
    of a re-run."""
    first = next((p for p in phases if p.plan is not None), None)
    if first is not None:
        for t in ctx.targets_for(first)[: max(1, ctx.options.parallel)]:
            t.connect_ahead()


def execute(ctx: Context, phases: list[workflow.Phase], view, log: RunLog | None = None) -> Summary:
    """Plan each phase, then print (--dry-run) or apply that plan; raise on the first failed phase."""
    dry = ctx.options.dry_run
    log = log or RunLog(None)
    missing = unavailable(phases, ctx.spec)
    if missing and not dry:
        raise NotAvailableYet(
            f"{'phase' if len(missing) == 1 else 'phases'} {', '.join(missing)}",
            f"run the others with --skip-phases {','.join(_collapse(missing))}, or see the plan with --dry-run",
        )
    summary = Summary()
    start = time.monotonic()
    # Import the later phases' code (jinja2, the PKI) while the first phase waits on its hosts'
    # answers: started by the first probe sent, not before, as logging in needs the CPU itself.
    preload = _once(lambda: threading.Thread(target=_preload, args=(phases[1:],), daemon=True).start())
    for i, phase in enumerate(phases):
        targets = ctx.targets_for(phase)
        if not targets and ctx.only is not None:  # a rolling run's turn this phase has no host in
            continue
        summary.phases.append(phase.path)
        if phase.plan is None:
            if not targets:
                continue
            view.unavailable(phase.path, [t.name for t in targets])
            continue
        view.phase(phase.path, [t.name for t in targets])
        began = time.monotonic()
        if phase.impl().serial and not dry:
            outcomes = _serially(ctx, phase, targets, view, log)
        else:
            plan = plan_phase(ctx, phase, _gathered_with(phases, i), preload)
            outcomes = show(plan, view, log) if dry else apply_plan(ctx, plan, view, log)
        summary.times[phase.path] = time.monotonic() - began
        for o in outcomes:
            summary.changed[o.host] = summary.changed.get(o.host, 0) + o.changed
            summary.skipped[o.host] = summary.skipped.get(o.host, 0) + o.skipped
        failed = [o.error for o in outcomes if o.error is not None]
        if failed:  # each failed host has shown its own line and reason; the first error ends the run
            raise failed[0]
    summary.seconds = time.monotonic() - start
    return summary


def _serially(ctx: Context, phase: workflow.Phase, targets: list[Target], view, log: RunLog) -> list[HostOutcome]:
    """A serial phase: each host planned once the host before it is applied, stopping at a failure.
    What a host was asked before may be stale after another's change (etcd's members): asked again."""
    out: list[HostOutcome] = []
    for t in targets:
        if out:
            t.host_changed()
        out += apply_plan(ctx, plan_phase(ctx, phase, targets=[t]), view, log)
        if out[-1].error is not None:
            break
    return out


def show(plan: PhasePlan, view, log: RunLog) -> list[HostOutcome]:
    """--dry-run: each host's planned steps, or why it could not be planned."""
    out = []
    for tp in plan.targets:
        o = HostOutcome(tp.target.name, tp.steps, error=tp.error)
        if tp.error:
            _failed(o, plan.phase.path, view, log)
        else:
            view.planned(tp.target.name, plan.phase.path, tp.steps)
        out.append(o)
    return out


def apply_plan(ctx: Context, plan: PhasePlan, view, log: RunLog) -> list[HostOutcome]:
    """Apply each host's planned steps, hosts in parallel; a host that could not be planned fails."""
    workers = max(1, min(ctx.options.parallel, len(plan.targets)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda tp: _apply_target(ctx, plan.phase, tp, view, log), plan.targets))


def _once(fn):
    lock, done = threading.Lock(), []

    def call() -> None:
        with lock:
            if not done:
                done.append(True)
                fn()

    return call


def _preload(phases: list[workflow.Phase]) -> None:
    """Import each phase's module and run its preload()."""
    for p in phases:
        try:
            if p.plan is not None and (warm := p.impl().preload):
                warm()
        except Exception:  # noqa: BLE001 - the phase itself will report it when it runs
            pass


def _gathered_with(phases: list[workflow.Phase], i: int) -> list[workflow.Phase]:
    """Phase i and the phases after it whose facts cannot change before they plan: every
    phase between them only reads. (Later phases re-ask what is not cached; gathering
    ahead only saves round trips.)"""
    out = [phases[i]]
    for p in phases[i + 1 :]:
        if out[-1].plan is None or not out[-1].impl().read_only:
            break
        out.append(p)
    return out


def _gather(ctx: Context, target: Target, phases: list[workflow.Phase]) -> None:
    """The facts these phases declare for this target, in one round trip."""
    target.facts.gather(
        [
            fact
            for p in phases
            if p.plan is not None and target in ctx.targets_for(p)
            for fact in p.impl().facts(ctx, target)
        ]
    )


def _collapse(paths: list[str]) -> list[str]:
    """`etcd/local,control-plane/apiserver,...` -> top-level names where whole sub-trees are listed."""
    tops: list[str] = []
    for p in paths:
        top = p.split("/")[0]
        if top not in tops:
            tops.append(top)
    return tops


def _plan_target(
    ctx: Context, phase: workflow.Phase, target: Target, ahead: list[workflow.Phase], probing
) -> TargetPlan:
    out = TargetPlan(target)
    try:
        target.conn  # noqa: B018 - logged in (or failed to) before the probes go out
        probing()
        _gather(ctx, target, ahead)
        if target.hold():  # another run let go while this one probed: read the host again
            target.reset_facts()
            _gather(ctx, target, ahead)
        out.steps = list(phase.impl().plan(ctx, target))
    except (KubeinitError, HostUnreachable, OSError) as e:
        out.error = _error(ctx, phase, target, None, e)
    return out


def _apply_target(ctx: Context, phase: workflow.Phase, tp: TargetPlan, view, log: RunLog) -> HostOutcome:
    target = tp.target
    out = HostOutcome(target.name, tp.steps, error=tp.error)
    if out.error:
        _failed(out, phase.path, view, log)
        return out
    resume = ctx.resume_hint(phase.path)
    step: Step | None = None
    try:
        checks_failed = []
        for step in tp.steps:
            view.step(target.name, phase.path, step)
            log.write(target.name, phase.path, step.describe())
            _do(ctx, target, step, phase.path, resume, log)
            if isinstance(step, Check) and not step.passed and step.fatal:
                checks_failed.append(step)
            if is_change(step):
                out.changed += 1
            elif isinstance(step, Skip):
                out.skipped += 1
        if checks_failed:
            names = ",".join(c.name for c in checks_failed)
            detail = "; ".join(f"[ERROR {c.name}] {c.message}" for c in checks_failed)
            raise StepFailed(
                target.name,
                phase.path,
                "",
                f"{detail}; fix these, or pass --ignore-preflight-errors={names} to show them as warnings",
            )
        view.host_done(target.name, phase.path, out.changed, out.skipped)
    except (KubeinitError, HostUnreachable, OSError) as e:
        out.error = _error(ctx, phase, target, step, e)
    if out.changed and not phase.impl().read_only:
        target.host_changed()  # what it asked before may be stale now: a later phase asks again
    if out.error:
        _failed(out, phase.path, view, log)
    return out


def _error(ctx: Context, phase: workflow.Phase, target: Target, step: Step | None, e: Exception) -> StepFailed:
    """The error as one StepFailed naming host, phase and where: a step, or connect/lock/plan."""
    resume = ctx.resume_hint(phase.path)
    if isinstance(e, StepFailed):
        return e
    if isinstance(e, HostUnreachable):
        target.close()
        return StepFailed(
            target.name, phase.path, _label(step) if step else "connect", f"host unreachable ({e})", resume
        )
    if isinstance(e, KubeinitError):  # before any step: while connecting (host key, login, sudo) or planning
        where = _label(step) if step else ("plan" if target.connected else "connect")
        where = "lock" if isinstance(e, HostBusy) else where
        # an input the phase refuses for good (resumable = False) gets no resume hint: re-running cannot help
        err = StepFailed(target.name, phase.path, where, str(e).rstrip("."), resume if e.resumable else "")
        err.exit_code = e.exit_code
        err.resumable = e.resumable
        return err
    return StepFailed(target.name, phase.path, _label(step) if step else "plan", f"{e.__class__.__name__}: {e}", resume)


def _failed(out: HostOutcome, phase: str, view, log: RunLog) -> None:
    log.write(out.host, phase, f"FAILED: {out.error}")
    view.failed(out.host, phase, out.error)


def _label(step: Step) -> str:
    """How an error names the step: its short note when it has one (a transfer's describe()
    carries two long paths), else what it does."""
    return getattr(step, "note", "") or step.describe()


def _do(ctx: Context, target: Target, step: Step, phase: str, resume: str, log: RunLog) -> None:
    conn = target.conn
    if isinstance(step, Run):
        stdin = step.stdin
        data = stdin.value if stdin is not None and hasattr(stdin, "value") else stdin
        if isinstance(data, str):
            data = data.encode()
        r = conn.run(step.argv, stdin=data, timeout=step.timeout)
        if r.out.strip():
            log.write(target.name, phase, r.out)
        if r.err.strip():
            log.write(target.name, phase, r.err)
        if step.check and r.rc != 0:
            tail = " | ".join((r.err or r.out).strip().splitlines()[-3:]) or f"exit code {r.rc}"
            raise StepFailed(target.name, phase, step.note or step.command(), f"exit code {r.rc}: {tail}", resume)
    elif isinstance(step, Upload):
        conn.put(step.path, step.data, step.mode)
    elif isinstance(step, Transfer):
        conn.put_file(step.local_path, step.path, step.mode, step.sha256)  # the host checks the plan's digest
    elif isinstance(step, Local):
        step.action()
    elif isinstance(step, ApiCall):
        from kubeinit.kube import admins, objects, tlsbootstrap
        from kubeinit.unitwatch import UnitWatch

        if step.verb == admins.VERB:  # the plan saw admin.conf is no cluster admin yet
            if done := admins.apply(ctx, target, step):
                log.write(target.name, phase, done)
        elif step.verb == tlsbootstrap.VERB:  # the joining host's own credentials, not admin.conf
            tlsbootstrap.wait(conn, step.path, (step.body or {})["node"], step.timeout, UnitWatch(conn, step.watch))
            target.forget_files([step.path])  # the kubelet wrote it: a later phase reads it afresh
        else:
            api = ctx.target(step.through) if step.through else target
            objects.call(ctx.kube(api), step, UnitWatch(conn, step.watch) if step.watch else None)
    elif isinstance(step, (Skip, Check, Notice)):
        pass
    else:  # pragma: no cover - a new step type without an executor branch is a bug
        raise TypeError(f"unknown step {step!r}")
