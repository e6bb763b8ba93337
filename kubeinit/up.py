"""What a run over SSH (`up -f`, `reset -f`) has beside the phases: the cluster's workspace,
`$KUBEINIT_HOME/clusters/<name>/` (0700, with the masked run logs under logs/), its lock, and
the exact command that resumes a failed run. The run itself is kubeinit.runner.run_workflow.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from kubeinit import artifacts, workflow
from kubeinit.errors import KubeinitError, NotAvailableYet


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700, whatever the umask."""
    from kubeinit.connection import make_dirs

    return make_dirs(path, 0o700)


def workspace(cluster: str) -> Path:
    return private_dir(artifacts.home() / "clusters" / cluster)


def _top(path: str) -> str:
    return path.split("/")[0]


def resume_command(
    file: Path | str,
    phases: list[workflow.Phase],
    failed: str,
    skip: list[str] | None,
    known_hosts: str | None,
    ignore: frozenset[str],
    parallel: int,
) -> str:
    """`kubeinit up -f FILE --only <the failed top-level phase and the selected ones after it>`,
    plus the flags the user gave that still matter for those phases."""
    tops: list[str] = []
    for p in phases:
        if _top(p.path) not in tops:
            tops.append(_top(p.path))
    rest = tops[tops.index(_top(failed)) :] if _top(failed) in tops else tops
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


def not_available(file, phases: list[workflow.Phase], missing: list[str]) -> NotAvailableYet:
    names = list(dict.fromkeys(_top(m) for m in missing))
    # The top-level phases that are built whole; each checks what it needs from the earlier
    # ones (etcd, for instance, says when the certs phase has not run).
    ready = [t for t in dict.fromkeys(_top(p.path) for p in phases) if t not in names]
    hint = f"run the available ones with `kubeinit up -f {file} --only {','.join(ready)}`" if ready else ""
    return NotAvailableYet(
        f"{'phases' if len(names) > 1 else 'phase'} {', '.join(names)} of `kubeinit up`",
        hint + (", or " if hint else "") + "see the whole plan with --dry-run",
    )


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
        raise KubeinitError(
            f"another `kubeinit {other or 'up'}` (pid {pid or 'unknown'}) is working on cluster "
            f"{cluster!r}; wait for it to finish, or stop it, then run this again"
        ) from None
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
