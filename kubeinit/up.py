"""`kubeinit up -f cluster.yaml`: every host of a cluster file, over SSH, in parallel.

Loads the spec, selects phases, opens one SSH connection per host (lazily, on first
use by a phase), runs the executor with the live per-host view, and ends with a
summary - or, on failure, the exact command that resumes. Each run writes a masked
log under the cluster's workspace, `$KUBEINIT_HOME/clusters/<name>/logs/` (0700).
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from pathlib import Path

from kubeinit import artifacts, hostlock, ui, workflow
from kubeinit.apply import RunLog, connect_ahead, execute, unavailable
from kubeinit.errors import KubeinitError, NotAvailableYet, StepFailed
from kubeinit.context import Context, Options, Target
from kubeinit.spec import Host, load_file


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700, whatever the umask."""
    from kubeinit.connection import make_dirs

    return make_dirs(path, 0o700)


def workspace(cluster: str) -> Path:
    return private_dir(artifacts.home() / "clusters" / cluster)


def _top(path: str) -> str:
    return path.split("/")[0]


def resume_command(file: Path | str, phases: list[workflow.Phase], failed: str, skip: list[str] | None,
                   known_hosts: str | None, ignore: frozenset[str], parallel: int) -> str:
    """`kubeinit up -f FILE --only <the failed top-level phase and the selected ones after it>`,
    plus the flags the user gave that still matter for those phases."""
    tops: list[str] = []
    for p in phases:
        if _top(p.path) not in tops:
            tops.append(_top(p.path))
    rest = tops[tops.index(_top(failed)):] if _top(failed) in tops else tops
    cmd = ["kubeinit", "up", "-f", str(file), "--only", ",".join(rest)]
    if skip:
        cmd += ["--skip-phases", ",".join(skip)]
    if known_hosts:
        cmd += ["--known-hosts", known_hosts]
    if ignore and "preflight" in rest:
        cmd += ["--ignore-preflight-errors", ",".join(sorted(ignore))]
    if parallel != 10:
        cmd += ["--parallel", str(parallel)]
    return shlex.join(cmd)


def _not_available(file, phases: list[workflow.Phase], missing: list[str]) -> NotAvailableYet:
    names = list(dict.fromkeys(_top(m) for m in missing))
    # The top-level phases that are built whole; each checks what it needs from the earlier
    # ones (etcd, for instance, says when the certs phase has not run).
    ready = [t for t in dict.fromkeys(_top(p.path) for p in phases) if t not in names]
    hint = f"run the available ones with `kubeinit up -f {file} --only {','.join(ready)}`" if ready else ""
    return NotAvailableYet(f"{'phases' if len(names) > 1 else 'phase'} {', '.join(names)} of `kubeinit up`",
                           hint + (", or " if hint else "") + "see the whole plan with --dry-run")


def hold_lock(ws: Path, cluster: str, command: str = "up"):
    """One `up` (or `reset`) per cluster at a time: two would race on the same hosts and files. An flock
    dies with its process, so a killed run never leaves a stale lock behind."""
    import fcntl

    fd = os.open(ws / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, _, other = os.pread(fd, 64, 0).decode(errors="replace").strip().partition(" ")
        os.close(fd)
        raise KubeinitError(f"another `kubeinit {other or 'up'}` (pid {pid or 'unknown'}) is working on cluster "
                            f"{cluster!r}; wait for it to finish, or stop it, then run this again") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}".encode(), 0)
    return fd  # held until the process ends


def reset_resume_command(file: Path | str, known_hosts: str | None, parallel: int) -> str:
    cmd = ["kubeinit", "reset", "-f", str(file), "--yes"]
    if known_hosts:
        cmd += ["--known-hosts", known_hosts]
    if parallel != 10:
        cmd += ["--parallel", str(parallel)]
    return shlex.join(cmd)


def run_up(file, only, skip_phases, ignore: frozenset[str], trust_new_host_keys: bool, known_hosts: str | None,
           parallel: int, dry_run: bool, *, command: str = "up", tree: list[workflow.Phase] | None = None,
           confirm=None) -> None:
    """Run phases of `tree` (default: up's) on every host of the cluster file, over SSH in parallel.
    `command` names the run (its title, log and resume hint); `confirm(spec)`, when given, is
    called before any host is contacted (a destructive command asks there)."""
    spec = load_file(file)
    tree = tree if tree is not None else workflow.up_phases()
    phases = workflow.select(tree, only, skip_phases)
    skip = [x.strip() for v in skip_phases or [] for x in v.split(",") if x.strip()]
    missing = unavailable(phases)
    if missing and not dry_run:
        raise _not_available(file, phases, missing)
    if confirm is not None and not dry_run:
        confirm(spec)

    pool_lock = threading.Lock()
    logins: list = []  # the run's LoginPool, made with the first connection (paramiko loads then)

    def connect(host: Host):
        from kubeinit.ssh import LoginPool, SSHConnection  # paramiko loads only when a host is contacted

        with pool_lock:
            if not logins:
                logins.append(LoginPool())
        return SSHConnection(host, known_hosts=known_hosts, trust_new_host_keys=trust_new_host_keys,
                             logins=logins[0])

    options = Options(dry_run=dry_run, ignore_preflight_errors=ignore, parallel=parallel,
                      trust_new_host_keys=trust_new_host_keys, known_hosts=known_hosts, command=command,
                      resume=(lambda path: resume_command(file, phases, path, skip, known_hosts, ignore, parallel))
                      if command == "up" else (lambda path: reset_resume_command(file, known_hosts, parallel)))
    ws = workspace(spec.name)
    lock = None if dry_run else hold_lock(ws, spec.name, command)
    ctx = Context(spec, [Target(h, connect) for h in spec.hosts], options, workspace=ws)
    if not dry_run:  # each host's own lock, taken from login on (a dry run changes nothing: none)
        info = hostlock.holder_line(command, spec.name)
        for t in ctx.targets:
            t.locker = lambda conn, since: hostlock.acquire(conn, info, 0, since)
    connect_ahead(ctx, phases)
    log = None if dry_run else RunLog(private_dir(ws / "logs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-"
                                                                  f"{os.getpid()}.log")
    names = [h.name for h in spec.hosts]
    title = (f"kubeinit {command} --dry-run: the plan for cluster {spec.name!r} on {len(names)} hosts; facts are read, "
             "nothing is changed" if dry_run else
             f"kubeinit {command}: cluster {spec.name!r}, {len(names)} hosts, phases "
             f"{', '.join(dict.fromkeys(_top(p.path) for p in phases))}")
    view = ui.RunView(names, dry_run=dry_run, title=title)
    start = time.monotonic()
    try:
        summary = execute(ctx, phases, view, log)
    except StepFailed as e:
        if not e.resume and getattr(e, "resumable", True):  # failed checks carry no resume hint: add it here
            code, e = e.exit_code, StepFailed(e.host, e.phase, e.step, e.detail, options.resume(e.phase))
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
    if dry_run:
        return
    elapsed = time.monotonic() - start
    ui.table(["host", "changed", "unchanged"],
             [(h, str(summary.changed.get(h, 0)), str(summary.skipped.get(h, 0))) for h in names])
    total = summary.total_changed
    nothing = "nothing to change, every host already matched" if command == "up" else "nothing to change"
    ui.ok(f"{command}: {len(summary.phases)} phase{'s' if len(summary.phases) != 1 else ''} on {len(names)} hosts in "
          f"{elapsed:.1f}s; " + (f"{total} changes" if total else nothing))
