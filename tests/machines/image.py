"""Base rootfs for the test machines: built once with debootstrap, cached by recipe.

The rootfs is the read-only lower layer of every machine's overlay root, so it holds only
what all machines share. Per-machine identity (SSH host keys, machine-id) is created by the
machine itself on first boot, because the image must not carry secrets or IDs that several
machines would then share.

    python tests/machines/image.py      # build (or find) the rootfs; prints its path

Environment: KUBEINIT_TEST_CACHE (default /var/cache/kubeinit-tests),
KUBEINIT_TEST_DEBIAN_MIRROR (default http://deb.debian.org/debian).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# What decides the rootfs's content - RECIPE below, the code of _configure(), the SSH public
# key, suite and mirror - is hashed into the rootfs's directory name: change any of it and the
# next call builds a new one.
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "iptables",
    "procps",
    "ca-certificates",
    "curl",
    "tar",
    "gzip",
    "sudo",
]
HOST_PACKAGES = {  # tool -> Debian package; installed on the host when missing
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "dpkg-scanpackages": "dpkg-dev",
}
TEST_USER = "kube"  # kubeinit supports a non-root user with passwordless sudo

# Remount the cgroup v1 controllers read-write: nspawn binds them read-only, and runc must
# mkdir its cgroups (machines.md, failure 3). Before sysinit so containerd never sees them ro.
CGROUP_RW_UNIT = """\
[Unit]
Description=Make cgroup mounts writable for runc (kubeinit test machine)
DefaultDependencies=no
Before=sysinit.target
ConditionVirtualization=systemd-nspawn

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mount -o remount,rw /sys/fs/cgroup; for m in $(findmnt -rn -t cgroup -o TARGET); do mount -o remount,bind,rw "$m"; done'

[Install]
WantedBy=sysinit.target
"""

# Egress guard: on the uplink only the test range (plus pod ranges a test adds) may pass;
# everything else is REJECTed so programs fail at once instead of waiting on a timeout, and
# IPv6 is dropped. Runs before the network is configured, so no packet ever escapes.
# /etc/kubeinit-test/egress.env (written per machine by machines.py) holds ALLOW="cidr ...";
# without it the guard allows nothing, i.e. it fails closed.
EGRESS_SCRIPT = """\
#!/bin/sh
set -eu
ALLOW=""
[ -r /etc/kubeinit-test/egress.env ] && . /etc/kubeinit-test/egress.env
for t in iptables ip6tables; do
  $t -w -N KI-EGRESS 2>/dev/null || $t -w -F KI-EGRESS
  for c in OUTPUT FORWARD; do
    $t -w -C $c -o host0 -j KI-EGRESS 2>/dev/null || $t -w -I $c 1 -o host0 -j KI-EGRESS
  done
done
for cidr in $ALLOW; do iptables -w -A KI-EGRESS -d "$cidr" -j RETURN; done
iptables -w -A KI-EGRESS -p tcp -j REJECT --reject-with tcp-reset
iptables -w -A KI-EGRESS -j REJECT --reject-with icmp-net-prohibited
ip6tables -w -A KI-EGRESS -j DROP
"""
EGRESS_UNIT = """\
[Unit]
Description=Reject traffic leaving the kubeinit test range
DefaultDependencies=no
Before=network-pre.target ssh.service
Wants=network-pre.target
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kubeinit-egress-guard

[Install]
WantedBy=sysinit.target
"""

# Host keys are removed from the image; generate them on first boot, per machine.
SSH_HOSTKEYS_DROPIN = """\
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""

# Pointing at loopback makes every DNS lookup fail locally and at once (nothing listens).
RESOLV_CONF = "nameserver 127.0.0.1\n"

RECIPE = {
    "version": 1,
    "packages": PACKAGES,
    "files": {  # path -> (mode, content)
        "etc/systemd/system/kubeinit-cgroup-rw.service": (0o644, CGROUP_RW_UNIT),
        "etc/systemd/system/kubeinit-egress.service": (0o644, EGRESS_UNIT),
        "usr/local/sbin/kubeinit-egress-guard": (0o755, EGRESS_SCRIPT),
        "etc/systemd/system/ssh.service.d/10-hostkeys.conf": (0o644, SSH_HOSTKEYS_DROPIN),
        "etc/sudoers.d/kube": (0o440, f"{TEST_USER} ALL=(ALL) NOPASSWD:ALL\n"),
        "etc/apt/sources.list": (0o644, "# no sources: test machines never reach a Debian mirror\n"),
        "etc/resolv.conf": (0o644, RESOLV_CONF),
    },
    "enable": ["systemd-networkd.service", "ssh.service", "kubeinit-cgroup-rw.service", "kubeinit-egress.service"],
    # Timers that would wake up to reach the Internet, and gettys nobody uses.
    "mask": [
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "console-getty.service",
        "getty@.service",
        "e2scrub_all.timer",
        "fstrim.timer",
    ],
}


def cache_dir() -> Path:
    d = Path(os.environ.get("KUBEINIT_TEST_CACHE", "/var/cache/kubeinit-tests"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    print(f"[kubeinit-tests] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


@contextlib.contextmanager
def locked(path: Path):
    """Serialise builds across processes (two pytest sessions may start at once)."""
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_host_packages() -> None:
    """A fresh CI machine lacks nspawn/debootstrap/dpkg-dev: apt-install them (as root)."""
    missing = sorted({pkg for tool, pkg in HOST_PACKAGES.items() if not shutil.which(tool)})
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env).returncode != 0:  # stale or missing lists
        run(["apt-get", "update"], env=env)
        run(install, env=env)


def ssh_key(cache: Path | None = None) -> Path:
    """The test SSH key (ed25519, no passphrase), made once per cache with `cryptography`
    (a paramiko dependency, so always present where the tests run)."""
    cache = cache or cache_dir()
    key = cache / "id_ed25519"
    if key.exists():
        return key
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    tmp = key.with_suffix(".tmp")
    tmp.write_bytes(priv.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()))
    tmp.chmod(0o600)
    pub = priv.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    key.with_suffix(".pub").write_bytes(pub + b" kubeinit-tests\n")
    tmp.rename(key)
    return key


def host_codename() -> str:
    """Build the machines from the host's own release, so the .debs in the artifact mirror
    (taken from the host's apt) link against the same libraries as the rootfs."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return "bookworm"


def recipe_key(pubkey: str, suite: str, mirror: str) -> str:
    blob = json.dumps([RECIPE, inspect.getsource(_configure), pubkey, suite, mirror], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _configure(root: Path, pubkey: str) -> None:
    for rel, (mode, content) in RECIPE["files"].items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            p.unlink()
        p.write_text(content)
        p.chmod(mode)
    # The test user, with the same authorized key as root.
    run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", TEST_USER])
    for home, owner in (("root", "0:0"), (f"home/{TEST_USER}", f"{TEST_USER}:{TEST_USER}")):
        ssh = root / home / ".ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text(pubkey)
        (ssh / "authorized_keys").chmod(0o600)
        run(["chroot", str(root), "chown", "-R", owner, f"/{home}/.ssh"])
    run(["systemctl", f"--root={root}", "enable", *RECIPE["enable"]], stderr=subprocess.DEVNULL)
    run(["systemctl", f"--root={root}", "mask", *RECIPE["mask"]], stderr=subprocess.DEVNULL)
    # Identity is made by each machine at first boot: sshd's drop-in runs ssh-keygen -A, and
    # an empty machine-id makes systemd generate and commit one.
    for k in (root / "etc/ssh").glob("ssh_host_*"):
        k.unlink()
    (root / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    (root / "etc/hostname").write_text("kubeinit-base\n")
    # Drop what only the build needed (apt lists, .debs): about 100 MB.
    for d in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()


def build_rootfs(cache: Path | None = None) -> Path:
    """Return the cached rootfs directory, building it (about a minute) if the recipe changed."""
    cache = cache or cache_dir()
    pubkey = ssh_key(cache).with_suffix(".pub").read_text()
    suite = host_codename()
    mirror = os.environ.get("KUBEINIT_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    final = cache / f"rootfs-{recipe_key(pubkey, suite, mirror)}"
    if final.is_dir():
        return final
    ensure_host_packages()
    with locked(cache / ".rootfs.lock"):
        if final.is_dir():  # another process built it while we waited
            return final
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        (cache / "debcache").mkdir(exist_ok=True)
        t0 = time.monotonic()
        log(f"debootstrap {suite} -> {final} (about a minute)")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--cache-dir={cache / 'debcache'}",
                f"--include={','.join(PACKAGES)}",
                suite,
                str(tmp),
                mirror,
            ],
            stdout=subprocess.DEVNULL,
        )
        _configure(tmp, pubkey)
        tmp.chmod(0o755)
        tmp.rename(final)  # atomic: a rootfs dir that exists is complete
        log(f"rootfs built in {time.monotonic() - t0:.1f}s")
        _prune_old_rootfs(cache, keep=final)
    return final


def _prune_old_rootfs(cache: Path, keep: Path) -> None:
    """Delete rootfs builds of older recipes unless an overlay still uses them."""
    mounts = Path("/proc/self/mountinfo").read_text()
    for old in cache.glob("rootfs-*"):
        if old != keep and old.is_dir() and str(old) not in mounts:
            shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    t0 = time.monotonic()
    print(build_rootfs())
    log(f"done in {time.monotonic() - t0:.2f}s")
