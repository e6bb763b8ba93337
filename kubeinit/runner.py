"""One run of phases, for init, reset and up (and join, once built): this host or every host of a file.

`run_workflow` checks what is not built yet before anything is contacted, asks a destructive
command's question, builds the context (a LocalConnection for this host, or lazy SSH
connections over one login pool), takes the locks, runs the executor with the live view,
and ends with the summary. Errors are raised, never printed: the CLI's application object
prints them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubeinit import hostlock, ui, workflow
from kubeinit.errors import NotAvailableYet, StepFailed
from kubeinit.spec import ClusterSpec, Host


@dataclass(frozen=True)
class SSH:
    """How a run over SSH logs in (the flags every command that reaches hosts shares)."""

    known_hosts: str | None = None
    trust_new_host_keys: bool = False
    parallel: int = 10


@dataclass
class Run:
    command: str  # how the user called it: "init", "init phase certs/ca", "reset", "up"
    spec: ClusterSpec
    phases: list[workflow.Phase]
    resume: Callable[[str], str]  # phase path -> the command that finishes the job
    # what is not built yet (the leaves' paths) -> the error, with the hint that fits the command
    not_available: Callable[[list[str]], NotAvailableYet]
    dry_run: bool = False
    ignore_preflight_errors: frozenset[str] = frozenset()
    ssh: SSH | None = None  # None: this host, with no SSH
    confirm: Callable[[ClusterSpec], None] | None = None  # a destructive command asks here, before any host
    shared: dict = field(default_factory=dict)  # handed to the phases (Context.shared): what `join` was told
    whole: bool = False  # every phase (no --only): the summary shows the cluster's nodes and the kubectl line
    file: str | None = None  # the cluster file of a run over SSH
    # a rolling run (upgrade): every phase for the hosts of one turn, then the next turn's
    turns: list[list[str]] | None = None
    ahead: list[workflow.Phase] = field(default_factory=list)  # run on every host before the first turn


def skip_hint(missing: list[str]) -> NotAvailableYet:
    """On this host: name the leaves, suggest skipping them."""
    from kubeinit.apply import _collapse

    return NotAvailableYet(
        f"{'phase' if len(missing) == 1 else 'phases'} {', '.join(missing)}",
        f"run the others with --skip-phases {','.join(_collapse(missing))}, or see the plan with --dry-run",
    )


def run_workflow(run: Run) -> None:
    from kubeinit.apply import RunLog, connect_ahead, execute, unavailable
    from kubeinit.context import Context, Options

    missing = unavailable(run.phases, run.spec)
    if missing and not run.dry_run:
        raise run.not_available(missing)
    if run.confirm is not None and not run.dry_run:
        run.confirm(run.spec)
    spec, ssh = run.spec, run.ssh
    options = Options(
        dry_run=run.dry_run,
        ignore_preflight_errors=run.ignore_preflight_errors,
        parallel=ssh.parallel if ssh else 10,
        resume=run.resume,
    )
    logins: list = []
    ws = lock = log = None
    if ssh is None:
        here = next((h for h in spec.hosts if h.local), spec.hosts[0])
        ctx = Context(spec, [_local_target(here)], options)
    else:
        from kubeinit.up import hold_lock, private_dir, workspace

        ws = workspace(spec.name)
        lock = None if run.dry_run else hold_lock(ws, spec.name, run.command)
        ctx = Context(spec, ssh_targets(spec, ssh, logins), options, workspace=ws)
    if not run.dry_run:  # each host's own lock, from login on; a run on the host itself waits a while for another
        info = hostlock.holder_line(run.command, spec.name)
        wait = hostlock.LOCAL_WAIT if ssh is None else 0
        for t in ctx.targets:
            t.locker = lambda conn, since: hostlock.acquire(conn, info, wait, since)
    if ssh is not None and run.turns:  # every host locked from the start, not only when its turn comes
        for t in ctx.targets:
            t.connect_ahead()
    elif ssh is not None:
        connect_ahead(ctx, run.phases)
    if ws is not None and not run.dry_run:  # a run over SSH logs into its cluster's workspace
        name = f"{run.command.replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"  # no space
        log = RunLog(private_dir(ws / "logs") / name)
    ctx.shared.update(run.shared)
    names = [t.name for t in ctx.targets]
    view = ui.RunView(names, dry_run=run.dry_run, title=_title(run, names))
    start = time.monotonic()
    try:
        summary = _turns(ctx, run, view, log) if run.turns else execute(ctx, run.phases, view, log)
        if not run.dry_run:
            view.close()
            _summary(run, names, summary, time.monotonic() - start)
            if run.whole:  # while the run's API client is still open
                _cluster(run, ctx, summary)
    except StepFailed as e:
        if ssh is not None and not e.resume and e.resumable:  # a failed check: add the hint
            code, e = e.exit_code, StepFailed(e.host, e.phase, e.step, e.detail, run.resume(e.phase))
            e.exit_code = code
        raise e from None
    finally:
        view.close()
        ctx.close()
        for pool in logins:
            pool.close()
        if log is not None:
            log.close()
            ui.info(f"log: {log.path}")
        if lock is not None:
            os.close(lock)
    if not run.dry_run:
        _hand_over(ctx.shared.get("hand-over", []))


def _turns(ctx, run: Run, view, log):
    """Every phase for one turn's hosts, then the next turn's; a failed turn ends the run."""
    from kubeinit.apply import Summary, execute

    total = Summary()
    assert run.turns is not None
    if run.ahead:
        execute(ctx, run.ahead, view, log)
    for hosts in run.turns:
        ctx.only = frozenset(hosts)
        done = execute(ctx, run.phases, view, log)
        total.phases += [p for p in done.phases if p not in total.phases]
        for host, n in done.changed.items():
            total.changed[host] = total.changed.get(host, 0) + n
        for host, n in done.skipped.items():
            total.skipped[host] = total.skipped.get(host, 0) + n
        for path, seconds in done.times.items():
            total.times[path] = total.times.get(path, 0.0) + seconds
        total.seconds += done.seconds
    ctx.only = None
    return total


def _cluster(run: Run, ctx, summary) -> None:
    """After every phase: each phase's time, the Nodes of every host of the run (this host alone
    for init), waited for when the run changed something, and the kubectl line."""
    from kubeinit import cluster_summary

    nodes = cluster_summary.read(ctx, [t.name for t in ctx.targets], wait=summary.total_changed > 0)
    admin = f"{run.spec.kubeconfig_dir.rstrip('/')}/admin.conf"
    line = cluster_summary.kubectl_line(run.file, run.ssh.known_hosts if run.ssh else None, admin)
    cluster_summary.show(nodes, summary.times, line)


def _hand_over(lines: list[str]) -> None:
    """What a phase hands the user at the end (init's join command, with its token): written as is,
    as `token create` prints its token; ui would mask it."""
    import sys

    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _local_target(host: Host):
    from kubeinit.connection import LocalConnection
    from kubeinit.context import Target

    return Target(host, lambda h: LocalConnection(h.name))


def ssh_targets(spec: ClusterSpec, ssh: SSH, logins: list) -> list:
    from kubeinit.context import Target

    pool_lock = threading.Lock()

    def connect(host: Host):
        from kubeinit.ssh import LoginPool, SSHConnection  # paramiko loads only when a host is contacted

        with pool_lock:
            if not logins:
                logins.append(LoginPool())
        return SSHConnection(
            host, known_hosts=ssh.known_hosts, trust_new_host_keys=ssh.trust_new_host_keys, logins=logins[0]
        )

    return [Target(h, connect) for h in spec.hosts]


def _tops(phases: list[workflow.Phase]) -> str:
    return ", ".join(dict.fromkeys(p.path.split("/")[0] for p in phases))


def _title(run: Run, names: list[str]) -> str:
    spec = run.spec
    if run.ssh is None:
        host = next((h for h in spec.hosts if h.local), spec.hosts[0])
        return (
            f"kubeinit {run.command} --dry-run: the plan for cluster {spec.name!r} ({spec.kubernetes_version}) "
            f"on {host.name} ({host.address}); nothing will be changed"
            if run.dry_run
            else ""
        )
    if run.dry_run:
        return (
            f"kubeinit {run.command} --dry-run: the plan for cluster {spec.name!r} on {len(names)} hosts; "
            "facts are read, nothing is changed"
        )
    return f"kubeinit {run.command}: cluster {spec.name!r}, {len(names)} hosts, phases {_tops(run.phases)}"


def _summary(run: Run, names: list[str], summary, elapsed: float) -> None:
    n = len(summary.phases)
    phases = f"{n} phase{'s' if n != 1 else ''}"
    if run.ssh is None:
        ui.ok(f"{run.command}: {phases} done on {names[0]} ({summary.total_changed} changed) in {summary.seconds:.1f}s")
        return
    ui.table(
        ["host", "changed", "unchanged"],
        [(h, str(summary.changed.get(h, 0)), str(summary.skipped.get(h, 0))) for h in names],
    )
    total = summary.total_changed
    nothing = "nothing to change, every host already matched" if run.command == "up" else "nothing to change"
    ui.ok(
        f"{run.command}: {phases} on {len(names)} hosts in {elapsed:.1f}s; "
        + (f"{total} changes" if total else nothing)
    )


def file_run(
    command: str,
    file: Path | str,
    tree: list[workflow.Phase],
    only,
    skip,
    ssh: SSH,
    dry_run: bool,
    ignore: frozenset[str] = frozenset(),
    confirm=None,
) -> Run:
    """A run over SSH of every host of a cluster file (`up`, `reset -f`), with its resume hint."""
    from kubeinit import up
    from kubeinit.spec import load_file

    spec = load_file(file)
    phases = workflow.select(tree, only, skip)
    skipped = [x.strip() for v in skip or [] for x in v.split(",") if x.strip()]
    if command == "up":

        def resume(path: str) -> str:
            return up.resume_command(file, phases, path, skipped, ssh.known_hosts, ignore, ssh.parallel)
    else:

        def resume(path: str) -> str:
            return up.reset_resume_command(file, ssh.known_hosts, ssh.parallel)

    return Run(
        command,
        spec,
        phases,
        resume,
        lambda missing: up.not_available(file, phases, missing),
        dry_run,
        ignore,
        ssh,
        confirm,
        whole=command == "up" and not only,
        file=str(file),
    )
