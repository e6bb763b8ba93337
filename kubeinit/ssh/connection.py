"""SSHConnection: one host over SSH (optionally through a bastion), commands run as root.

A non-root user runs every command through `sudo -n`: never a password prompt that would hang a
parallel run; a sudo that wants one is a clear error instead. Uploads are atomic and verified
(connection.ATOMIC_WRITE with the sha256): a dropped connection mid-upload never installs half a
file. A lost connection is HostUnreachable, whatever paramiko or the socket raised, so the
executor can name the host and the others carry on.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from kubeinit.connection import ATOMIC_WRITE, HostUnreachable, Result, changed_since_verified, with_umask
from kubeinit.errors import KubeinitError
from kubeinit.spec import Host
from kubeinit.ssh._paramiko import paramiko
from kubeinit.ssh.channels import ChannelStream, bridge, chunks, execute, file_sha256
from kubeinit.ssh.hostkeys import KnownHostsPolicy, default_known_hosts
from kubeinit.ssh.login import LoginPool, auth_options, login, parse_bastion, reason

CONNECT_TIMEOUT = 10.0


class SudoRefused(KubeinitError):
    """The user is not root and `sudo -n` does not let it become root."""


# What sudo says when it does not run the command (it never prompts under -n). Anything else it
# prints (`unable to resolve host`, `setrlimit(RLIMIT_CORE)`) is a warning: the command ran, and
# its own exit code and errors follow.
_SUDO_REFUSALS = (
    "a password is required",
    "a terminal is required",
    "is not in the sudoers file",
    "may not run sudo",
    "is not allowed to execute",
    "must have a tty",
    "account validation failure",
    "password has expired",
    "password is expired",
)


def sudo_refusal(r: Result) -> str | None:
    """sudo's line refusing to run the command, or None if the command ran. A refusal exits 1
    before the command starts, so every line on stderr is sudo's own."""
    if r.rc != 1:
        return None
    lines = [ln.strip() for ln in r.err.splitlines() if ln.strip()]
    refusal = next((ln for ln in lines if any(p in ln for p in _SUDO_REFUSALS)), None)
    if refusal is None or not all(ln.startswith("sudo:") or ln == refusal for ln in lines):
        return None
    return refusal


class SSHConnection:
    """One host over SSH (optionally through a bastion), commands run as root."""

    def __init__(
        self,
        host: Host,
        known_hosts: str | os.PathLike | None = None,
        trust_new_host_keys: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
        logins: LoginPool | None = None,
    ):
        self.host = host
        self.name = host.name
        self.user = host.ssh.user
        self.sudo = self.user != "root"
        self.known_hosts = Path(known_hosts).expanduser() if known_hosts else default_known_hosts()
        self.trust_new = trust_new_host_keys
        self.connect_timeout = connect_timeout
        self._bastion: paramiko.SSHClient | None = None
        self._logins = logins  # shared with the run's other hosts; not this connection's to close
        self._auth_kw = auth_options(host.ssh.key)  # read once, for the bastion and the host
        self._shared = False  # the main client came from the pool: the pool closes it
        self._client = self._connect_shared(logins) if logins is not None and not host.ssh.bastion else self._connect()

    # --- connecting ---------------------------------------------------------
    def _new_client(self, label: str) -> paramiko.SSHClient:
        c = paramiko.SSHClient()
        if self.known_hosts.exists():
            c.load_host_keys(str(self.known_hosts))
        c.set_missing_host_key_policy(KnownHostsPolicy(label, self.known_hosts, self.trust_new))
        return c

    def _login(self, client: paramiko.SSHClient, label: str, user: str, addr: str, port: int, sock=None) -> None:
        login(
            client,
            label,
            user,
            addr,
            port,
            self._auth_kw,
            self.connect_timeout,
            self.known_hosts,
            self.host.ssh.key,
            sock,
        )

    def _connect_shared(self, logins: LoginPool) -> paramiko.SSHClient:
        """A host that is also another host's bastion (a control plane with the public address,
        workers behind it) is logged into once: the same client serves both."""
        h = self.host
        self._shared = True
        return logins.get((h.ssh.user, h.address, h.ssh.port, h.ssh.key), self._connect)

    def _connect(self) -> paramiko.SSHClient:
        h = self.host
        label = h.address if h.address == h.name else f"{h.name} ({h.address})"
        sock = None
        if h.ssh.bastion:
            buser, baddr, bport = parse_bastion(h.ssh.bastion, h.ssh.user)

            def open_bastion() -> paramiko.SSHClient:
                blabel = f"bastion {baddr}" if self._logins is not None else f"bastion {baddr} of {h.name}"
                c = self._new_client(blabel)
                self._login(c, blabel, buser, baddr, bport)
                return c

            if self._logins is not None:
                bastion = self._logins.get((buser, baddr, bport, h.ssh.key), open_bastion)
            else:
                bastion = self._bastion = open_bastion()
            try:  # ProxyJump: a direct-tcpip channel through the bastion carries the host's SSH
                sock = bastion.get_transport().open_channel(
                    "direct-tcpip", (h.address, h.ssh.port), ("127.0.0.1", 0), timeout=self.connect_timeout
                )
            except (OSError, EOFError, paramiko.SSHException) as e:
                if self._bastion:
                    self._bastion.close()
                raise HostUnreachable(f"bastion {baddr} cannot reach {h.address}:{h.ssh.port}: {reason(e)}") from None
        client = self._new_client(label)
        try:
            self._login(client, label, h.ssh.user, h.address, h.ssh.port, sock)
        except BaseException:
            if self._bastion:
                self._bastion.close()
            raise
        return client

    # --- commands -------------------------------------------------------------
    def _transport(self) -> paramiko.Transport:
        t = self._client.get_transport() if self._client else None
        if t is None or not t.is_active():
            raise HostUnreachable(f"the connection to {self.host.address} is closed")
        return t

    def _command(self, argv: Sequence[str]) -> str:
        cmd = shlex.join(with_umask(argv))
        return f"sudo -n -- {cmd}" if self.sudo else cmd

    def run(self, argv: Sequence[str], stdin: bytes | None = None, timeout: float = 600) -> Result:
        r = self._exec(self._command(argv), [stdin] if stdin else None, timeout)
        why = sudo_refusal(r) if self.sudo else None
        if why:
            raise SudoRefused(
                f"{self.user} cannot become root without a password ({why}); kubeinit runs commands "
                f"with `sudo -n`: give {self.user} passwordless sudo (`{self.user} ALL=(ALL) NOPASSWD:ALL` in "
                f"/etc/sudoers.d/) or log in as root"
            )
        return r

    def _exec(self, command: str, stdin: Iterable[bytes] | None, timeout: float) -> Result:
        return execute(self._transport(), self.host.address, command, stdin, timeout, self.connect_timeout)

    def dial(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        """A local socket connected, through this SSH connection, to host:port as the remote
        host sees it (`ssh -L` without a listening port): the API server on a control plane's
        127.0.0.1:6443 is reached whatever the network between here and there allows."""
        try:
            chan = self._transport().open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as e:
            raise HostUnreachable(f"{self.host.name} cannot connect to {host}:{port} ({e.text.lower()})") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostUnreachable(f"{self.host.address}: {reason(e)}") from None
        ours, theirs = socket.socketpair()
        threading.Thread(target=bridge, args=(theirs, chan), daemon=True).start()
        return ours

    def open_stream(self, argv: Sequence[str]) -> ChannelStream:
        """Start a long-lived command (the host lock) and return at once: its channel stays open,
        and the command's stdin ends when the stream is closed or the connection dies."""
        t = self._transport()
        try:
            chan = t.open_session(timeout=self.connect_timeout)
            chan.exec_command(self._command(argv))
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostUnreachable(f"{self.host.address}: {reason(e)}") from None
        return ChannelStream(chan, self.host.address)

    def read(self, path: str) -> bytes | None:
        r = self.run(["cat", "--", path], timeout=60)
        return r.stdout if r.rc == 0 else None

    def put(self, path: str, data: bytes, mode: int) -> None:
        self._write(path, mode, hashlib.sha256(data).hexdigest(), [data])

    def put_file(self, local_path: str, path: str, mode: int, sha256: str | None = None) -> None:
        """Stream a local file (never all of it in memory) into the atomic, verified write. The host
        checks it against `sha256`, the digest the plan names, when given (a Transfer's): a cached
        artifact changed since it was verified is refused there, whatever the file is now."""
        h = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for c in chunks(local_path):
                h.update(c)
                yield c

        try:
            self._write(path, mode, sha256 or file_sha256(local_path), hashed())
        except OSError:
            if sha256 is not None and h.hexdigest() != sha256:  # say why, rather than "arrived incomplete"
                raise OSError(changed_since_verified(local_path, path, sha256, h.hexdigest())) from None
            raise

    def _write(self, path: str, mode: int, digest: str, data: Iterable[bytes]) -> None:
        cmd = self._command(["sh", "-c", ATOMIC_WRITE, "sh", path, f"{mode:o}", digest])
        r = self._exec(cmd, data, timeout=600)
        if r.rc != 0:
            raise OSError(f"cannot write {path}: {r.err.strip() or f'exit code {r.rc}'}")

    def close(self) -> None:
        for c in (None if self._shared else self._client, self._bastion):
            if c is not None:
                c.close()
        self._client = self._bastion = None
