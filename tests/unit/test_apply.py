"""The executor over in-memory hosts: barrier, parallel hosts, failures, dry-run, secrets in the log."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import scripted  # noqa: E402  (tests/unit is on sys.path, as for sshserver)

from kubeinit import spec as specmod
from kubeinit.apply import RunLog, execute
from kubeinit.connection import HostUnreachable, Result
from kubeinit.context import Context, Options, Target, ensure_file
from kubeinit.errors import NotAvailableYet, StepFailed
from kubeinit.facts import Command, File
from kubeinit.phases import PhaseImpl
from kubeinit.redact import Secret
from kubeinit.steps import Run
from kubeinit.workflow import ALL, Phase


class MemoryHost:
    """A host kept in memory: files and a command log (a test double for a real connection)."""

    def __init__(self, name, fail_on=None, unreachable=False, delay=0.0):
        self.name, self.files, self.ran = name, {}, []
        self.fail_on, self.unreachable, self.delay = fail_on, unreachable, delay

    def run(self, argv, stdin=None, timeout=600):
        if self.unreachable:
            raise HostUnreachable("connection reset")
        time.sleep(self.delay)
        return scripted.answer(argv, self._one)

    def _one(self, argv):
        self.ran.append(list(argv))
        if scripted.is_digests(argv):  # Facts.prefetch
            return scripted.digests(argv, scripted.contents(self.files))
        if self.fail_on and self.fail_on in " ".join(argv):
            return Result(3, b"", b"line one\nthe real reason\n")
        return Result(0, b"ok\n", b"")

    def read(self, path):
        return self.files.get(path, (None,))[0]

    def put(self, path, data, mode):
        self.files[path] = (data, mode)

    def put_file(self, local, path, mode, sha256=None):
        data = open(local, "rb").read()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:  # as the real hosts check
            raise OSError(f"{path}: sha256 mismatch; not written")
        self.put(path, data, mode)

    def close(self):
        pass


def make(hosts, **opts):
    spec = specmod.ClusterSpec(
        hosts=[
            specmod.Host(h.name, f"10.0.0.{i + 1}", "control-plane" if i == 0 else "worker")
            for i, h in enumerate(hosts)
        ]
    )
    by_name = {h.name: h for h in hosts}
    targets = [Target(h, lambda host: by_name[host.name]) for h in spec.hosts]
    return Context(spec, targets, Options(resume=lambda p: f"kubeinit up -f c.yaml --only {p}", **opts))


class View:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __getattr__(self, name):
        def record(*args):
            with self.lock:
                self.events.append((name, *args))

        return record


def phase(name, fn, facts=None, read_only=False):
    """A leaf whose implementation is given as a value (no module to import)."""
    return Phase(name, name, PhaseImpl(fn, facts or (lambda ctx, t: []), read_only), ALL, path=name)


def write_key(ctx, t):
    yield from ensure_file(t, "/etc/k/key", Secret(b"TOPSECRETKEYMATERIAL"), 0o600)
    yield Run(("systemctl", "restart", "thing"))


def test_files_are_written_once_and_rerun_only_skips():
    hosts = [MemoryHost("a"), MemoryHost("b")]
    p = phase("write", write_key)
    s1 = execute(make(hosts), [p], View())
    assert all(h.files["/etc/k/key"] == (b"TOPSECRETKEYMATERIAL", 0o600) for h in hosts)
    assert s1.changed == {"a": 2, "b": 2}
    s2 = execute(make(hosts), [p], View())
    assert s2.skipped == {"a": 1, "b": 1}  # the upload is skipped; the Run is a change by design


def test_dry_run_touches_nothing_and_masks_secrets(capsys):
    hosts = [MemoryHost("a")]
    view = View()
    execute(make(hosts, dry_run=True), [phase("write", write_key)], view)
    assert hosts[0].files == {}
    assert not any(argv[0] == "systemctl" for argv in hosts[0].ran)
    planned = [e for e in view.events if e[0] == "planned"][0]
    text = "\n".join(s.describe() for s in planned[3])
    assert "<secret>" in text and "TOPSECRET" not in text


def test_one_failing_host_lets_the_others_finish_the_phase_and_stops_before_the_next():
    hosts = [MemoryHost("a", delay=0.2), MemoryHost("b", fail_on="restart"), MemoryHost("c", delay=0.2)]
    nxt = phase("next", lambda ctx, t: iter([Run(("true",))]))
    with pytest.raises(StepFailed) as e:
        execute(make(hosts), [phase("write", write_key), nxt], View())
    msg = str(e.value)
    assert msg.startswith("b: phase write failed at 'systemctl restart thing'")
    assert "the real reason" in msg and "kubeinit up -f c.yaml --only write" in msg
    assert hosts[0].files and hosts[2].files  # the others finished their phase
    assert not any(argv == ["true"] for h in hosts for argv in h.ran)  # barrier: next phase never ran


def test_unreachable_host_is_named():
    hosts = [MemoryHost("a"), MemoryHost("down", unreachable=True)]
    with pytest.raises(StepFailed, match=r"^down: phase write failed .*host unreachable"):
        execute(make(hosts), [phase("write", write_key)], View())


def test_host_lost_after_a_change_is_named_and_not_dialled_again():
    # As a machine stopped mid-upload: the phase changed something, then the connection went.
    # The run names the host and phase; it does not log in again just to forget its answers.
    lost = MemoryHost("lost", fail_on="restart")
    lost.run_ok = lost.run

    def run(argv, stdin=None, timeout=600):
        if "restart" in " ".join(argv):
            lost.unreachable = True
        return lost.run_ok(argv, stdin, timeout)

    lost.run = run
    hosts = [MemoryHost("a"), lost]
    ctx = make(hosts)
    logins = []
    first = ctx.targets[1]._connect
    ctx.targets[1]._connect = lambda host: (logins.append(host.name), first(host))[1]
    with pytest.raises(
        StepFailed, match=r"^lost: phase write failed at 'run systemctl restart thing': host unreachable"
    ):
        execute(ctx, [phase("write", write_key)], View())
    assert logins == ["lost"]


def test_hosts_run_in_parallel():
    hosts = [MemoryHost(n, delay=0.3) for n in "abcd"]
    t = time.monotonic()
    execute(make(hosts), [phase("write", write_key)], View())
    assert time.monotonic() - t < 4 * 0.3 * 2  # serial would be >= 2.4s (2 commands x 4 hosts x 0.3s)


def test_unbuilt_phase_refuses_before_touching_anything():
    hosts = [MemoryHost("a")]
    with pytest.raises(NotAvailableYet, match="phase later is not available yet"):
        execute(make(hosts), [phase("write", write_key), Phase("later", "x", None, ALL, path="later")], View())
    assert hosts[0].files == {}


def test_log_is_masked_and_private(tmp_path):
    hosts = [MemoryHost("a", fail_on="restart")]
    log = RunLog(tmp_path / "logs" / "run.log")
    with pytest.raises(StepFailed):
        execute(make(hosts), [phase("write", write_key)], View(), log)
    log.close()
    text = (tmp_path / "logs" / "run.log").read_text()
    assert "upload /etc/k/key" in text and "FAILED" in text
    assert "TOPSECRET" not in text
    assert (tmp_path / "logs" / "run.log").stat().st_mode & 0o777 == 0o600


def test_facts_of_phases_after_a_read_only_one_are_gathered_with_its_own():
    """preflight only reads, so the next phase's probes ride in its round trip; a phase that
    changes hosts ends that: the one after it gathers its own facts when it starts."""

    def probe(cmd):
        def plan(ctx, t):
            t.facts.run("echo", cmd)
            yield from ensure_file(t, f"/etc/{cmd}", cmd.encode(), 0o644)

        return plan, lambda ctx, t: [Command(("echo", cmd)), File(f"/etc/{cmd}")]

    check_plan, check_gather = probe("check")
    install_plan, install_gather = probe("install")
    after_plan, after_gather = probe("after")
    phases = [
        phase("check", check_plan, check_gather, read_only=True),
        phase("install", install_plan, install_gather),
        phase("after", after_plan, after_gather),
    ]
    hosts = [MemoryHost("a")]
    calls = []
    real = MemoryHost.run
    hosts[0].run = lambda argv, **kw: (calls.append(argv), real(hosts[0], argv, **kw))[1]
    execute(make(hosts), phases, View())
    probes = [c for c in calls if c[:2] == ["sh", "-c"] and "@@kubeinit-" in c[2]]
    assert len(probes) == 2, "one batch for check+install, one for after"
    assert "echo install" in probes[0][2] and "/etc/install" in probes[0][2] and "echo after" not in probes[0][2]
    assert "echo after" in probes[1][2]
    assert [c for c in calls if c not in probes and c[0] == "echo"] == [], "no probe ran on its own"


def test_logins_start_before_the_run_and_are_tried_once():
    """connect_ahead logs in to the first phase's hosts in the background (as many as run at
    once); the phase uses those connections, and a host that could not be reached costs one
    attempt, reported by the phase like any unreachable host."""
    from kubeinit.apply import connect_ahead

    spec = specmod.ClusterSpec(
        hosts=[
            specmod.Host(n, f"10.0.0.{i + 1}", "control-plane" if i == 0 else "worker")
            for i, n in enumerate(["a", "b", "down", "late"])
        ]
    )
    attempts: list[str] = []
    started = threading.Event()

    def connect(host):
        attempts.append(host.name)
        started.set()
        time.sleep(0.2)
        if host.name == "down":
            raise HostUnreachable("no route to host")
        return MemoryHost(host.name)

    ctx = Context(
        spec,
        [Target(h, connect) for h in spec.hosts],
        Options(parallel=3, resume=lambda p: f"kubeinit up -f c.yaml --only {p}"),
    )
    connect_ahead(ctx, [phase("write", write_key)])
    assert started.wait(5), "logins begin before execute is called"
    time.sleep(0.3)
    assert sorted(attempts) == ["a", "b", "down"], "no more than --parallel at once ahead of the run"
    with pytest.raises(StepFailed, match=r"^down: phase write failed at 'connect': host unreachable \(no route"):
        execute(ctx, [phase("write", write_key)], View())
    assert sorted(attempts) == ["a", "b", "down", "late"], "one login per host: the failed one was not retried"
    assert all(t.conn.files for t in ctx.targets if t.name != "down")


def test_each_failed_host_gets_one_line_with_its_own_reason(capsys, monkeypatch):
    from kubeinit import ui

    monkeypatch.setattr(ui, "_console", None)  # plain output to the captured stdout, as in a pipe
    hosts = [MemoryHost("a"), MemoryHost("b", fail_on="restart"), MemoryHost("c", unreachable=True)]
    view = ui.RunView([h.name for h in hosts])
    with pytest.raises(StepFailed):
        execute(make(hosts), [phase("write", write_key)], view)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "✗" in ln]
    assert sorted(lines) == [
        "  b: ✗ write failed at 'systemctl restart thing': exit code 3: line one | the real reason",
        "  c: ✗ write failed at 'connect': host unreachable (connection reset)",
    ]


def test_dry_run_prints_the_plan_a_real_run_applies_over_the_same_facts():
    """plan_phase gives one value per phase: --dry-run prints it, a real run applies it. Over two
    hosts with the same facts (one already has the file), the steps printed are the steps run."""

    def conf(ctx, t):
        yield from ensure_file(t, "/etc/k/conf", b"v2", 0o644)
        if t.facts.file("/etc/k/conf") and t.facts.file("/etc/k/conf").sha256 != scripted.sha(b"v1"):
            yield Run(("systemctl", "restart", "thing"), note="restart on the new config")

    def hosts():
        a, b = MemoryHost("a"), MemoryHost("b")
        b.files["/etc/k/conf"] = (b"v2", 0o644)
        return [a, b]

    phases = [phase("write", write_key), phase("conf", conf, lambda ctx, t: [File("/etc/k/conf")])]
    dry, real = View(), View()
    execute(make(hosts(), dry_run=True), phases, dry)
    execute(make(hosts()), phases, real)
    printed = [
        (h, p, s.describe()) for name, h, p, steps in (e for e in dry.events if e[0] == "planned") for s in steps
    ]
    applied = [(h, p, s.describe()) for name, h, p, s in (e for e in real.events if e[0] == "step")]
    assert sorted(printed) == sorted(applied) and len(printed) == 8


def test_plan_phase_is_a_value_per_host_with_steps_or_the_error():
    from kubeinit.apply import plan_phase

    hosts = [MemoryHost("a"), MemoryHost("down", unreachable=True)]
    ctx = make(hosts)
    plan = plan_phase(ctx, phase("write", write_key))
    by = {tp.target.name: tp for tp in plan.targets}
    assert [s.describe() for s in by["a"].steps][1] == "run systemctl restart thing" and by["a"].error is None
    assert by["down"].steps == [] and "host unreachable" in str(by["down"].error)
    assert hosts[0].files == {}, "planning changes nothing"
