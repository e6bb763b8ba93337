"""Connections: the only way kubeinit touches a host.

`LocalConnection` serves `kubeinit init` on the machine itself; `SSHConnection`
(kubeinit.ssh, paramiko, imported only when used) serves `kubeinit up`.
Both run commands as root, through `sudo -n` when logged in as someone else.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass
class Result:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


class HostUnreachable(Exception):
    """The host could not be reached (or dropped the connection)."""


class Connection(Protocol):
    name: str

    def run(self, argv: Sequence[str], stdin: bytes | None = None, timeout: float = 600) -> Result: ...

    def read(self, path: str) -> bytes | None: ...

    def put(self, path: str, data: bytes, mode: int) -> None: ...

    def put_file(self, local_path: str, path: str, mode: int, sha256: str | None = None) -> None: ...

    def dial(self, host: str, port: int, timeout: float = 10.0): ...

    def open_stream(self, argv: Sequence[str]): ...

    def close(self) -> None: ...


# One shell snippet writes a file atomically (temp file beside it, then rename),
# creating parent directories, so a killed run never leaves half a file.
# Arguments: path, octal mode, and optionally the content's sha256. The mode is set
# before any byte lands. With a digest the content is checked before the rename: over
# SSH a dropped connection ends stdin early and `cat` succeeds with half the data, so
# only the digest tells a complete upload from a truncated one.
ATOMIC_WRITE = (
    'set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$d/.kubeinit.XXXXXX"); '
    'trap \'rm -f "$t"\' EXIT; chmod "$2" "$t"; cat > "$t"; '
    'if [ -n "${3:-}" ] && ! echo "$3  $t" | sha256sum -c --status; then '
    'echo "$1: the upload arrived incomplete (sha256 mismatch); not installed" >&2; exit 1; fi; '
    'mv -f "$t" "$1"'
)


def changed_since_verified(local_path: str, path: str, want: str, got: str) -> str:
    """Why an upload was refused whose local file no longer has the digest the plan names."""
    return (
        f"{path} was not written: {local_path} has sha256 {got}, not the {want} the plan names (it changed "
        "since it was verified); delete it so that the next run downloads and verifies it again"
    )


# Every shell kubeinit runs on a host starts with umask 022: a login whose umask is 000 (pam_umask,
# sshd's UMask) would otherwise make each directory it creates (/etc/kubernetes, pki, the parents of
# an upload) and each file a shell writes world-writable. Modes that must be tighter are set explicitly.
UMASK = "umask 022; "


def make_dirs(path: Path, mode: int) -> Path:
    """Create `path` and its missing parents with `mode`, whatever the umask (mkdir's mode skips
    parents, and the umask applies to it); directories that exist are left as they are."""
    missing = [d for d in (path, *path.parents) if not d.exists()][::-1]
    for d in missing:
        d.mkdir(mode=mode, exist_ok=True)
        os.chmod(d, mode)
    return path


def with_umask(argv: Sequence[str]) -> list[str]:
    """`argv` with umask 022 first: inside an `sh -c` script, or around `sh FILE ...` (one exec, no fork)."""
    argv = list(argv)
    if len(argv) >= 3 and argv[:2] == ["sh", "-c"]:
        return ["sh", "-c", UMASK + argv[2], *argv[3:]]
    if len(argv) >= 2 and argv[0] == "sh" and not argv[1].startswith("-"):
        return ["sh", "-c", UMASK + 'exec sh "$0" "$@"', *argv[1:]]
    return argv


class LocalConnection:
    """This machine, through subprocess (no shell)."""

    def __init__(self, name: str = "localhost"):
        self.name = name
        self._sudo = os.geteuid() != 0
        self.in_process = not self._sudo  # the host lock is taken by this process itself (hostlock)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        argv = with_umask(argv)
        return ["sudo", "-n", "--", *argv] if self._sudo else argv

    def run(self, argv: Sequence[str], stdin: bytes | None = None, timeout: float = 600) -> Result:
        try:
            p = subprocess.run(self._argv(argv), input=stdin, capture_output=True, timeout=timeout)
        except FileNotFoundError as e:
            return Result(127, b"", f"{e.filename}: command not found".encode())
        except subprocess.TimeoutExpired:
            return Result(124, b"", f"timed out after {timeout:.0f}s: {shlex.join(argv)}".encode())
        return Result(p.returncode, p.stdout, p.stderr)

    def dial(self, host: str, port: int, timeout: float = 10.0):
        """A socket to host:port as this machine sees it."""
        import socket

        try:
            return socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise HostUnreachable(f"cannot connect to {host}:{port} on {self.name} ({e.strerror or e})") from None

    def open_stream(self, argv: Sequence[str]) -> _ProcessStream:
        """Start a long-lived command (the host lock through sudo) and return at once; its stdin
        ends when the stream is closed or kubeinit exits."""
        return _ProcessStream(
            subprocess.Popen(self._argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )

    def read(self, path: str) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError:
            r = self.run(["cat", path])
            return r.stdout if r.rc == 0 else None

    def put(self, path: str, data: bytes, mode: int) -> None:
        if self._sudo:
            r = self.run(["sh", "-c", ATOMIC_WRITE, "sh", path, f"{mode:o}"], stdin=data)
            if r.rc != 0:
                raise OSError(r.err.strip() or f"cannot write {path}")
            return
        p = Path(path)
        make_dirs(p.parent, 0o755)  # as the shell's `mkdir -p` under umask 022 makes them on a host
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".kubeinit.")
        try:
            os.fchmod(fd, mode)  # before any byte is written: a key is never world-readable
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, local_path: str, path: str, mode: int, sha256: str | None = None) -> None:
        """Copy a local file; with `sha256` (the digest the plan names), only bytes that have it."""
        data = Path(local_path).read_bytes()
        if sha256 is not None and (got := hashlib.sha256(data).hexdigest()) != sha256:
            raise OSError(changed_since_verified(local_path, path, sha256, got))
        self.put(path, data, mode)

    def close(self) -> None:
        pass


class _ProcessStream:
    """A local command left running: its first line of output, its stderr, and close."""

    def __init__(self, p: subprocess.Popen[bytes]):
        if p.stdin is None or p.stdout is None or p.stderr is None:
            raise ValueError("a stream needs the command's stdin, stdout and stderr piped")
        self._p, self._in, self._out, self._err = p, p.stdin, p.stdout, p.stderr

    def first_line(self, timeout: float) -> str:
        import select

        ready, _, _ = select.select([self._out], [], [], timeout)
        return self._out.readline().decode(errors="replace").strip() if ready else ""

    def error(self) -> str:
        if self._p.poll() is None:
            return ""
        return self._err.read().decode(errors="replace")

    def close(self) -> None:
        try:
            self._in.close()
            self._p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._p.kill()
