"""Steps: what a phase asks the executor to do. Phases only yield these.

A step's `describe()` is what --dry-run prints and what the live view shows;
secret contents are `Secret`s and print as <secret>.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeinit.redact import Secret, reveal


@dataclass(frozen=True)
class Run:
    """Run a command on the host (as root: through sudo -n when the user is not root)."""

    argv: tuple[str, ...]
    check: bool = True
    stdin: bytes | Secret | None = None
    timeout: float = 600
    note: str = ""  # a short human label for the live view

    @classmethod
    def sh(cls, script: str, **kw) -> Run:
        return cls(("sh", "-c", script), **kw)

    def command(self) -> str:
        return shlex.join(self.argv)

    def describe(self) -> str:
        label = f"  # {self.note}" if self.note else ""
        return f"run {self.command()}{label}"


@dataclass(frozen=True)
class Upload:
    """Write a file atomically with a mode (the executor skips it when unchanged)."""

    path: str
    content: bytes | Secret
    mode: int = 0o644
    note: str = ""

    @property
    def data(self) -> bytes:
        v = reveal(self.content)
        return v.encode() if isinstance(v, str) else v

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> str:
        what = "<secret>" if isinstance(self.content, Secret) else f"{len(self.data)} bytes sha256:{self.sha256[:12]}"
        label = f"  # {self.note}" if self.note else ""
        return f"upload {self.path} (mode {self.mode:04o}, {what}){label}"


@dataclass(frozen=True)
class Transfer:
    """Copy a local file (a verified artifact from the cache) to the host."""

    local_path: str
    path: str
    sha256: str
    mode: int = 0o644
    note: str = ""

    def describe(self) -> str:
        label = f"  # {self.note}" if self.note else ""
        return f"transfer {self.local_path} -> {self.path} (mode {self.mode:04o}, sha256:{self.sha256[:12]}){label}"


@dataclass(frozen=True)
class Local:
    """Work done where kubeinit runs (download and verify an artifact into the cache)."""

    action: Callable[[], object] = field(compare=False)  # what it returns is not used
    text: str = ""

    def describe(self) -> str:
        return f"local {self.text}"


# upgrade's verbs on a Node (kube/drain.py), as describe() says them
NODE_VERBS = {
    "drain": "cordon and drain node {}",
    "wait-node": "wait for node {} to be back",
    "uncordon": "uncordon node {}",
}


@dataclass(frozen=True)
class ApiCall:
    """A request to the cluster's API server as its admin; the executor reaches the server
    through the target's connection (its 127.0.0.1:<bind port>). verb "apply": make the object
    `body` (under the collection `path`) exist as given: created, or replaced when it differs;
    "wait": GET `path` until it answers "ok", for up to `timeout` seconds (/readyz); "mark":
    add body's labels and taints to the Node at `path` once it registers (up to `timeout`). `body` is
    never printed: it may hold a token. `watch`: a systemd unit the waiting depends on (the
    kubelet); if it exits or restarts meanwhile, the wait stops at once with its error line.
    "ensure-admins": make admin.conf a cluster admin (kube/admins.py: the binding `body`, made
    `via` super-admin.conf when admin.conf is refused), waiting up to `timeout` until it is.
    "apply-owned": apply `body` (its data replaced whole) owned by the object at `via`, whose uid is read
    when it runs (kube/objects.py: kubeadm-certs and its bootstrap token).
    "tls-bootstrap": wait until the joining host's kubelet wrote `path` (kubelet.conf) and, with those
    credentials, its Node body["node"] exists (kube/tlsbootstrap.py).
    "drain", "wait-node", "uncordon": the Node at `path` in an upgrade (kube/drain.py).
    `through`: the host whose API connection (its admin.conf) carries the call, when the step's own
    host has none (a worker's drain goes through the first control plane); empty: the step's host."""

    verb: str
    path: str
    body: dict | None = field(default=None, compare=False, hash=False)
    note: str = ""
    timeout: float = 0
    watch: str = ""
    via: str = ""
    through: str = ""

    def describe(self) -> str:
        if self.verb == "wait":
            what = f"wait for {self.path}"
        elif self.verb == "ensure-admins":
            meta = (self.body or {}).get("metadata", {})
            what = f"ensure {(self.body or {}).get('kind')} {meta.get('name')} (with {self.via})"
        elif self.verb == "mark":
            what = f"label and taint {self.path}"
        elif self.verb == "tls-bootstrap":
            what = f"wait for the kubelet to write {self.path} and register node {(self.body or {}).get('node')}"
        elif self.verb in NODE_VERBS:
            what = NODE_VERBS[self.verb].format(self.path.rsplit("/", 1)[-1])
        else:
            meta = (self.body or {}).get("metadata", {})
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            what = f"apply {(self.body or {}).get('kind')} {where}{meta.get('name')}"
        through = f" (through {self.through})" if self.through else ""
        return f"api {what}{through}" + (f"  # {self.note}" if self.note else "")


@dataclass(frozen=True)
class Skip:
    """Nothing to do: the host already matches."""

    reason: str

    def describe(self) -> str:
        return f"skip: {self.reason}"


@dataclass(frozen=True)
class Check:
    """The outcome of a read-only check (preflight). A failed fatal check stops
    the run in the executor, after every check of the phase has been shown."""

    name: str
    passed: bool
    message: str = ""
    fatal: bool = True

    def describe(self) -> str:
        if self.passed:
            return f"check {self.name}: ok" + (f" ({self.message})" if self.message else "")
        level = "ERROR" if self.fatal else "WARNING"
        return f"check {self.name}: [{level}] {self.message}"


@dataclass(frozen=True)
class Notice:
    """Something the user should read (printed once, never a secret)."""

    text: str

    def describe(self) -> str:
        return f"note: {self.text}"


Step = Run | Upload | Transfer | Local | ApiCall | Skip | Check | Notice


def is_change(step: Step) -> bool:
    return not isinstance(step, (Skip, Check, Notice)) and not (
        isinstance(step, ApiCall) and step.verb in ("wait", "wait-node")
    )
