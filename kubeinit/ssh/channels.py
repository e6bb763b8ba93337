"""What runs on an SSH connection's channels: commands (stdin fed from a thread while the output
is drained, so big data cannot deadlock), long-lived commands, tunnels, and the data of uploads."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator

from kubeinit.connection import HostUnreachable, Result
from kubeinit.ssh._paramiko import paramiko
from kubeinit.ssh.login import reason

CHUNK = 256 * 1024
_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: hash each artifact once


def execute(
    t: paramiko.Transport,
    address: str,
    command: str,
    stdin: Iterable[bytes] | None,
    timeout: float,
    open_timeout: float,
) -> Result:
    """Run `command` on a new channel of `t`, feeding it `stdin`; its exit code and output."""
    try:
        chan = t.open_session(timeout=open_timeout)
        chan.exec_command(command)
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise HostUnreachable(f"{address}: {reason(e)}") from None
    sender = None
    send_error: list[BaseException] = []
    if stdin is None:
        chan.shutdown_write()
    else:  # feed stdin from a thread while this one drains stdout/stderr: no deadlock on big data
        sender = threading.Thread(target=feed, args=(chan, stdin, send_error), daemon=True)
        sender.start()
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            while chan.recv_ready():
                out += chan.recv(CHUNK)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(CHUNK)
            # sshd may send the exit status before the last output: done only at end of output too
            if (
                chan.exit_status_ready()
                and (chan.eof_received or chan.closed)
                and not chan.recv_ready()
                and not chan.recv_stderr_ready()
            ):
                break
            if not t.is_active():
                raise HostUnreachable(f"the connection to {address} was lost")
            if time.monotonic() > deadline:
                return Result(124, bytes(out), bytes(err) + f"timed out after {timeout:.0f}s".encode())
            if chan.eof_received:  # output is over (the pipe stays readable): wait for the exit status
                chan.status_event.wait(0.2)
            else:
                select.select([chan], [], [], 0.2)
        rc = chan.recv_exit_status()
        if rc == -1:  # no exit status: the command was killed, often because the host is going down
            for _ in range(20):
                if not t.is_active():
                    raise HostUnreachable(f"the connection to {address} was lost")
                time.sleep(0.1)
            err += b"\nkilled by a signal (no exit status)"
    finally:
        chan.close()
    if sender:
        sender.join(timeout=5)
    if send_error and rc == 0:  # the command finished but did not get all of stdin
        raise HostUnreachable(f"{address}: sending data failed: {reason(send_error[0])}")
    return Result(rc, bytes(out), bytes(err))


class ChannelStream:
    """A command left running on a channel: its first line of output, its stderr, and close."""

    def __init__(self, chan: paramiko.Channel, address: str):
        self._chan, self._address = chan, address
        self._err = bytearray()

    def first_line(self, timeout: float) -> str:
        buf = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf:
                while self._chan.recv_stderr_ready():
                    self._err += self._chan.recv_stderr(CHUNK)
                if self._chan.recv_ready():
                    buf += self._chan.recv(CHUNK)
                    continue
                if self._chan.eof_received or time.monotonic() > deadline:
                    break
                if not self._chan.get_transport().is_active():
                    raise HostUnreachable(f"the connection to {self._address} was lost")
                select.select([self._chan], [], [], 0.2)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostUnreachable(f"{self._address}: {reason(e)}") from None
        while self._chan.recv_stderr_ready():
            self._err += self._chan.recv_stderr(CHUNK)
        return buf.decode(errors="replace").partition("\n")[0].strip()

    def error(self) -> str:
        return self._err.decode(errors="replace")

    def close(self) -> None:
        try:
            self._chan.shutdown_write()  # the command's stdin ends: it lets go
        except (OSError, EOFError, paramiko.SSHException):
            pass
        self._chan.close()


def bridge(sock: socket.socket, chan: paramiko.Channel) -> None:
    """Copy bytes both ways between a local socket and an SSH channel; an end of input on one
    side is passed on as such (half-close), and the bridge ends when both directions have."""
    up = down = True  # socket -> channel, channel -> socket
    try:
        while up or down:
            ready, _, _ = select.select([sock] * up + [chan] * down, [], [], 60)
            if sock in ready:
                if data := sock.recv(CHUNK):
                    chan.sendall(data)
                else:
                    up = False
                    chan.shutdown_write()
            if chan in ready:
                if data := chan.recv(CHUNK):
                    sock.sendall(data)
                else:
                    down = False
                    sock.shutdown(socket.SHUT_WR)
    # ValueError: the run closed its end while select() waited (a closed socket's fd is -1); the
    # bridge ends quietly then, as it does on any other end of the connection
    except (OSError, EOFError, ValueError, paramiko.SSHException):
        pass
    finally:
        chan.close()
        sock.close()


def feed(chan: paramiko.Channel, chunks: Iterable[bytes], errors: list) -> None:
    try:
        for c in chunks:
            view = memoryview(c)  # paramiko's sendall re-slices what it is given: keep pieces small
            for i in range(0, len(view), CHUNK):
                chan.sendall(bytes(view[i : i + CHUNK]))
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException) as e:
        errors.append(e)


def chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while c := f.read(CHUNK):
            yield c


def file_sha256(path: str) -> str:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        for c in chunks(path):
            h.update(c)
        _digests[key] = h.hexdigest()
    return _digests[key]
