"""Host keys: known_hosts (OpenSSH's format, so `ssh` and kubeinit trust the same keys) and what
to do with a key it does not hold. An unknown key is refused unless the user passed
--trust-new-host-keys; a changed key is refused always: it is the one signal of a man in the
middle, and no flag should turn it off."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shlex
import threading
from pathlib import Path

from kubeinit.errors import KubeinitError
from kubeinit.ssh._paramiko import paramiko

_append_lock = threading.Lock()


class HostKeyRefused(KubeinitError):
    """The host's key is unknown (and not to be trusted) or has changed."""


def default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def key_name(hostname: str, port: int) -> str:
    """The name known_hosts files this host under (OpenSSH's rule)."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_lines(path: Path, name: str) -> list[int]:
    """Line numbers of `path` that hold a key for `name` (plain or hashed entries)."""
    out: list[int] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for no, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) < 3 or line.lstrip().startswith("#"):
            continue
        hosts = fields[1] if fields[0].startswith("@") else fields[0]
        for h in hosts.split(","):
            if h.startswith("|1|"):
                salt = h.split("|")[2]
                if paramiko.HostKeys.hash_host(name, salt) == h:
                    out.append(no)
                    break
            elif h == name:
                out.append(no)
                break
    return out


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """What to do with a key known_hosts does not hold: refuse, or (when the user said so)
    record it. Our own policy: paramiko's AutoAdd/Warning policies would accept anything."""

    def __init__(self, label: str, path: Path, trust_new: bool):
        self.label, self.path, self.trust_new = label, path, trust_new

    def missing_host_key(self, client, hostname, key):
        fp = fingerprint(key)
        if not self.trust_new:
            raise HostKeyRefused(
                f"{self.label} offers an unknown host key {key.get_name()} {fp} (not in {self.path}); verify it "
                f"against `ssh-keygen -lf /etc/ssh/ssh_host_{_short(key)}_key.pub` run on the host itself, then re-run "
                f"with --trust-new-host-keys to record it"
            )
        record_key(self.path, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def _short(key: paramiko.PKey) -> str:
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(key.get_name(), "ecdsa")


def record_key(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append `name type base64` to known_hosts (created 0600 in a 0700 dir). Appending, not
    rewriting, keeps the user's file as it was; a lock serializes hosts trusted in parallel."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    with _append_lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another kubeinit may be appending too
            have = path.read_text(errors="replace")
            if line in have.splitlines(keepends=True) or have.endswith(line.rstrip("\n")):
                return  # recorded meanwhile (the same host reached directly and as a bastion)
            if have and not have.endswith("\n"):
                os.write(fd, b"\n")
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def changed_key(label: str, known_hosts: Path, addr: str, port: int, key: paramiko.PKey) -> HostKeyRefused:
    name = key_name(addr, port)
    lines = known_lines(known_hosts, name)
    where = f"{known_hosts} line {', '.join(map(str, lines))}" if lines else str(known_hosts)
    return HostKeyRefused(
        f"the host key of {label} has CHANGED (it now offers {key.get_name()} {fingerprint(key)}, which does "
        f"not match {where}); this may be an attack, so kubeinit refuses even with --trust-new-host-keys: "
        f"if the host was reinstalled, verify the new key, run `ssh-keygen -R {shlex.quote(name)} -f "
        f"{known_hosts}` and re-run with --trust-new-host-keys"
    )
