"""A small SSH server for unit tests (paramiko, on 127.0.0.1): enough of sshd for kubeinit's
SSHConnection - public-key auth, exec with stdin/stdout/stderr and exit status, direct-tcpip
(the bastion's ProxyJump), and `sudo -n` either allowed or wanting a password.

Commands run on this machine with `sh -c` as the test's own user, like sshd without a pty:
when the connection drops, the command's stdin just ends (no SIGHUP) - the case that makes
kubeinit verify uploads before installing them.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import paramiko
import pytest

SUDO = "sudo -n -- "


class _Iface(paramiko.ServerInterface):
    def __init__(self, server: SSHServer, transport: paramiko.Transport):
        self.server, self.transport = server, transport
        self.tcpip: dict[int, tuple[str, int]] = {}

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        ok = username in self.server.users and key.asbytes() in self.server.authorized
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        self.tcpip[chanid] = destination
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        self.server.commands.append(command.decode())
        threading.Thread(
            target=self.server._exec, args=(self.transport, channel, command.decode()), daemon=True
        ).start()
        return True


class SSHServer:
    def __init__(
        self,
        authorized: list[paramiko.PKey],
        host_key: paramiko.PKey | None = None,
        users: tuple[str, ...] = ("root", "kube"),
        sudo: str = "ok",
    ):
        self.host_key = host_key or paramiko.ECDSAKey.generate()
        self.authorized = {k.asbytes() for k in authorized}
        self.users = users
        self.sudo = sudo  # "ok" or "password"
        self.sudo_warning = ""  # a line sudo prints first, as real sudo does (`sudo: unable to resolve host …`)
        self.drop_after: float | None = None  # close the connection this long into each command
        # send the exit status this long before any output, as sshd may when a command exits before
        # its output pipe is drained
        self.status_first: float | None = None
        self.commands: list[str] = []
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._transports: list[paramiko.Transport] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        t = paramiko.Transport(conn)
        self._transports.append(t)
        t.add_server_key(self.host_key)
        iface = _Iface(self, t)
        try:
            t.start_server(server=iface)
        except (paramiko.SSHException, EOFError, OSError):
            return
        while t.is_active():
            chan = t.accept(0.5)
            if chan is not None and chan.get_id() in iface.tcpip:
                threading.Thread(target=_forward, args=(chan, iface.tcpip[chan.get_id()]), daemon=True).start()

    def _exec(self, t: paramiko.Transport, chan: paramiko.Channel, command: str) -> None:
        time.sleep(0.05)  # let paramiko answer the exec request before the channel may close (also under load)
        if command.startswith(SUDO):
            if self.sudo_warning:
                chan.sendall_stderr(self.sudo_warning.encode() + b"\n")
            if self.sudo == "password":
                chan.sendall_stderr(b"sudo: a password is required\n")
                chan.send_exit_status(1)
                chan.close()
                return
            command = command[len(SUDO) :]
        if self.drop_after is not None:
            threading.Timer(self.drop_after, t.close).start()
        p = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def pump_in():
            try:
                while data := chan.recv(65536):
                    p.stdin.write(data)
            except (OSError, EOFError):  # EOFError: paramiko, when the test cut the connection
                pass
            finally:
                try:
                    p.stdin.close()
                except OSError:
                    pass

        def pump_out(stream, send):
            while data := stream.read1(65536):
                try:
                    send(data)
                except OSError:
                    return

        threads = [
            threading.Thread(target=pump_in, daemon=True),
            threading.Thread(target=pump_out, args=(p.stdout, chan.sendall), daemon=True),
            threading.Thread(target=pump_out, args=(p.stderr, chan.sendall_stderr), daemon=True),
        ]
        early = self.status_first
        for th in threads[:1] if early is not None else threads:
            th.start()
        rc = p.wait()
        if early is not None:
            chan.send_exit_status(rc)
            time.sleep(early)
            for th in threads[1:]:
                th.start()
        for th in threads[1:]:
            th.join()
        try:
            if early is None:
                chan.send_exit_status(rc)
            chan.shutdown_write()
            chan.close()
        except OSError:
            pass

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        for t in self._transports:
            t.close()


def _forward(chan: paramiko.Channel, dest: tuple[str, int]) -> None:
    try:
        s = socket.create_connection(dest, timeout=5)
    except OSError:
        chan.close()
        return

    def up():
        try:
            while data := chan.recv(65536):
                s.sendall(data)
        except (OSError, EOFError):  # EOFError: paramiko, the client's connection is gone
            pass
        finally:  # the client's end of input: passed on as OpenSSH does (half-close)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threading.Thread(target=up, daemon=True).start()
    try:
        while data := s.recv(65536):
            chan.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        s.close()
        try:
            chan.close()
        except EOFError:
            pass


def silent_listener() -> tuple[socket.socket, int]:
    """A port that accepts TCP and never speaks SSH (a hung sshd): for connect timeouts."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s, s.getsockname()[1]


def wait_until(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


# --- fixtures shared by the SSH tests (imported by name in test_ssh_*.py) ---------------


@pytest.fixture(scope="module")
def client_key(tmp_path_factory):
    """(key, path of its private key file): the key the test server accepts."""
    key = paramiko.ECDSAKey.generate()
    path = tmp_path_factory.mktemp("keys") / "id_ecdsa"
    key.write_private_key_file(str(path))
    return key, str(path)


@pytest.fixture
def server(client_key):
    s = SSHServer([client_key[0]])
    yield s
    s.close()
