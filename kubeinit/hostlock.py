"""One kubeinit run per host at a time, whoever runs it and from wherever (as k0sctl does).

The workspace lock (up.hold_lock) serializes runs of one KUBEINIT_HOME only; two homes, or a
workstation's `up` and an `init` on the host itself, would otherwise mix their PKI on the same
host. So every run that changes a host first holds an flock on that host,
`/var/lib/kubeinit/run.lock`, for as long as it runs:

- over SSH (and locally through sudo) a session runs `flock` around `cat >/dev/null`: the lock
  lasts until kubeinit closes the channel, or its connection dies (stdin ends either way), so a
  killed run never leaves a stale lock behind;
- locally as root, fcntl.flock on the same file (the same kernel lock `flock(1)` takes).

The holder writes who it is to `run.lock.holder`; a refused run names it. --dry-run takes no
lock: it changes nothing (its plan may then be stale, as any plan is once another run changes
the host).

The lock's session is opened right after login, beside the first probe, so a converged re-run
pays no extra round trip; the executor needs its answer before it plans (and so before any
change). A probe answered before the lock was granted may have seen another run's half-done
work: when the previous holder let go within that window, the facts are read again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kubeinit.errors import KubeinitError

STATE = "/var/lib/kubeinit"
LOCK = f"{STATE}/run.lock"
HOLDER = f"{LOCK}.holder"
LOCAL_WAIT = 30.0  # seconds a run on the host itself waits for another (scripts run phases one by one)

# Arguments: the flock wait option (-n or -wSECONDS) and the holder line. Prints one line:
# `LOCKED <host time now> <when the previous holder let go>`, `BUSY <holder>` or `NOFLOCK`.
# After stdin ends it stamps the release time on run.lock (its mtime) while still holding. Few
# processes: a converged re-run starts this beside its probe on every host.
SCRIPT = (
    f'umask 077; d={STATE}; chmod 0700 "$d" 2>/dev/null || mkdir -p -m 0700 "$d" || exit 1; '
    "command -v flock >/dev/null 2>&1 || { echo NOFLOCK; exit 3; }; "
    'exec 9>>"$d/run.lock" || exit 1; '
    # Refused: the holder writes its record just after it locks, so wait (2 s at most) for a record
    # newer than the last release's stamp; an older one names a run that has finished.
    'if ! flock "$1" 9; then n=0; while [ $n -lt 20 ]; do '
    'set -- $(stat -c %.9Y "$d/run.lock.holder" "$d/run.lock" 2>/dev/null | tr -d .); '
    '[ $# -eq 2 ] && [ "$1" -ge "$2" ] && [ -s "$d/run.lock.holder" ] && break; sleep 0.1; n=$((n+1)); done; '
    'printf "BUSY %s\\n" "$(cat "$d/run.lock.holder" 2>/dev/null)"; exit 75; fi; '
    'printf "%s\\n" "$2" > "$d/run.lock.holder" || exit 1; '
    'set -- $(stat -c %.9Y "$d/run.lock.holder" "$d/run.lock"); echo "LOCKED $1 $2"; '
    'cat >/dev/null; touch "$d/run.lock"'
)


class HostBusy(KubeinitError):
    """Another kubeinit run holds the host's lock."""


def holder_line(command: str, cluster: str) -> str:
    """Who holds the lock: enough for the refused user to find that run."""
    import getpass

    from kubeinit import artifacts

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry: the uid still says who
        user = str(os.getuid())
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (
        f"`kubeinit {command}` of cluster {cluster!r} by {user}@{socket.gethostname()} (pid {os.getpid()}, "
        f"KUBEINIT_HOME {artifacts.home()}) since {since}"
    )


def busy(host: str, holder: str) -> HostBusy:
    who = holder.strip() or "another kubeinit run (it left no holder record)"
    return HostBusy(
        f"{host} is locked by {who}; wait for that run to finish (or check that it is still "
        f"running), then run this again"
    )


class HostLock:
    """A held lock (or a refusal) on one host. `stale` says that the previous holder let go so
    recently that a probe sent before this lock was granted may have seen its work half-done."""

    def __init__(self, release: Callable[[], None], stale: bool):
        self._release = release
        self.stale = stale

    def close(self) -> None:
        release, self._release = self._release, lambda: None
        release()


def acquire(conn, info: str, wait: float, since: float) -> HostLock:
    """Hold `conn`'s host lock; `since` (time.monotonic) is when the run first talked to the host."""
    if getattr(conn, "in_process", False):  # this machine, as root
        return _acquire_fd(conn, info, wait, since)
    stream = conn.open_stream(["sh", "-c", SCRIPT, "sh", f"-w{wait:g}" if wait > 0 else "-n", info])
    try:
        line = stream.first_line(wait + 60)
    except BaseException:
        stream.close()
        raise
    word, _, rest = line.partition(" ")
    if word == "LOCKED":
        now, _, prev = rest.partition(" ")
        try:
            recent = _recent(float(prev), float(now), since)
        except ValueError:
            recent = True
        return HostLock(stream.close, recent)
    stream.close()
    if word == "BUSY":
        raise busy(conn.name, rest)
    if word == "NOFLOCK":
        raise KubeinitError(
            f"{conn.name} has no `flock` command (util-linux), which kubeinit needs to keep "
            "two runs from changing the host at once; install util-linux there"
        )
    raise KubeinitError(
        f"cannot take the kubeinit lock {LOCK} on {conn.name}: {stream.error().strip() or line or 'no answer'}"
    )


def _recent(released: float, now: float, since: float) -> bool:
    """Did the previous holder let go after this run first talked to the host (its probes may
    have seen that run's work half-done)? Both times are the host's clock."""
    return released >= now - (time.monotonic() - since) - 0.05


def _acquire_fd(conn, info: str, wait: float, since: float) -> HostLock:
    """Locally as root: fcntl.flock on the same file flock(1) locks."""
    import fcntl

    os.makedirs(STATE, mode=0o700, exist_ok=True)
    os.chmod(STATE, 0o700)
    fd = os.open(LOCK, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise busy(conn.name, _current_holder()) from None
            time.sleep(0.1)
    stale = _recent(os.stat(LOCK).st_mtime, time.time(), since)  # the release time (a new file: now)
    hfd = os.open(HOLDER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(hfd, "w") as f:
        f.write(info + "\n")

    def release() -> None:
        os.utime(LOCK)  # the release time, as the remote script stamps it
        os.close(fd)

    return HostLock(release, stale)


def _current_holder(patience: float = 2.0) -> str:
    """The holder's record, once it is newer than the last release's stamp (as SCRIPT waits)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            record = Path(HOLDER).read_text(errors="replace")
            if (record and os.stat(HOLDER).st_mtime_ns >= os.stat(LOCK).st_mtime_ns) or time.monotonic() >= deadline:
                return record
        except OSError:
            if time.monotonic() >= deadline:
                return ""
        time.sleep(0.1)


class Pending:
    """A lock being taken in the background, from login on, beside the first probe."""

    def __init__(self, fn: Callable[[], HostLock]):
        self._lock: HostLock | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._take, args=(fn,), daemon=True)
        self._thread.start()

    def _take(self, fn) -> None:
        try:
            self._lock = fn()
        except BaseException as e:  # noqa: BLE001 - raised to whoever waits for the lock
            self._error = e

    def wait(self) -> HostLock:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._lock is not None
        return self._lock

    def close(self) -> None:
        """Release (waiting for a lock still being taken, so that none is left held)."""
        self._thread.join(timeout=90)
        if self._lock is not None:
            self._lock.close()
