"""Helpers for in-memory host doubles: answer kubeinit's read-only shell probes from a
scripted state, in the formats the real commands print (see kubeinit/facts.py)."""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Callable

from kubeinit import facts as factsmod
from kubeinit.connection import Result

_BATCHED = re.compile(r"\{ e=\$\( \{ (.*?); \} 2>&1 >&3 3>&- \)", re.S)


def is_digests(argv) -> bool:
    return list(argv[:2]) == ["sh", "-c"] and argv[2].startswith("stat -c '%a %n' -- ")


def digests(argv, files: dict[str, tuple[str, int]]) -> Result:
    """What `stat` + `sha256sum` print for the files asked (path -> (sha256, mode)); a path
    ending in "/*" lists every scripted file directly in that directory."""
    asked = shlex.split(argv[2].split(" -- ", 1)[1].split(" 2>/dev/null", 1)[0])
    found: list[str] = []
    for q in asked:
        if q.endswith("/*"):
            found += [p for p in files if p.rsplit("/", 1)[0] == q[:-2]]
        elif q in files:
            found.append(q)
    found = list(dict.fromkeys(found))
    out = "".join(f"{files[p][1]:o} {p}\n" for p in found) + factsmod._SEP + "\n"
    out += "".join(f"{files[p][0]}  {p}\n" for p in found)
    return Result(0, out.encode(), b"")


def contents(files: dict[str, tuple[bytes, int]]) -> dict[str, tuple[str, int]]:
    """path -> (content, mode) as path -> (sha256, mode)."""
    return {p: (hashlib.sha256(d).hexdigest(), m) for p, (d, m) in files.items()}


def answer(argv, one: Callable[[list[str]], Result]) -> Result:
    """Answer argv with `one`; a facts.batch of several commands is split, each answered,
    and the answers joined as the batch's shell would print them."""
    if list(argv[:2]) != ["sh", "-c"] or "@@kubeinit-" not in argv[2]:
        return one(list(argv))
    mark = re.search(r"@@kubeinit-[0-9a-f]+", argv[2]).group(0)
    out = b""
    for cmd in _BATCHED.findall(argv[2]):
        r = one(shlex.split(cmd))
        out += r.stdout + f"\n{mark} {r.rc}\n".encode() + r.stderr + f"\n{mark}\n".encode()
    return Result(0, out, b"")
