"""Facts: read-only, typed, cached probes of one host.

A fact is a question with a command and a parser (`Fact`): the host's architecture, a unit's
state, install stamps, a file's digest (kubeinit/facts/host.py holds the shared ones). Phases
declare the facts they read (PhaseImpl.facts) and ask `Facts.get`, never the connection. Every
answer is cached for the run, and questions are batched: `gather` asks many facts, file digests
included, in one round trip, which is most of what a re-run on a converged host costs (the
executor gathers the facts the next phases declare before they plan). `planned` holds files an
earlier phase of this run writes, so a later phase (kubeconfig needs the CA that certs made)
plans the same way in --dry-run as in a real run.
"""

from __future__ import annotations

import hashlib
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kubeinit.connection import Connection, Result


def batch(conn: Connection, commands: Sequence[Sequence[str]], timeout: float = 120) -> list[Result]:
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
        f'printf \'\\n{mark} %s\\n%s\\n{mark}\\n\' "$r" "$e"\n'
        for c in commands
    )
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
        rc, _, err = data[i + len(head) : j].partition(b"\n")
        out.append(Result(int(rc or b"1"), data[:i], err))
        data = data[j + len(tail) :]
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


T = TypeVar("T")


class Fact(Generic[T]):
    """A read-only question about a host: `argv` asks it, `parse` reads the answer. Facts are
    frozen dataclasses, so equal questions share one cached answer. A `stable` fact (the
    architecture, the OS) is kept when a phase changes the host; any other is asked again."""

    stable = False

    def argv(self) -> tuple[str, ...]:
        raise NotImplementedError

    def parse(self, r: Result) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class Command(Fact[Result]):
    """A command's whole Result (a phase's own probe script, not yet split into typed facts)."""

    command: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        return self.command

    def parse(self, r: Result) -> Result:
        return r


@dataclass(frozen=True)
class File(Fact["FileState | None"]):
    """A file's sha256 and mode (None: absent); all File and Listing facts of a batch share one command."""

    path: str


@dataclass(frozen=True)
class Listing(Fact[None]):
    """Every file directly in a directory (`path` ends in "/"), as File facts."""

    path: str


class Unknown:
    """A fact --dry-run could not learn yet (the API server is not up, a checksum file is out
    of reach): the plan shows what a real run would do, which learns it or stops there."""

    def __init__(self, error: Exception):
        self.error = error

    def __str__(self) -> str:
        return str(self.error)


@dataclass
class Facts:
    conn: Connection
    planned: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    _files: dict[str, FileState | None] = field(default_factory=dict)
    _reads: dict[str, bytes | None] = field(default_factory=dict)
    _cache: dict[Fact, object] = field(default_factory=dict)
    _listed: set[str] = field(default_factory=set)  # directories whose every file is in _files
    _placed: dict[str, FileState] = field(default_factory=dict)  # files this run transfers (no bytes in memory)

    def get(self, fact: Fact[T]) -> T:
        """The answer to `fact`: cached, else asked now (a round trip the phase did not declare)."""
        if isinstance(fact, File):
            return self.file(fact.path)  # type: ignore[return-value]
        if fact not in self._cache:
            self.gather([fact])
        return self._cache[fact]  # type: ignore[return-value]

    def gather(self, facts: Iterable[Fact]) -> None:
        """Ask every fact not yet known, file digests included, in one round trip."""
        facts = list(dict.fromkeys(facts))
        asked = [f for f in facts if not isinstance(f, (File, Listing)) and f not in self._cache]
        todo = [p for p in dict.fromkeys(f.path for f in facts if isinstance(f, (File, Listing))) if not self._known(p)]
        cmds = [f.argv() for f in asked] + ([_digests_command(todo)] if todo else [])
        if not cmds:
            return
        results = self._ask(cmds)
        if todo:
            self._parse_digests(results.pop().out, todo)
        for fact, r in zip(asked, results, strict=True):
            self._cache[fact] = fact.parse(r)

    def _ask(self, cmds: Sequence[Sequence[str]]) -> list[Result]:
        return batch(self.conn, cmds)

    def changed(self) -> None:
        """The host was changed: forget every answer but the stable ones and the files (what this
        run wrote is in `planned`)."""
        self._cache = {f: v for f, v in self._cache.items() if f.stable}

    def forget(self, paths: Iterable[str]) -> None:
        """Files another program wrote meanwhile (the kubelet's kubelet.conf): ask them again."""
        for p in paths:
            self._files.pop(p, None)
            self._reads.pop(p, None)
            self._listed.discard(p.rsplit("/", 1)[0] + "/")

    # --- files -----------------------------------------------------------
    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch digests and modes of many files in one round trip."""
        self.gather(files(paths))

    def _known(self, path: str) -> bool:
        if path.endswith("/"):
            return path in self._listed
        return (
            path in self._files
            or path in self.planned
            or path in self._placed
            or path.rsplit("/", 1)[0] + "/" in self._listed
        )

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
        if path in self._placed:
            return self._placed[path]
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

    def plan_transfer(self, path: str, sha256: str, mode: int) -> None:
        """A file this run transfers (too big to keep): later phases see it as the host will have it."""
        self._placed[path] = FileState(sha256, mode)

    def placed(self, path: str) -> FileState | None:
        """What an earlier phase of this run transfers to `path` (no probe: a binary is not hashed)."""
        return self._placed.get(path)

    # --- commands --------------------------------------------------------
    def run(self, *argv: str) -> Result:
        """A read-only command's Result, cached by its argv."""
        return self.get(Command(tuple(argv)))


def files(paths: Iterable[str]) -> list[Fact]:
    """File facts for paths; one ending in "/" stands for every file in that directory."""
    return [Listing(p) if p.endswith("/") else File(p) for p in paths]
