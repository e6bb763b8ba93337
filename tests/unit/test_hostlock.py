"""The host lock: one kubeinit run per host, over SSH (flock(1) in a session left open) and on the
host itself (fcntl.flock on the same file). These take the real lock of this machine,
/var/lib/kubeinit/run.lock (the SSH test server runs commands here); the first lock of each test
waits, so a concurrent local `init` elsewhere only delays them."""

from __future__ import annotations

import os
import time

import pytest
import test_apply as ta
from sshserver import SSHServer, client_key, server  # noqa: F401 (fixtures)

from kubeinit import hostlock
from kubeinit.apply import execute
from kubeinit.connection import LocalConnection
from kubeinit.errors import StepFailed
from kubeinit.facts import File
from kubeinit.spec import Host, SSHOptions
from kubeinit.ssh import SSHConnection

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="takes this machine's /var/lib/kubeinit/run.lock as root")


def connect(server, client_key, tmp_path, user="root") -> SSHConnection:
    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    return SSHConnection(
        Host("n1", "127.0.0.1", ssh=SSHOptions(user=user, port=server.port, key=client_key[1])), known_hosts=kh
    )


def test_a_second_run_is_refused_naming_the_holder_until_the_first_lets_go(server, client_key, tmp_path):
    a, b = connect(server, client_key, tmp_path), connect(server, client_key, tmp_path, user="kube")
    held = hostlock.acquire(a, "`kubeinit up` of cluster 'one' by alice@ws1 (pid 1)", 30, time.monotonic())
    assert open(hostlock.HOLDER).read() == "`kubeinit up` of cluster 'one' by alice@ws1 (pid 1)\n"
    assert oct(os.stat(hostlock.STATE).st_mode & 0o777) == "0o700"
    with pytest.raises(
        hostlock.HostBusy,
        match=r"^n1 is locked by `kubeinit up` of cluster 'one' by alice@ws1 "
        r"\(pid 1\); wait for that run to finish",
    ):
        hostlock.acquire(b, "two", 0, time.monotonic())
    held.close()
    again = hostlock.acquire(b, "two", 10, time.monotonic())  # through sudo, as a non-root login takes it
    assert open(hostlock.HOLDER).read() == "two\n"
    again.close()
    a.close()
    b.close()


def test_a_dead_connection_lets_go(server, client_key, tmp_path):
    a, b = connect(server, client_key, tmp_path), connect(server, client_key, tmp_path)
    hostlock.acquire(a, "one", 30, time.monotonic())
    a.close()  # no release: the connection is gone, and the session's stdin ends with it
    hostlock.acquire(b, "two", 10, time.monotonic()).close()
    b.close()


def test_a_run_on_the_host_itself_and_one_over_ssh_exclude_each_other(server, client_key, tmp_path):
    local = LocalConnection("n1")
    held = hostlock.acquire(local, "local init", 30, time.monotonic())  # fcntl.flock, in this process
    ssh = connect(server, client_key, tmp_path)
    with pytest.raises(hostlock.HostBusy, match="n1 is locked by local init;"):
        hostlock.acquire(ssh, "up", 0, time.monotonic())
    held.close()
    remote = hostlock.acquire(ssh, "up", 10, time.monotonic())
    with pytest.raises(hostlock.HostBusy, match="n1 is locked by up;"):
        hostlock.acquire(local, "local init", 0.3, time.monotonic())
    remote.close()
    ssh.close()


def test_a_probe_that_may_have_seen_the_previous_run_half_done_is_repeated(server, client_key, tmp_path):
    """Released after this run first talked to the host: stale. Released before: not."""
    ssh = connect(server, client_key, tmp_path)
    first = hostlock.acquire(ssh, "one", 30, time.monotonic())
    since = time.monotonic()
    first.close()
    time.sleep(0.2)
    second = hostlock.acquire(ssh, "two", 10, since)
    assert second.stale is True
    second.close()
    hostlock.acquire(ssh, "wait for the release", 10, time.monotonic()).close()
    ssh.close()
    time.sleep(1)
    ssh = connect(server, client_key, tmp_path)
    assert hostlock.acquire(ssh, "three", 10, time.monotonic()).stale is False
    ssh.close()


def test_a_refused_run_changes_nothing_and_says_who_holds_the_host():
    host = ta.MemoryHost("a")
    ctx = ta.make([host])
    ctx.targets[0].locker = lambda conn, since: (_ for _ in ()).throw(hostlock.busy("a", "`kubeinit up` by bob"))
    with pytest.raises(
        StepFailed,
        match=r"a: phase write failed at 'lock': a is locked by `kubeinit up` by bob; "
        r"wait for that run",
    ):
        execute(ctx, [ta.phase("write", ta.write_key)], ta.View())
    assert host.files == {} and not any("systemctl" in a for a in host.ran)


def test_facts_read_before_a_stale_lock_are_read_again():
    host = ta.MemoryHost("a")
    ctx = ta.make([host])
    ctx.targets[0].locker = lambda conn, since: hostlock.HostLock(lambda: None, stale=True)
    execute(ctx, [ta.phase("write", ta.write_key, facts=lambda c, t: [File("/etc/k/key")])], ta.View())
    probes = [a for a in host.ran if ta.scripted.is_digests(a)]
    assert len(probes) == 2, "the probe is repeated once the lock is held"
    assert host.files["/etc/k/key"][0] == b"TOPSECRETKEYMATERIAL"


def _hold_without_record(previous: str):
    """A holder caught between taking the lock and writing its record: the record on disk is the
    previous run's, older than that run's release stamp."""
    import fcntl

    os.makedirs(hostlock.STATE, mode=0o700, exist_ok=True)
    with open(hostlock.HOLDER, "w") as f:
        f.write(previous + "\n")
    past = time.time() - 60
    os.utime(hostlock.HOLDER, (past, past))
    fd = os.open(hostlock.LOCK, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.utime(hostlock.LOCK)  # the previous run's release stamp, newer than its record
    return fd


@pytest.mark.parametrize("side", ["ssh", "local"])
def test_a_refusal_in_the_moment_before_the_holder_writes_its_record_names_the_holder(
    server, client_key, tmp_path, side
):
    import threading

    fd = _hold_without_record("`kubeinit up` that finished long ago")

    def record_soon():
        time.sleep(0.5)
        with open(hostlock.HOLDER, "w") as f:
            f.write("`kubeinit up` holding now\n")

    writer = threading.Thread(target=record_soon)
    conn = connect(server, client_key, tmp_path) if side == "ssh" else LocalConnection("n1")
    try:
        writer.start()
        with pytest.raises(hostlock.HostBusy, match=r"^n1 is locked by `kubeinit up` holding now;"):
            hostlock.acquire(conn, "refused", 0, time.monotonic())
    finally:
        writer.join()
        os.close(fd)
        conn.close()
