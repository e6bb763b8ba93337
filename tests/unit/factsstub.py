"""FactsStub: a host's facts given parsed (`FactsStub({Arch(): "amd64", UnitState("etcd"): Unit(...)})`),
for plans over facts without any probe text. A fact not given is an error, unless a host double is
given (`conn`, scripted.FilesHost: the file digests a plan compares): never more than the real host answers."""

from __future__ import annotations

import hashlib

from kubeinit.facts import Fact, Facts, File, FileState, Listing


class NoHost:
    name = "stub"

    def run(self, argv, stdin=None, timeout=600):
        raise AssertionError(f"the plan asked the host directly: {argv}")

    def read(self, path):
        raise AssertionError(f"the plan read {path} from the host")

    def close(self):
        pass


def state(data: bytes | str, mode: int) -> FileState:
    return FileState(hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest(), mode)


class FactsStub(Facts):
    def __init__(self, values: dict[Fact, object], files: dict[str, FileState] | None = None, conn=None):
        super().__init__(conn or NoHost())
        self._given = dict(values)
        self._cache.update(self._given)
        self._files.update(files or {})  # without a host double, every file not listed is absent
        self.round_trips = 0
        self.declared: set[Fact] | None = None  # set by scripted.plan_over: a plan asks only these

    def get(self, fact):
        assert self.declared is None or isinstance(fact, File) or fact in self.declared, (
            f"the plan asked {fact!r}, which its phase does not declare (a round trip of its own)"
        )
        return super().get(fact)

    def gather(self, facts) -> None:
        """As the real host answers, one round trip per call that asks anything not known yet
        (`round_trips`): what was given is known, a declared file not given is absent."""
        todo = [
            f
            for f in dict.fromkeys(facts)
            if (not self._known(f.path) if isinstance(f, (File, Listing)) else f not in self._cache)
        ]
        if not todo:
            return
        self.round_trips += 1
        if not isinstance(self.conn, NoHost):
            super().gather(todo)
            return
        missing = [f for f in todo if not isinstance(f, (File, Listing))]
        assert not missing, f"the plan asked facts the test did not give: {missing}"
        for f in todo:
            if isinstance(f, Listing):
                self._listed.add(f.path)
            else:
                self._files.setdefault(f.path, None)

    def _ask(self, cmds):
        """The host double answers each command as it stands, in one round trip (no batch script to take apart)."""
        return self.conn.answer_each(cmds)

    def changed(self) -> None:  # the test's facts are the host's, whatever a phase planned
        pass
