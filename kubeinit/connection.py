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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence


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
    return (f"{path} was not written: {local_path} has sha256 {got}, not the {want} the plan names (it changed "
            "since it was verified); delete it so that the next run downloads and verifies it again")


class LocalConnection:
    """This machine, through subprocess (no shell)."""

    def __init__(self, name: str = "localhost"):
        self.name = name
        self._sudo = os.geteuid() != 0

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return ["sudo", "-n", "--", *argv] if self._sudo else list(argv)

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
        p.parent.mkdir(parents=True, exist_ok=True)
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
