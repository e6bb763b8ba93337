"""Reading a file the user named (a cluster file, a kubeconfig and the files it points to).

Only a regular file, and only up to the size such a file can have: a FIFO would hang the run
waiting for a writer, /dev/zero would be read until memory runs out, and a wrong 100 MB file
would be parsed for minutes before failing. Each is refused at once, in one sentence.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kubeinit.errors import UserError

MiB = 1 << 20
CLUSTER_FILE_LIMIT = MiB  # a cluster file is a few KiB, even with hundreds of hosts
KUBECONFIG_LIMIT = 16 * MiB  # a kubeconfig holds about 10 KiB per cluster entry

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read(path: str | os.PathLike, what: str, limit: int, hint: str) -> bytes:
    """The bytes of the regular file at `path` (a symlink to one is fine). `what` names it in
    errors ("cluster file", "kubeconfig"); `hint` says what to do. A missing or unreadable
    file raises the OSError, for the caller's own wording."""
    p = Path(path)
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise UserError(f"{what} {p} is {kind}, not a regular file (kubeinit reads only those); {hint}")
        data = bytearray()
        while st.st_size <= limit and len(data) <= limit and (chunk := os.read(fd, limit + 1 - len(data))):
            data += chunk  # the size again: the file may grow while it is read
        if max(st.st_size, len(data)) > limit:
            raise UserError(
                f"{what} {p} is {_size(max(st.st_size, len(data)))}, more than a {what} can need "
                f"(kubeinit reads at most {_size(limit)}, whole into memory); {hint}"
            )
        return bytes(data)
    finally:
        os.close(fd)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"
