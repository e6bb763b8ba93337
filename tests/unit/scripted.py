"""Helpers for in-memory host doubles and plan tests. The plan tests give a host's facts parsed
(FactsStub); a FilesHost answers only the file digests a plan compares, as `stat` and `sha256sum`
print them. The executor's MemoryHost (test_apply.py), which runs under the real Facts, takes a
batch apart (`answer`)."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable

from kubeinit import facts as factsmod
from kubeinit.connection import Result

_BATCHED = re.compile(r"\{ e=\$\( \{ (.*?)\n\} 2>&1 >&3 3>&- \)", re.S)


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
        inlined = cmd.startswith(factsmod.INLINED + "\n")
        r = one(["sh", "-c", cmd[len(factsmod.INLINED) + 1 :]] if inlined else shlex.split(cmd))
        out += r.stdout + f"\n{mark} {r.rc}\n".encode() + r.stderr + f"\n{mark}\n".encode()
    return Result(0, out, b"")


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def stamp_output(stamps_dir: str, name: str, lines: list[str]) -> str:
    """What the install probe prints for one component's stamp, from lines written as the plan
    sees them: "archive <sha256> [...]" and "file <fingerprint at install> <fingerprint now> <path>"."""
    out = ""
    for line in lines:
        kind, recorded, *rest = line.split(" ", 3)
        if kind == "archive":
            out += f"{stamps_dir}/{name}.stamp:archive {recorded}\n"
            continue
        now, path = rest
        out += f"{stamps_dir}/{name}.stamp:file {recorded} {path}\n"
        if now != "missing":
            out += f"now:{now} {path}\n"
    return out


def brief(steps) -> list[str]:
    """Steps in a line each, for golden lists: kind and path, note or reason."""
    from kubeinit.steps import Local, Notice, Run, Skip, Transfer, Upload

    out = []
    for s in steps:
        if isinstance(s, Local):
            out.append("local " + s.text.split(" from ")[0])
        elif isinstance(s, (Transfer, Upload)):
            out.append(f"{type(s).__name__.lower()} {s.path}")
        elif isinstance(s, Run):
            out.append(f"run {s.note}")
        elif isinstance(s, Skip):
            out.append(f"skip {s.reason}")
        elif isinstance(s, Notice):
            out.append("notice")
    return out


class FilesHost:
    """A host double whose file digests come from `files` (path -> (sha256, mode)); every other
    fact is given parsed (`typed()`, through FactsStub), so any other command is an error.
    Counts round trips in `commands`."""

    name = "scripted"

    def __init__(self, files: dict[str, tuple[str, int]] | None = None):
        self.files = files or {}
        self.commands = 0

    def typed(self) -> dict:
        """This host's facts, parsed (kubeinit/facts/)."""
        return {}

    def run(self, argv, stdin=None, timeout=600):
        self.commands += 1
        return self._one(list(argv))  # one command as it stands: no batch script is taken apart here

    def answer_each(self, commands) -> list[Result]:
        """Several commands in one round trip, each answered as it stands (FactsStub asks so)."""
        self.commands += 1
        return [self._one(list(c)) for c in commands]

    def _one(self, argv):
        if is_digests(argv):
            return digests(argv, self.files)
        raise AssertionError(f"the plan asked a fact the test did not give: {argv}")

    def read(self, path):
        raise AssertionError("the plan should not read files one by one")

    def close(self):
        pass


def one_host_spec(artifacts: dict | None = None, version: str = "v1.32.5", source: str | None = None, **fields):
    """A cluster of one control-plane host with these artifact settings (none: no artifacts key)
    and any other top-level fields of the cluster file."""
    from kubeinit import spec as specmod

    doc = {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "name": "t",
        "kubernetesVersion": version,
        "hosts": [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
        **({} if artifacts is None else {"artifacts": artifacts}),
        **fields,
    }
    return specmod.from_dict(doc, source=source)


def plan_phase(host, spec, impl, dry_run: bool = False, shared: dict | None = None) -> list:
    """Plan as the executor does: gather the facts the phase declares (one round trip), then plan.
    The facts come parsed (host.typed()); the host double answers the file digests. `shared`:
    the run's data the phase hands on (Context.shared), for the test to read."""
    from factsstub import FactsStub

    from kubeinit.context import Context, Options, Target

    t = Target(spec.hosts[0], lambda h: host, facts=FactsStub(host.typed(), conn=host))
    ctx = Context(spec, [t], Options(dry_run=dry_run), shared=shared if shared is not None else {})
    declared = impl.facts(ctx, t)
    t.facts.gather(declared)
    t.facts.declared = set(declared)
    return list(impl.plan(ctx, t))


def stamps(lines: dict[str, list[str]]):
    """Install stamps as the plan sees them, from lines in this module's notation (stamp_output):
    "archive <sha256> ..." and "file <fingerprint at install> <fingerprint now | missing> <path>"."""
    from kubeinit.hostops.install import Stamp

    out = {}
    for name, written in lines.items():
        s = out[name] = Stamp()
        for line in written:
            kind, recorded, *rest = line.split(" ", 3)
            if kind == "archive":
                s.archive = recorded
                continue
            now, path = rest
            s.files[path] = now
            s.intact &= recorded == now
    return out


def plan_over(facts, spec, impl) -> list:
    """Plan as the executor does over facts given parsed (a FactsStub): the declared facts first."""
    from kubeinit.context import Context, Options, Target

    t = Target(spec.hosts[0], lambda h: facts.conn, facts=facts)
    ctx = Context(spec, [t], Options())
    declared = impl.facts(ctx, t)
    facts.gather(declared)
    facts.declared = set(declared)
    return list(impl.plan(ctx, t))
