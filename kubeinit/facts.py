"""Facts: read-only, cached probes of one host.

Phases ask facts, never the connection. Probes that can be batched are (one
round trip for many file digests), and every answer is cached for the run.
`planned` holds files that an earlier phase of this run uploads, so a later
phase (kubeconfig needs the CA that certs made) plans the same way in
--dry-run as in a real run.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Iterable

from kubeinit.connection import Connection, Result

_DIGESTS = (
    'for f; do if [ -f "$f" ]; then printf "%s " "$(stat -c %a "$f")"; sha256sum "$f"; '
    'else printf -- "- - %s\\n" "$f"; fi; done'
)

_READ_MANY = 'for f; do if [ -f "$f" ]; then printf "F %s %s\\n" "$f" "$(base64 -w0 "$f")"; fi; done'


@dataclass
class FileState:
    sha256: str
    mode: int


@dataclass
class Facts:
    conn: Connection
    planned: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    _files: dict[str, FileState | None] = field(default_factory=dict)
    _reads: dict[str, bytes | None] = field(default_factory=dict)
    _cache: dict[str, object] = field(default_factory=dict)

    # --- files -----------------------------------------------------------
    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch digests and modes of many files in one round trip."""
        todo = [p for p in paths if p not in self._files and p not in self.planned]
        if not todo:
            return
        r = self.conn.run(["sh", "-c", _DIGESTS, "sh", *todo])
        for line in r.out.splitlines():
            mode, digest, path = (line.split(" ", 2) + ["", ""])[:3]
            path = path.strip()
            self._files[path] = None if mode == "-" else FileState(digest, int(mode, 8))
        for p in todo:
            self._files.setdefault(p, None)

    def file(self, path: str) -> FileState | None:
        if path in self.planned:
            data, mode = self.planned[path]
            return FileState(hashlib.sha256(data).hexdigest(), mode)
        self.prefetch([path])
        return self._files[path]

    def read(self, path: str) -> bytes | None:
        if path in self.planned:
            return self.planned[path][0]
        if path not in self._reads:
            self._reads[path] = self.conn.read(path)
        return self._reads[path]

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Contents of many files in one round trip (None for a missing one)."""
        import base64

        todo = [p for p in paths if p not in self.planned and p not in self._reads]
        if todo:
            r = self.conn.run(["sh", "-c", _READ_MANY, "sh", *todo])
            for line in r.out.splitlines():
                tag, _, rest = line.partition(" ")
                path, _, data = rest.rpartition(" ")  # base64 has no spaces; a path may
                if tag == "F":
                    self._reads[path] = base64.b64decode(data)
            for p in todo:
                self._reads.setdefault(p, None)
        return {p: self.read(p) for p in paths}

    def plan_write(self, path: str, data: bytes, mode: int) -> None:
        self.planned[path] = (data, mode)

    # --- commands --------------------------------------------------------
    def run(self, *argv: str) -> Result:
        """A read-only command, cached by its argv."""
        key = "run:" + shlex.join(argv)
        if key not in self._cache:
            self._cache[key] = self.conn.run(list(argv), timeout=60)
        return self._cache[key]  # type: ignore[return-value]

    def os_release(self) -> dict[str, str]:
        data = self.read("/etc/os-release") or b""
        out = {}
        for line in data.decode(errors="replace").splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip().strip('"')
        return out

    def arch(self) -> str:
        m = self.run("uname", "-m").out.strip()
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)
