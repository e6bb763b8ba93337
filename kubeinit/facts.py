"""Facts: read-only, cached probes of one host.

Phases ask facts, never the connection. Every answer is cached for the run, and
probes are batched: `gather` runs many read-only commands and fetches many file
digests in one round trip, which is most of what a re-run on a converged host
costs (the executor gathers what the next phases will ask before they plan).
`planned` holds files that an earlier phase of this run uploads, so a later
phase (kubeconfig needs the CA that certs made) plans the same way in
--dry-run as in a real run.
"""

from __future__ import annotations

import hashlib
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from kubeinit.connection import Connection, Result


def _key(argv: Sequence[str]) -> str:
    return "run:" + shlex.join(argv)


def batch(conn: Connection, commands: list[Sequence[str]], timeout: float = 120) -> list[Result]:
    """Run several commands in one shell, one round trip; each gets its own Result
    (stdout, stderr, exit code), as if it had been run alone."""
    if len(commands) == 1:
        return [conn.run(list(commands[0]), timeout=timeout)]
    mark = "@@kubeinit-" + secrets.token_hex(8)
    # Each command's stdout goes straight out (fd 3); its stderr is captured and printed
    # after it, between markers that carry the exit code. It runs in the command
    # substitution's subshell: an `sh -c` script is inlined there (no second shell to start).
    script = "".join(
        f"{{ e=$( {{ {_inline(tuple(c))}\n}} 2>&1 >&3 3>&- ); r=$?; }} 3>&1\n"
        f"printf '\\n{mark} %s\\n%s\\n{mark}\\n' \"$r\" \"$e\"\n" for c in commands)
    r = conn.run(["sh", "-c", script], timeout=timeout)
    data, out = r.stdout, []
    head, tail = f"\n{mark} ".encode(), f"\n{mark}\n".encode()
    for _ in commands:
        i = data.find(head)
        j = data.find(tail, i + len(head)) if i >= 0 else -1
        if j < 0:  # the shell died part-way: what did not run failed, with the shell's error
            out.append(Result(r.rc or 1, data, r.stderr))
            data = b""
            continue
        rc, _, err = data[i + len(head):j].partition(b"\n")
        out.append(Result(int(rc or b"1"), data[:i], err))
        data = data[j + len(tail):]
    return out


def _inline(argv: Sequence[str]) -> str:
    return f"{INLINED}\n{argv[2]}" if len(argv) == 3 and argv[:2] == ("sh", "-c") else shlex.join(argv)


INLINED = "# sh -c"  # heads an inlined script in a batch (read back by the tests' host doubles)


def _digests_command(paths: list[str]) -> tuple[str, ...]:
    """Modes and sha256 of many files: two processes however many files. A path ending
    in "/" stands for every file directly in that directory (its glob is left unquoted)."""
    args = " ".join(shlex.quote(p) + ("*" if p.endswith("/") else "") for p in paths)
    return ("sh", "-c", f"stat -c '%a %n' -- {args} 2>/dev/null; echo {_SEP}; sha256sum -- {args} 2>/dev/null; true")


_SEP = "--kubeinit-digests--"

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
    _listed: set[str] = field(default_factory=set)  # directories whose every file is in _files

    # --- files -----------------------------------------------------------
    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch digests and modes of many files in one round trip."""
        self.gather([], paths)

    def gather(self, commands: Iterable[Sequence[str]], paths: Iterable[str] = ()) -> None:
        """Run read-only commands (answers cached as `run` caches them) and fetch file
        digests (as `prefetch`), all in one round trip."""
        cmds = list(dict.fromkeys(tuple(c) for c in commands if _key(c) not in self._cache))
        todo = [p for p in dict.fromkeys(paths) if not self._known(p)]
        if todo:
            cmds.append(_digests_command(todo))
        if not cmds:
            return
        results = batch(self.conn, cmds)
        if todo:
            self._parse_digests(results.pop().out, todo)
        for argv, r in zip(cmds, results):
            self._cache[_key(argv)] = r

    def _known(self, path: str) -> bool:
        if path.endswith("/"):
            return path in self._listed
        return path in self._files or path in self.planned or path.rsplit("/", 1)[0] + "/" in self._listed

    def _parse_digests(self, out: str, todo: list[str]) -> None:
        modes, _, sums = out.partition(_SEP + "\n")
        mode_of = {}
        for line in modes.splitlines():
            mode, _, path = line.partition(" ")
            mode_of[path] = mode
        for line in sums.splitlines():
            digest, _, path = line.partition("  ")
            if path in mode_of and len(digest) == 64:  # a directory has a mode but no digest
                self._files[path] = FileState(digest, int(mode_of[path], 8))
        for p in todo:
            if p.endswith("/"):
                self._listed.add(p)
            else:
                self._files.setdefault(p, None)

    def file(self, path: str) -> FileState | None:
        if path in self.planned:
            data, mode = self.planned[path]
            return FileState(hashlib.sha256(data).hexdigest(), mode)
        self.prefetch([path])
        return self._files.get(path)

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
        key = _key(argv)
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
