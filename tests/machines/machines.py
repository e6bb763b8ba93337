"""Real Debian test machines: systemd-nspawn containers booting systemd, on a private bridge.

See /work/shared/machines.md for the measured recipe and the traps this code works around.
Each machine has its own overlay root over the cached rootfs (image.py), its own cgroups under
ours, its own IP on the bridge, sshd with per-machine host keys, and an egress guard that
rejects everything outside the test range. The machines run detached from the Python process
(a small shell supervisor per machine restarts nspawn when the guest reboots), so the CLI can
return after `up`; all state lives under <cache>/run/<bridge>/ so `down` - or the next `up`,
after a crash - can find and remove every process, mount, cgroup and link.

    python tests/machines/machines.py up 3      # kim1..kim3 at 10.77.0.11..13
    python tests/machines/machines.py ssh 1 'systemctl is-system-running'
    python tests/machines/machines.py status
    python tests/machines/machines.py down
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import importlib.util
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image import build_rootfs, cache_dir, ensure_host_packages, locked, log, ssh_key  # noqa: E402

DEFAULT_BRIDGE = "kib0"
DEFAULT_CIDR = "10.77.0.0/24"
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0  # guest shutdown waits 90 s on containers ignoring SIGTERM; we don't

# Per-machine supervisor, started in a new session so it outlives the CLI and ignores its ^C.
# It is also the "tiny exec helper" for cgroups: it writes its own PID into the machine's
# cgroup in every hierarchy *before* starting nspawn (no preexec_fn in a threaded Python).
# nspawn --keep-unit then makes payload/ and supervisor/ inside that cgroup, so every
# machine gets its own cgroup root (machines.md, failure 1). Exit status 133 means the guest
# rebooted, which ends nspawn: start it again (failure 5).
SUPERVISOR = r"""
pidfile=$1; shift
while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; done; shift
while :; do
  "$@" & echo $! > "$pidfile"; wait $!; rc=$?
  [ $rc -eq 133 ] || break
done
rm -f "$pidfile"; exit $rc
"""

# Before a stop, end containers: a container whose PID 1 ignores SIGTERM would hold the guest's
# shutdown for 90 s (machines.md, "Stopping machines that run containers"). Best effort.
DRAIN = r"""
systemctl stop kubelet 2>/dev/null
command -v crictl >/dev/null && timeout 10 crictl rmp -fa >/dev/null 2>&1
if command -v ctr >/dev/null && [ -S /run/containerd/containerd.sock ]; then
  for ns in $(timeout 5 ctr ns ls -q); do
    for t in $(timeout 5 ctr -n "$ns" tasks ls -q); do timeout 5 ctr -n "$ns" tasks kill -s SIGKILL "$t"; done
  done
fi
true
"""


# What a kubelet needs that a machine lacks and a VM has (machines.md, "Running a real kubelet in
# a machine"): /dev/kmsg, and the kernel tunables it checks, which are read-only and host-wide here.
# Each tunable is shadowed inside this machine only (a file under /run bind-mounted over it,
# holding the value the kubelet wants), before the kubelet starts. The harness stands in for a
# VM this way; kubeinit itself has no test-only branch. Per machine: up(..., kubelet_host=True).
KUBELET_HOST_SCRIPT = """#!/bin/sh
set -eu
[ -e /dev/kmsg ] || ln -s /dev/console /dev/kmsg
d=/run/kubeinit-test/sysctl; mkdir -p $d
for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
  k=${kv%=*}; f=$d/$(echo "$k" | tr / .)
  echo "${kv#*=}" > "$f"
  grep -q " /proc/sys/$k " /proc/self/mountinfo || mount --bind "$f" "/proc/sys/$k"
done
"""
KUBELET_HOST_UNIT = """[Unit]
Description=Give the kubelet /dev/kmsg and its kernel tunables (kubeinit test machine standing in for a VM)
DefaultDependencies=no
After=local-fs.target systemd-tmpfiles-setup-dev.service
Before=sysinit.target kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kubeinit-kubelet-host

[Install]
WantedBy=sysinit.target
"""


class SSHCommandError(RuntimeError):
    pass


class NetworkInUse(RuntimeError):
    pass


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


# ---------------------------------------------------------------- cgroups (v1 hybrid or v2)


def _cgroup_mounts() -> dict[str, str]:
    """Hierarchy key ('' for cgroup2, 'cpu', 'name=systemd', ...) -> mount point."""
    mounts = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        fstype, _src, opts = right.split()[:3]
        if fstype == "cgroup2":
            mounts.setdefault("", left.split()[4])
        elif fstype == "cgroup":
            keys = [
                o
                for o in opts.split(",")
                if o not in ("rw", "ro")
                and (o.startswith("name=") or "=" not in o)
                and o not in ("xattr", "noprefix", "clone_children", "cpuset_v2_mode")
            ]
            mounts.setdefault(",".join(sorted(keys)), left.split()[4])
    return mounts


def cgroup_dirs(name: str) -> list[Path]:
    """The machine's cgroup in every hierarchy, under this process's own cgroup, so a machine
    is charged to (and limited by) whoever started the tests. /proc/self/cgroup is read once:
    reading it while moving produced doubled paths in the recipe's first attempt."""
    mounts, dirs = _cgroup_mounts(), []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        mnt = mounts.get(",".join(sorted(ctrls.split(","))) if ctrls else "")
        if mnt:
            dirs.append(Path(mnt + path.rstrip("/")) / "kubeinit-tests" / name)
    return dirs


def _make_cgroup(d: Path) -> None:
    missing = [p for p in [d, *d.parents] if not p.exists()][::-1]
    for p in missing:
        p.mkdir()
        for f in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset children start empty
            if (p / f).exists() and not (p / f).read_text().strip():
                (p / f).write_text((p.parent / f).read_text())


def _tree_pids(dirs: list[Path]) -> set[int]:
    pids = set()
    for d in dirs:
        # os.walk, not rglob: systemd inside removes sub-cgroups while we walk,
        # and os.walk skips a directory that vanished instead of raising.
        for sub, _, files in os.walk(d):
            if "cgroup.procs" not in files:
                continue
            try:
                pids.update(int(p) for p in (Path(sub) / "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def _kill_tree(dirs: list[Path], timeout: float = 10.0) -> None:
    """SIGKILL every process in the cgroup trees until they are empty."""
    deadline = time.monotonic() + timeout
    while pids := _tree_pids(dirs):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes survive SIGKILL in {dirs[0]}: {sorted(pids)}")
        time.sleep(0.05)


def _remove_cgroups(dirs: list[Path]) -> None:
    for d in dirs:
        if d.is_dir():
            for sub, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):  # deepest first
                for attempt in range(50):  # EBUSY for a moment after the last exit
                    try:
                        os.rmdir(sub)
                        break
                    except FileNotFoundError:  # systemd removed it first
                        break
                    except OSError:
                        if attempt == 49:
                            raise
                        time.sleep(0.02)
        try:
            d.parent.rmdir()  # kubeinit-tests/, when this was the last machine
        except OSError:
            pass


# ---------------------------------------------------------------- network


class Network:
    """The private bridge (default kib0, 10.77.0.1/24), the name prefix of its machines
    (kim: kim1, kim2, ...; nspawn names host veths vb-<machine>, so names must be unique on
    the host) and the state dir of its machines.

    state/owner says who holds the network: the PID of a pytest session, or "cli" for
    machines the CLI left running on purpose. A dead PID marks leftovers of a crashed run."""

    def __init__(
        self, bridge: str = DEFAULT_BRIDGE, cidr: str = DEFAULT_CIDR, cache: Path | None = None, prefix: str = "kim"
    ):
        self.bridge, self.prefix = bridge, prefix
        self.net = ipaddress.ip_network(cidr)
        self.gateway = str(self.net[1])
        self.state = (cache or cache_dir()) / "run" / bridge

    def ip(self, i: int) -> str:
        """Address of machine i (1-based): .11, .12, ..."""
        return str(self.net[10 + i])

    def exists(self) -> bool:
        return Path(f"/sys/class/net/{self.bridge}").exists()

    def holder(self) -> str | None:
        """Who holds this network now ("cli" or a live PID), None if nobody does."""
        try:
            owner = (self.state / "owner").read_text().strip()
        except OSError:
            return None
        if owner == "cli" or (owner.isdigit() and b"python" in _cmdline(int(owner))):
            return owner
        return None

    def create(self, owner: str | None = None) -> None:
        """Create the bridge after removing what an earlier, dead run left behind. Raises
        NetworkInUse when a live session holds it (or the CLI does, unless owner="cli")."""
        owner = owner or str(os.getpid())
        self.state.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.state.parent / ".lock"):  # two sessions starting at once
            holder = self.holder()
            if holder and holder != owner:
                raise NetworkInUse(
                    f"{self.bridge} is held by {holder}; run `machines.py "
                    f"--bridge {self.bridge} down` or use another bridge"
                )
            if self.state.exists() or self.exists():
                log(f"removing leftovers of an earlier run on {self.bridge}")
                self.destroy()
            self.state.mkdir(parents=True)
            (self.state / "owner").write_text(owner)
            self._add_bridge()

    def _add_bridge(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        # No IPv6 on the bridge: the machines drop it anyway, and this silences RS/MLD noise.
        v6 = Path(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6")
        if v6.exists():
            v6.write_text("1")
        sh("ip", "addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
            log("warning: host ip_forward=1; only the machines' egress guards keep packets in")

    def destroy(self) -> None:
        """Stop every machine recorded in the state dir, then remove the bridge and state."""
        machines = [Machine.load(p) for p in sorted(self.state.glob("*/machine.json"))]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(machines))) as pool:
            list(pool.map(lambda m: m.destroy(), machines))
        for merged in self.state.glob("*/merged"):  # never rmtree through a live overlay
            if os.path.ismount(merged):
                sh("umount", str(merged))
        if self.exists():
            sh("ip", "link", "del", self.bridge)
        shutil.rmtree(self.state, ignore_errors=True)
        for d in ("locks", "propagate", "unix-export", ""):  # nspawn's dirs, once empty
            try:
                (Path("/run/systemd/nspawn") / d).rmdir()
            except OSError:
                pass


def free_network(cache: Path | None = None) -> Network:
    """Create the first network nobody holds: kib0/10.77.0.0/24/kim, else kib1/10.77.1.0/24
    with machines k1m1.., and so on; several engineers may run the suite at once. Leftovers
    of dead runs on any of them are removed on the way."""
    chosen = None
    for k in range(10):
        net = Network(f"kib{k}", f"10.77.{k}.0/24", cache, "kim" if k == 0 else f"k{k}m")
        if chosen is None:
            try:
                net.create()
                chosen = net
            except NetworkInUse:
                pass
        elif net.state.exists() or net.exists():
            with locked(net.state.parent / ".lock"):
                if not net.holder():
                    net.destroy()
    if chosen is None:
        raise NetworkInUse("kib0..kib9 are all held by live runs")
    return chosen


# ---------------------------------------------------------------- machines


class Machine:
    """One machine: a name, an IP on the bridge, an overlay root and a supervisor process.

    The overlay's upper dir survives stop()/start(), so a restarted machine keeps its host
    keys, machine-id and installed software, as a rebooted host would."""

    def __init__(
        self,
        name: str,
        ip: str,
        ssh_port: int = 22,
        *,
        network: Network | None = None,
        rootfs: Path | None = None,
        hosts: dict[str, str] | None = None,
        allow: tuple[str, ...] = (),
        key: Path | None = None,
        kubelet_host: bool = False,
        binds: tuple[str, ...] = (),
    ):
        self.name, self.ip, self.ssh_port = name, ip, ssh_port
        self.kubelet_host = kubelet_host
        self.binds = binds  # host directories seen read-only at the same path inside
        self.network = network or Network()
        self.rootfs = rootfs
        self.hosts = hosts or {name: ip}
        self.allow = (str(self.network.net), *allow)  # egress: test range + e.g. pod ranges
        self.key = key or ssh_key()
        self.dir = self.network.state / name
        self.merged = self.dir / "merged"
        self.cgroups: list[Path] = []
        self._clients: dict[str, object] = {}
        self._sup: int | None = None  # supervisor pid when this process started it

    def __repr__(self) -> str:
        return f"Machine({self.name!r}, {self.ip!r})"

    # -- state on disk, so another process (CLI `down`, the next `up`) can act on it
    def _save(self) -> None:
        (self.dir / "machine.json").write_text(
            json.dumps(
                {
                    "name": self.name,
                    "ip": self.ip,
                    "ssh_port": self.ssh_port,
                    "bridge": self.network.bridge,
                    "cidr": str(self.network.net),
                    "rootfs": str(self.rootfs),
                    "hosts": self.hosts,
                    "allow": self.allow,
                    "cgroups": [str(d) for d in self.cgroups],
                    "key": str(self.key),
                    "binds": list(self.binds),
                }
            )
        )

    @classmethod
    def load(cls, path: Path) -> Machine:
        d = json.loads(path.read_text())
        net = Network(d["bridge"], d["cidr"], path.parent.parent.parent.parent)
        m = cls(
            d["name"],
            d["ip"],
            d["ssh_port"],
            network=net,
            rootfs=Path(d["rootfs"]),
            hosts=d["hosts"],
            allow=tuple(d["allow"][1:]),
            key=Path(d["key"]),
            binds=tuple(d.get("binds", ())),
        )
        m.cgroups = [Path(c) for c in d["cgroups"]]
        return m

    # -- lifecycle
    def create(self) -> None:
        """Fresh overlay root with this machine's network, hostname and guard config."""
        for sub in ("upper", "work", "merged", "containerd"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._save()  # before mounting: a crash from here on leaves a state others can undo
        self._mount()
        m = self.merged
        (m / "etc/hostname").write_text(self.name + "\n")
        (m / "etc/hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {n}\n" for n, ip in self.hosts.items()))
        (m / "etc/systemd/network/10-host0.network").write_text(
            "[Match]\nName=host0\n[Network]\n"
            f"Address={self.ip}/{self.network.net.prefixlen}\nGateway={self.network.gateway}\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        )
        (m / "etc/kubeinit-test").mkdir(exist_ok=True)
        (m / "etc/kubeinit-test/egress.env").write_text(f'ALLOW="{" ".join(self.allow)}"\n')
        if self.ssh_port != 22:
            (m / "etc/ssh/sshd_config.d/port.conf").write_text(f"Port {self.ssh_port}\n")
        if self.kubelet_host:
            script = m / "usr/local/sbin/kubeinit-kubelet-host"
            script.write_text(KUBELET_HOST_SCRIPT)
            script.chmod(0o755)
            (m / "etc/systemd/system/kubeinit-kubelet-host.service").write_text(KUBELET_HOST_UNIT)
            wants = m / "etc/systemd/system/sysinit.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            (wants / "kubeinit-kubelet-host.service").symlink_to("../kubeinit-kubelet-host.service")

    def _mount(self) -> None:
        if not os.path.ismount(self.merged):
            sh(
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={self.rootfs},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}",
                str(self.merged),
            )

    def _pid(self, which: str) -> int | None:
        if which == "supervisor":
            _reap(self._sup)  # our exited child would otherwise look alive (a zombie)
        try:
            pid = int((self.dir / f"{which}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def is_running(self) -> bool:
        return self._pid("supervisor") is not None

    def start(self, wait: bool = True) -> None:
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running")
        self._mount()
        self.cgroups = cgroup_dirs(self.name)
        for d in self.cgroups:
            _make_cgroup(d)
        self._save()
        nspawn = [
            "systemd-nspawn",
            "--boot",
            "--quiet",
            # no systemd/machined on the host: don't register, create cgroups where we are
            "--register=no",
            "--keep-unit",
            f"--machine={self.name}",
            f"--directory={self.merged}",
            f"--network-bridge={self.network.bridge}",
            "--console=read-only",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",  # keep the image's resolv.conf (127.0.0.1)
            "--system-call-filter=@keyring",  # runc needs keyctl (failure 2)
            # containerd's overlayfs snapshotter fails on an overlay root (failure 4)
            f"--bind={self.dir / 'containerd'}:/var/lib/containerd",
            *(f"--bind-ro={b}" for b in self.binds),
        ]
        with open(self.dir / "console.log", "ab") as console:
            p = subprocess.Popen(
                ["sh", "-c", SUPERVISOR, "sh", str(self.dir / "nspawn.pid"), *map(str, self.cgroups), "--", *nspawn],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.dir / "supervisor.pid").write_text(str(p.pid))
        self._sup = p.pid
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait for SSH, then for `systemctl is-system-running --wait`: running or degraded."""
        import paramiko

        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise RuntimeError(f"{self.name} exited during boot:\n{self.console_tail()}")
            try:
                if self.host_key():  # written by ssh-keygen -A just before sshd starts
                    with socket.create_connection((self.ip, self.ssh_port), timeout=1):
                        pass
                    state = self.ssh(
                        "systemctl is-system-running --wait", check=False, timeout=max(1.0, deadline - time.monotonic())
                    ).out.strip()
                    if state:  # no answer at all (seen once on a loaded box, boot going on): ask again
                        break
            except (OSError, EOFError, paramiko.SSHException):
                pass  # sshd not listening, or not yet answering
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no sshd after {timeout}s\n{self.console_tail()}")
            time.sleep(0.1)
        if state not in ("running", "degraded"):
            raise RuntimeError(f"{self.name} is {state!r}:\n{self.console_tail()}")
        return state

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the machine down the way a host goes down: drain containers, SIGTERM nspawn
        (clean poweroff); after `timeout`, SIGKILL everything left in its cgroups."""
        self._close_clients()
        sup = self._pid("supervisor")
        if sup:
            try:
                self.ssh(DRAIN, timeout=15, check=False)
            except Exception:  # not reachable: nothing to drain over SSH
                pass
            self._close_clients()
            nspawn = self._pid("nspawn")
            if nspawn:
                os.kill(nspawn, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while Path(f"/proc/{sup}").exists() and time.monotonic() < deadline:
                _reap(sup)
                time.sleep(0.05)
        # Kill stragglers (also after a clean stop: payload processes can outlive nspawn).
        _kill_tree(self.cgroups)
        _reap(sup)
        if os.path.ismount(self.merged):  # a killed nspawn leaves its image lock behind
            st = os.stat(self.merged)
            Path(f"/run/systemd/nspawn/locks/inode-{st.st_dev}:{st.st_ino}").unlink(missing_ok=True)
        _remove_cgroups(self.cgroups)
        for f in ("supervisor.pid", "nspawn.pid"):
            (self.dir / f).unlink(missing_ok=True)
        # nspawn deletes the veth with the netns; a killed payload can keep it, so make sure.
        veth = f"vb-{self.name}"[:15]
        if Path(f"/sys/class/net/{veth}").exists():
            sh("ip", "link", "del", veth, check=False)

    def destroy(self) -> None:
        """stop(), unmount the root and delete the machine's state (upper dir included)."""
        self.stop()
        if os.path.ismount(self.merged):
            sh("umount", str(self.merged))
        for d in ("propagate", "unix-export"):  # nspawn's host-side per-machine dirs
            p = Path("/run/systemd/nspawn") / d / self.name
            if os.path.ismount(p):
                sh("umount", "-l", str(p), check=False)
            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def console_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "console.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- SSH
    def host_key(self) -> str:
        """'ssh-ed25519 AAAA…' made by the machine at first boot, read off its disk: the
        tests know the key without trusting the network (no AutoAddPolicy)."""
        p = self.merged / "etc/ssh/ssh_host_ed25519_key.pub"
        return " ".join(p.read_text().split()[:2]) if p.exists() else ""

    def known_hosts_line(self) -> str:
        host = self.ip if self.ssh_port == 22 else f"[{self.ip}]:{self.ssh_port}"
        return f"{host} {self.host_key()}"

    def _client(self, user: str):
        import paramiko  # only the SSH helpers need it; image/mirror stay stdlib

        c = self._clients.get(user)
        if c is not None and c.get_transport() and c.get_transport().is_active():
            return c
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.RejectPolicy())
        ktype, b64 = self.host_key().split()
        host = self.ip if self.ssh_port == 22 else f"[{self.ip}]:{self.ssh_port}"
        c.get_host_keys().add(host, ktype, paramiko.PKey.from_type_string(ktype, base64.b64decode(b64)))
        c.connect(
            self.ip,
            self.ssh_port,
            username=user,
            key_filename=str(self.key),
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
            banner_timeout=10,
            auth_timeout=10,
        )
        self._clients[user] = c
        return c

    def _close_clients(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def ssh(self, cmd: str, user: str = "root", check: bool = True, timeout: float = 120.0) -> Result:
        """Run `cmd` with the user's shell (bash -c); return Result(rc, out, err).
        check=True raises SSHCommandError on a non-zero exit."""
        chan = self._client(user).get_transport().open_session()
        try:
            chan.exec_command(cmd)
            out, err, deadline = [], [], time.monotonic() + timeout
            # sshd may send the exit status before the last output: done only at end of output too
            while not (
                chan.exit_status_ready()
                and (chan.eof_received or chan.closed)
                and not chan.recv_ready()
                and not chan.recv_stderr_ready()
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: {cmd!r} still running after {timeout}s")
                select.select([chan], [], [], 0.2)
                while chan.recv_ready():
                    out.append(chan.recv(65536))
                while chan.recv_stderr_ready():
                    err.append(chan.recv_stderr(65536))
            r = Result(
                chan.recv_exit_status(), b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")
            )
        finally:
            chan.close()
        if check and not r.ok:
            raise SSHCommandError(f"{self.name}: {cmd!r} exited {r.rc}: {r.err.strip()}")
        return r

    def put(self, local: Path | str, remote: str, mode: int = 0o644) -> None:
        sftp = self._client("root").open_sftp()
        try:
            sftp.put(str(local), remote)
            sftp.chmod(remote, mode)
        finally:
            sftp.close()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _reap(pid: int | None) -> None:
    """Collect our own exited child (the supervisor) so it doesn't linger as a zombie."""
    if pid:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def up(
    n: int,
    network: Network | None = None,
    rootfs: Path | None = None,
    prefix: str | None = None,
    allow: tuple[str, ...] = (),
    first: int = 1,
    kubelet_host: bool = False,
    binds: tuple[str, ...] = (),
) -> list[Machine]:
    """Start n fresh machines <prefix><first>.. (default network.prefix: kim1, kim2, ...) at
    network.ip(first).. (10.77.0.11, ...) on `network` (created if absent), in parallel.
    `allow`: extra CIDRs (e.g. pod ranges) the egress guard lets through. `kubelet_host`: give them
    what a real kubelet needs (KUBELET_HOST_SCRIPT). `binds`: host directories each machine sees
    read-only at the same path (e.g. this checkout and its Python, to run kubeinit inside).
    On any failure, everything started is torn down again before the error propagates."""
    network = network or Network()
    rootfs = rootfs or build_rootfs()
    prefix = prefix or network.prefix
    if not network.exists():
        network.create()
    names = {f"{prefix}{i}": network.ip(i) for i in range(first, first + n)}
    ms = [
        Machine(
            name, ip, network=network, rootfs=rootfs, hosts=names, allow=allow, kubelet_host=kubelet_host, binds=binds
        )
        for name, ip in names.items()
    ]
    try:
        for m in ms:
            if (m.dir / "machine.json").exists():  # same name left over: start from scratch
                Machine.load(m.dir / "machine.json").destroy()
            m.create()
            m.start(wait=False)
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda m: m.wait_ready(), ms))
    except BaseException:
        for m in ms:
            m.destroy()
        raise
    (network.state / "known_hosts").write_text(  # all machines on the bridge, for OpenSSH
        "".join(m.known_hosts_line() + "\n" for m in loaded(network))
    )
    return ms


def down(network: Network | None = None) -> None:
    (network or Network()).destroy()


def loaded(network: Network) -> list[Machine]:
    ms = [Machine.load(p) for p in network.state.glob("*/machine.json")]
    return sorted(ms, key=lambda m: ipaddress.ip_address(m.ip))


def preflight() -> str | None:
    """Why machines cannot run here (None if they can): the reason pytest skips with."""
    if os.geteuid() != 0:
        return "machine tests need root (bridge, overlay mounts, systemd-nspawn)"
    try:
        ensure_host_packages()
    except Exception as e:  # noqa: BLE001 - any failure means "cannot run here"
        return f"cannot install systemd-container/debootstrap/dpkg-dev: {e}"
    r = subprocess.run(["systemd-nspawn", "--version"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"systemd-nspawn does not run: {r.stderr.strip()}"
    if not Path("/sys/fs/cgroup").is_dir() or not _cgroup_mounts():
        return "no cgroup hierarchy mounted at /sys/fs/cgroup"
    r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"], capture_output=True, text=True)
    if r.returncode != 0:  # e.g. an unprivileged container: nspawn could not boot either
        return f"cannot create namespaces for systemd-nspawn: {r.stderr.strip()}"
    if importlib.util.find_spec("paramiko") is None:
        return "paramiko is not installed"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridge", default=DEFAULT_BRIDGE)
    ap.add_argument("--cidr", default=DEFAULT_CIDR)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up").add_argument("n", type=int, nargs="?", default=3)
    sub.add_parser("down")
    sub.add_parser("status")
    p = sub.add_parser("ssh")
    p.add_argument("i", type=int)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    net = Network(a.bridge, a.cidr)
    t0 = time.monotonic()
    if a.cmd == "up":
        if why := preflight():
            sys.exit(why)
        try:
            net.create(owner="cli")  # replaces machines an earlier `up` left running
        except NetworkInUse as e:
            sys.exit(str(e))
        ms = up(a.n, net)
        for m in ms:
            print(f"{m.name} {m.ip}")
        log(
            f"{len(ms)} machines up in {time.monotonic() - t0:.1f}s; ssh -i {ms[0].key} "
            f"-o UserKnownHostsFile={net.state / 'known_hosts'} root@{ms[0].ip}"
        )
    elif a.cmd == "down":
        if (holder := net.holder()) and holder != "cli":
            sys.exit(f"{net.bridge} is held by the live run {holder}; it will tear it down")
        down(net)
        log(f"down in {time.monotonic() - t0:.1f}s")
    elif a.cmd == "status":
        for m in loaded(net):
            mem = next((d / "memory.usage_in_bytes" for d in m.cgroups if (d / "memory.usage_in_bytes").exists()), None)
            rss = f"{int(mem.read_text()) >> 20} MiB" if mem else "-"
            print(f"{m.name} {m.ip} {'running' if m.is_running() else 'stopped'} mem={rss}")
    elif a.cmd == "ssh":
        m = next((m for m in loaded(net) if m.ip == net.ip(a.i)), None)
        if m is None:
            sys.exit(f"no machine {a.i}")
        r = m.ssh(" ".join(a.command), check=False)
        sys.stdout.write(r.out)
        sys.stderr.write(r.err)
        return r.rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
