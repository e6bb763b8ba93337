"""SSHConnection against a local SSH server: commands, sudo, atomic verified uploads,
bastion, timeouts, and a lost connection turning into HostUnreachable."""

from __future__ import annotations

import os
import time

import paramiko
import pytest
from sshserver import SSHServer, client_key, server, silent_listener  # noqa: F401 (fixtures)

from kubeinit.connection import HostUnreachable
from kubeinit.spec import Host, SSHOptions
from kubeinit.ssh import SSHConnection
from kubeinit.ssh.connection import SudoRefused


def connect(server, client_key, tmp_path, user="root", **kw) -> SSHConnection:
    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    h = Host("n1", "127.0.0.1", ssh=SSHOptions(user=user, port=server.port, key=client_key[1]))
    return SSHConnection(h, known_hosts=kh, **kw)


def test_run_returns_output_stderr_and_exit_code(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path)
    r = c.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    assert c.run(["printf", "%s", "a b'c"]).out == "a b'c", "arguments are quoted, never re-split"
    assert c.run(["cat"], stdin=b"x" * 3_000_000).stdout == b"x" * 3_000_000, "big stdin and stdout at once"
    c.close()


def test_output_sent_after_the_exit_status_is_not_lost(server, client_key, tmp_path):
    # sshd may send a command's exit status before the rest of its output; a reader that stops at
    # the status returns an empty answer (seen on loaded machines), and a fact read from it is wrong.
    server.status_first = 0.3
    conn = connect(server, client_key, tmp_path)
    r = conn.run(["sh", "-c", "echo facts; echo more >&2"])
    assert (r.rc, r.out, r.err) == (0, "facts\n", "more\n")
    conn.close()


def test_non_root_user_runs_through_sudo(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path, user="kube")
    assert c.run(["echo", "ok"]).out == "ok\n"
    assert server.commands[-1] == "sudo -n -- echo ok"
    c.close()


def test_sudo_wanting_a_password_is_a_clear_error(server, client_key, tmp_path):
    server.sudo = "password"
    c = connect(server, client_key, tmp_path, user="kube")
    with pytest.raises(SudoRefused) as e:
        c.run(["true"])
    assert "kube cannot become root without a password" in str(e.value)
    assert "NOPASSWD" in str(e.value)
    c.close()


def test_a_sudo_warning_is_not_a_refusal(server, client_key, tmp_path):
    server.sudo_warning = "sudo: unable to resolve host n1: Name or service not known"
    c = connect(server, client_key, tmp_path, user="kube")
    r = c.run(["sh", "-c", "echo 'no such unit' >&2; exit 1"])  # the command's own failure, after the warning
    assert (r.rc, r.err.splitlines()[-1]) == (1, "no such unit")
    assert c.run(["test", "-e", str(tmp_path / "nope")]).rc == 1, "a failed test with only sudo's warning on stderr"
    server.sudo = "password"  # a refusal after the warning: named by its own line
    with pytest.raises(
        SudoRefused,
        match=r"kube cannot become root without a password \(sudo: a password is "
        r"required\)",
    ):
        c.run(["true"])
    c.close()


def test_put_is_atomic_with_mode_and_put_file_streams(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path)
    dest = tmp_path / "etc" / "secret.key"
    c.put(str(dest), b"key material", 0o600)
    assert dest.read_bytes() == b"key material" and dest.stat().st_mode & 0o777 == 0o600
    big = tmp_path / "artifact.bin"
    big.write_bytes(os.urandom(5_000_000))
    c.put_file(str(big), str(tmp_path / "bin" / "tool"), 0o755)
    assert (tmp_path / "bin" / "tool").read_bytes() == big.read_bytes()
    assert (tmp_path / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert c.read(str(dest)) == b"key material" and c.read(str(tmp_path / "nope")) is None
    assert not [p for p in tmp_path.rglob(".kubeinit.*")], "no temp file left behind"
    c.close()


def test_upload_cut_short_by_a_lost_connection_installs_nothing(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path)
    dest = tmp_path / "bin" / "tool"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    big = tmp_path / "artifact.bin"
    big.write_bytes(os.urandom(30_000_000))
    server.drop_after = 0.05  # the server closes the connection while the data streams in
    with pytest.raises(HostUnreachable):
        c.put_file(str(big), str(dest), 0o755)
    time.sleep(0.5)  # let the server's command (cat of a truncated stdin) finish
    assert dest.read_bytes() == b"old", "a truncated upload must never replace the file"
    assert not list(dest.parent.glob(".kubeinit.*"))


def test_lost_connection_during_a_command_is_host_unreachable(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path)
    server.drop_after = 0.2
    t0 = time.monotonic()
    with pytest.raises(HostUnreachable):
        c.run(["sleep", "5"])
    assert time.monotonic() - t0 < 3
    with pytest.raises(HostUnreachable):  # and the connection stays unusable, not half-open
        c.run(["true"])


def test_command_timeout(server, client_key, tmp_path):
    c = connect(server, client_key, tmp_path)
    t0 = time.monotonic()
    r = c.run(["sleep", "5"], timeout=0.5)
    assert r.rc == 124 and "timed out" in r.err
    assert time.monotonic() - t0 < 2
    c.close()


def test_connect_refused_and_connect_timeout_are_host_unreachable(client_key, tmp_path):
    lst, port = silent_listener()  # accepts TCP, never sends an SSH banner
    try:
        h = Host("n1", "127.0.0.1", ssh=SSHOptions(port=port, key=client_key[1]))
        t0 = time.monotonic()
        with pytest.raises(HostUnreachable, match="cannot connect to 127.0.0.1"):
            SSHConnection(h, known_hosts=tmp_path / "kh", connect_timeout=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        lst.close()
    h = Host("n1", "127.0.0.1", ssh=SSHOptions(port=port, key=client_key[1]))
    with pytest.raises(HostUnreachable, match="refused"):
        SSHConnection(h, known_hosts=tmp_path / "kh")


def test_through_a_bastion(client_key, tmp_path):
    target, bastion = SSHServer([client_key[0]]), SSHServer([client_key[0]])
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text(target.known_hosts_line() + bastion.known_hosts_line())
        h = Host(
            "n1",
            "127.0.0.1",
            ssh=SSHOptions(user="root", port=target.port, key=client_key[1], bastion=f"root@127.0.0.1:{bastion.port}"),
        )
        c = SSHConnection(h, known_hosts=kh)
        assert c.run(["echo", "via bastion"]).out == "via bastion\n"
        assert target.commands == ["echo 'via bastion'"] and bastion.commands == []
        c.close()
    finally:
        target.close()
        bastion.close()


def test_wrong_key_is_an_authentication_error(server, tmp_path):
    other = paramiko.ECDSAKey.generate()
    path = tmp_path / "other"
    other.write_private_key_file(str(path))
    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    h = Host("n1", "127.0.0.1", ssh=SSHOptions(port=server.port, key=str(path)))
    with pytest.raises(Exception, match="refused authentication"):
        SSHConnection(h, known_hosts=kh)


def test_encrypted_key_file_says_to_use_the_agent(server, tmp_path):
    key = paramiko.ECDSAKey.generate()
    path = tmp_path / "id_encrypted"
    key.write_private_key_file(str(path), password="s3cret")
    h = Host("n1", "127.0.0.1", ssh=SSHOptions(port=server.port, key=str(path)))
    with pytest.raises(Exception, match="is encrypted; load it into ssh-agent"):
        SSHConnection(h, known_hosts=tmp_path / "kh")
    assert server.connections == 0, "refused before connecting"


def test_hosts_behind_one_bastion_share_one_login_to_it(client_key, tmp_path):
    """With the run's LoginPool, N hosts through a bastion open 1 connection to it, not N; a
    bastion that cannot be reached fails every host behind it with the same error, tried once."""
    from concurrent.futures import ThreadPoolExecutor

    from kubeinit.ssh import LoginPool

    targets = [SSHServer([client_key[0]]) for _ in range(4)]
    bastion = SSHServer([client_key[0]])
    pool = LoginPool()
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text("".join(t.known_hosts_line() for t in [*targets, bastion]))
        hosts = [
            Host(
                f"n{i}",
                "127.0.0.1",
                ssh=SSHOptions(user="root", port=t.port, key=client_key[1], bastion=f"root@127.0.0.1:{bastion.port}"),
            )
            for i, t in enumerate(targets)
        ]
        with ThreadPoolExecutor(4) as ex:  # in parallel, as the executor connects
            conns = list(ex.map(lambda h: SSHConnection(h, known_hosts=kh, logins=pool), hosts))
        assert [c.run(["echo", c.name]).out for c in conns] == ["n0\n", "n1\n", "n2\n", "n3\n"]
        assert bastion.connections == 1 and [t.connections for t in targets] == [1, 1, 1, 1]
        conns[0].close()  # a host's close leaves the shared bastion to the others
        assert conns[1].run(["echo", "still"]).out == "still\n"
        for c in conns[1:]:
            c.close()
    finally:
        pool.close()
        for s in [*targets, bastion]:
            s.close()

    lst, port = silent_listener()  # a bastion that never answers
    pool = LoginPool()
    try:
        hosts = [
            Host(f"m{i}", "127.0.0.1", ssh=SSHOptions(port=22, key=client_key[1], bastion=f"127.0.0.1:{port}"))
            for i in range(3)
        ]
        t0 = time.monotonic()
        for h in hosts:
            with pytest.raises(HostUnreachable, match=f"cannot connect to 127.0.0.1:{port}"):
                SSHConnection(h, known_hosts=tmp_path / "kh", connect_timeout=0.5, logins=pool)
        assert time.monotonic() - t0 < 1.5, "tried once for the three hosts, not once each"
    finally:
        pool.close()
        lst.close()


def test_a_host_that_is_also_a_bastion_is_logged_into_once(client_key, tmp_path):
    from kubeinit.ssh import LoginPool

    front, back = SSHServer([client_key[0]]), SSHServer([client_key[0]])
    pool = LoginPool()
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text(front.known_hosts_line() + back.known_hosts_line())
        cp = Host("cp", "127.0.0.1", ssh=SSHOptions(user="root", port=front.port, key=client_key[1]))
        worker = Host(
            "w",
            "127.0.0.1",
            ssh=SSHOptions(user="root", port=back.port, key=client_key[1], bastion=f"root@127.0.0.1:{front.port}"),
        )
        a = SSHConnection(cp, known_hosts=kh, logins=pool)
        b = SSHConnection(worker, known_hosts=kh, logins=pool)
        assert (a.run(["echo", "a"]).out, b.run(["echo", "b"]).out) == ("a\n", "b\n")
        assert (front.connections, back.connections) == (1, 1)
        a.close()  # the worker still goes through it
        assert b.run(["echo", "still"]).out == "still\n"
        b.close()
    finally:
        pool.close()
        front.close()
        back.close()


def test_paramiko_loads_without_invoke_or_importlib_metadata_and_knows_its_version():
    import subprocess
    import sys

    code = (
        "import sys, kubeinit.ssh, paramiko\n"
        "left = [m for m in ('invoke', 'importlib.metadata') if m in sys.modules]\n"
        "import importlib.metadata as md\n"
        "print(left, paramiko.__version__ == md.version('paramiko'), paramiko.transport.Transport._CLIENT_ID)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    left, same, banner = r.stdout.split()
    assert (left, same) == ("[]", "True") and banner.startswith("paramiko_") and banner != "paramiko_", r.stdout


def test_dial_reaches_a_port_as_the_remote_host_sees_it(server, client_key, tmp_path):
    """`dial` is `ssh -L` without a listening port: kubeinit reaches the API server on a
    control plane's 127.0.0.1 through the connection it already has."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def echo():
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())

    threading.Thread(target=echo, daemon=True).start()
    c = connect(server, client_key, tmp_path)
    s = c.dial("127.0.0.1", port)
    payload = b"hello api server " * 20_000  # bigger than one channel window
    threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)), daemon=True).start()
    got = b""
    s.settimeout(10)
    while chunk := s.recv(65536):
        got += chunk
    assert got == payload.upper()
    s.close()
    c.close()
    listener.close()


def test_a_cached_artifact_changed_since_it_was_verified_is_refused_by_the_host(server, client_key, tmp_path):
    """A byte flipped in a cached artifact with its mtime kept (the audit's runc): the executor hands
    the host the digest the plan names, and the host refuses what does not have it."""
    import hashlib
    import types

    from kubeinit import apply
    from kubeinit.steps import Transfer

    cached = tmp_path / "cache" / "runc.amd64"
    cached.parent.mkdir()
    cached.write_bytes(os.urandom(200_000))
    verified = hashlib.sha256(cached.read_bytes()).hexdigest()
    st = cached.stat()
    data = bytearray(cached.read_bytes())
    data[1000] ^= 0xFF
    cached.write_bytes(bytes(data))
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as when it was verified
    dest = tmp_path / "usr" / "local" / "sbin" / "runc"
    c = connect(server, client_key, tmp_path)
    step = Transfer(str(cached), str(dest), verified, 0o755, note="install runc 1.2.3")
    with pytest.raises(OSError) as e:
        apply._do(None, types.SimpleNamespace(conn=c), step, "runtime", "", apply.RunLog(None))
    msg = str(e.value)
    assert msg.startswith(
        f"{dest} was not written: {cached} has sha256 {hashlib.sha256(data).hexdigest()}, "
        f"not the {verified} the plan names"
    )
    assert "delete it" in msg and "\n" not in msg
    assert not dest.exists() and not [p for p in tmp_path.rglob(".kubeinit.*")]
    cached.write_bytes(bytes(data[:1000]) + bytes([data[1000] ^ 0xFF]) + bytes(data[1001:]))  # the verified bytes
    apply._do(None, types.SimpleNamespace(conn=c), step, "runtime", "", apply.RunLog(None))
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == verified
    c.close()


def test_the_local_connection_checks_the_plans_digest_too(tmp_path):
    import hashlib

    from kubeinit.connection import LocalConnection

    f = tmp_path / "artifact"
    f.write_bytes(b"tampered")
    with pytest.raises(OSError, match=r"was not written: .* has sha256 .* not the 0{64} the plan names"):
        LocalConnection().put_file(str(f), str(tmp_path / "out"), 0o644, "0" * 64)
    assert not (tmp_path / "out").exists()
    LocalConnection().put_file(str(f), str(tmp_path / "out"), 0o644, hashlib.sha256(b"tampered").hexdigest())
    assert (tmp_path / "out").read_bytes() == b"tampered"


def test_a_bridge_whose_socket_the_run_closed_ends_quietly():
    """The run's API client closed while its bridge thread waited: no traceback on the user's stderr."""
    import socket

    from kubeinit.ssh.channels import bridge

    closed, other = socket.socketpair()
    closed.close()
    bridge(closed, other)  # a socket stands in for the channel's side
    assert other.fileno() == -1, "the other end is closed too"
