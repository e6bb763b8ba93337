"""What phases plan against: the Context (the spec, the run's options, the hosts) and each
Target (one host: its connection, its facts, its lock).

Phases are functions (context, target) -> steps. They read facts and the spec, never act;
`ensure_file` is the common "upload unless already there". `Context.learn` is the one place
that knows a dry run: a fact from outside the hosts that cannot be learned yet is Unknown there.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kubeinit import workflow
from kubeinit.connection import Connection
from kubeinit.facts import Facts, Unknown
from kubeinit.redact import Secret
from kubeinit.spec import ClusterSpec, Host
from kubeinit.steps import Skip, Upload

if TYPE_CHECKING:
    from kubeinit.hostlock import HostLock, Pending

T = TypeVar("T")


@dataclass
class Options:
    dry_run: bool = False
    ignore_preflight_errors: frozenset[str] = frozenset()
    parallel: int = 10
    resume: Callable[[str], str] | None = None  # phase path -> the command that resumes


class Target:
    """One host of the run: its connection (opened on first use) and facts."""

    def __init__(self, host: Host, connect: Callable[[Host], Connection], facts: Facts | None = None):
        self.host = host
        self._connect = connect
        self._conn: Connection | None = None
        self._facts: Facts | None = facts  # given: facts already known (tests plan over parsed facts)
        self._lock = threading.Lock()
        self._failed: BaseException | None = None  # what a connect_ahead() raised, for `conn` to raise
        # hostlock.acquire(conn, since) for a run that changes hosts; None: no lock (--dry-run, tests)
        self.locker: Callable[[Connection, float], HostLock] | None = None
        self._hostlock: Pending | None = None  # from login on
        self._since = 0.0

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def conn(self) -> Connection:
        with self._lock:
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            if self._conn is None:
                self._conn = self._connected(self._connect(self.host))
            return self._conn

    def _connected(self, conn: Connection) -> Connection:
        """Start taking the host lock at once, beside the first probe (no round trip of its own)."""
        if self.locker is not None:
            from kubeinit import hostlock

            self._since = time.monotonic()
            locker = self.locker
            self._hostlock = hostlock.Pending(lambda: locker(conn, self._since))
        return conn

    def hold(self) -> bool:
        """Wait until this run holds the host's lock (raises hostlock.HostBusy when another run
        does). True once, when facts read before it was granted may be stale: read them again."""
        pending = self._hostlock
        if pending is None:
            return False
        held = pending.wait()
        stale, held.stale = held.stale, False
        return stale

    def connect_ahead(self) -> None:
        """Start logging in now, in the background; `conn` waits for it and raises what it
        raised (one attempt, not two: an unreachable host costs one timeout)."""
        threading.Thread(target=self._login, daemon=True).start()

    def _login(self) -> None:
        with self._lock:
            if self._conn is None and self._failed is None:
                try:
                    self._conn = self._connected(self._connect(self.host))
                except BaseException as e:  # noqa: BLE001 - handed to whoever asks for the connection
                    self._failed = e

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            self._facts = Facts(self.conn)
        return self._facts

    def host_changed(self) -> None:
        """Forget the answers a change may have made stale; no login of its own (a host lost
        mid-phase has been closed, and must not be dialled again just to forget)."""
        if self._facts is not None:
            self._facts.changed()

    def forget_files(self, paths: list[str]) -> None:
        """Files the host's own programs wrote (no login of its own, as host_changed)."""
        if self._facts is not None:
            self._facts.forget(paths)

    def reset_facts(self) -> None:
        """Forget cached probes (after a reconnect: the host may have changed)."""
        self._facts = None

    def close(self) -> None:
        if self._hostlock is not None:
            self._hostlock.close()
            self._hostlock = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._facts = None


@dataclass
class Context:
    spec: ClusterSpec
    targets: list[Target]
    options: Options = field(default_factory=Options)
    workspace: Path | None = None  # where kubeinit keeps state for `up` (0700)
    shared: dict = field(default_factory=dict)  # data one phase hands to the next
    # a rolling run (upgrade) works on a few hosts at a time: the phases reach only these
    only: frozenset[str] | None = None

    @property
    def cert_dir(self) -> str:
        return self.spec.pki.cert_dir

    @property
    def kubeconfig_dir(self) -> str:
        return self.spec.kubeconfig_dir

    def targets_for(self, phase: workflow.Phase) -> list[Target]:
        first = self.spec.first_control_plane.name
        if phase.targets == workflow.FIRST_CONTROL_PLANE:
            found = [t for t in self.targets if t.name == first]
        elif phase.targets == workflow.CONTROL_PLANES:
            found = [t for t in self.targets if t.host.is_control_plane]
        elif phase.targets == workflow.JOINING:
            found = [t for t in self.targets if t.name != first]
        elif phase.targets == workflow.JOINING_CONTROL_PLANES:
            found = [t for t in self.targets if t.name != first and t.host.is_control_plane]
        else:
            found = list(self.targets)
        return found if self.only is None else [t for t in found if t.name in self.only]

    def target(self, name: str) -> Target:
        """The run's host of that name (the one whose connection an API call goes through)."""
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"{name} is not a host of this run")

    def learn(self, get: Callable[[], T], unknown: Callable[[Exception], bool]) -> T | Unknown:
        """A fact from outside the hosts (the API server, a release's checksum file). In --dry-run,
        one that cannot be learned yet (`unknown(error)`: the server is not up, no network) is
        Unknown and the plan shows what a real run would do; a real run stops on the error."""
        try:
            return get()
        except Exception as e:
            if self.options.dry_run and unknown(e):
                return Unknown(e)
            raise

    def resume_hint(self, phase: str) -> str:
        return self.options.resume(phase) if self.options.resume else ""

    def kube(self, target: Target):
        """The cluster's API server as its admin: admin.conf as the control plane has it (read
        once, kept in memory), spoken to through the target's connection at its
        127.0.0.1:<bind port>, so it works wherever kubeinit runs, with the server's TLS
        certificate still checked against the cluster CA. Cached per target, and made again when
        this run has rewritten admin.conf since (up's preflight reads the cluster before the
        kubeconfig phase may renew it)."""
        from kubeinit.errors import KubeinitError
        from kubeinit.kube.client import Client

        cached = self.shared.setdefault("kube", {})
        made_from = self.shared.setdefault("kube-admin-conf", {})
        path = posixpath.join(self.kubeconfig_dir, "admin.conf")
        if target.name in made_from and target.facts.read(path) != made_from[target.name]:
            del made_from[target.name]
            cached.pop(target.name).close()
        if target.name not in cached:
            data = target.facts.read(path)
            if data is None:
                raise KubeinitError(
                    f"{target.name} has no {path}: run the kubeconfig phase first (`kubeinit up --only kubeconfig`)"
                )
            made_from[target.name] = data
            port = self.spec.bind_port
            cached[target.name] = Client.from_kubeconfig_data(
                data, f"{target.name}:{path}", dial=lambda: target.conn.dial("127.0.0.1", port)
            )
        return cached[target.name]

    def close(self) -> None:
        for client in self.shared.pop("kube", {}).values():
            client.close()
        self.shared.pop("kube-admin-conf", None)
        for t in self.targets:
            t.close()


def ensure_file(
    target: Target, path: str, content: bytes | str | Secret, mode: int, note: str = ""
) -> Iterator[Upload | Skip]:
    """Upload `content` to `path` unless the host already has it, with that mode."""
    up = Upload(path, content.encode() if isinstance(content, str) else content, mode, note)
    have = target.facts.file(path)
    if have is not None and have.sha256 == up.sha256 and have.mode == mode:
        yield Skip(f"{path} is up to date")
        return
    target.facts.plan_write(path, up.data, mode)
    yield up
