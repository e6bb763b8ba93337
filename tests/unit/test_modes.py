"""Modes do not depend on the umask: started with `umask 000`, every directory and file kubeinit
makes has the mode the README states (kubeadm's: directories 0755, keys and kubeconfigs 0600,
certificates 0644; its own workspace and /var/lib/kubeinit 0700)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeinit import hostlock
from kubeinit.connection import with_umask

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--apiserver-advertise-address", "10.20.30.40", "--node-name", "node-a"]


def modes(top: Path) -> dict[str, str]:
    out = {".": oct(top.stat().st_mode & 0o777)}
    for p in top.rglob("*"):
        out[str(p.relative_to(top))] = oct(p.stat().st_mode & 0o777)
    return out


def umask000(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBEINIT_HOME": str(home)}
    return subprocess.run(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", sys.executable, "-m", "kubeinit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a real init phase run (it takes /var/lib/kubeinit/run.lock) needs root")
def test_init_phases_under_umask_000_make_kubeadms_modes(tmp_path):
    pki, confs, home = tmp_path / "a" / "pki", tmp_path / "b" / "kubernetes", tmp_path / "home"
    r = umask000("init", "phase", "certs", "all", "--cert-dir", str(pki), *FLAGS, home=home)
    assert r.returncode == 0, r.stderr
    r = umask000(
        "init", "phase", "kubeconfig", "all", "--cert-dir", str(pki), "--kubeconfig-dir", str(confs), *FLAGS, home=home
    )
    assert r.returncode == 0, r.stderr
    got = modes(pki)
    assert {k: v for k, v in got.items() if k in (".", "etcd")} == {".": "0o755", "etcd": "0o755"}
    for name, mode in got.items():
        if name.endswith((".key", ".pub")):  # sa.pub too, as kubeadm's WritePublicKey
            assert mode == "0o600", name
        elif name.endswith(".crt"):
            assert mode == "0o644", name
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o755", "a missing parent too"
    assert modes(confs) == {
        ".": "0o755",
        **{
            n: "0o600"
            for n in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf")
        },
    }
    assert oct(os.stat(hostlock.STATE).st_mode & 0o777) == "0o700"
    assert {oct(os.stat(p).st_mode & 0o777) for p in (hostlock.LOCK, hostlock.HOLDER)} == {"0o600"}
    if home.exists():
        assert all(m == "0o700" for n, m in modes(home).items() if (home / n).is_dir())


def test_every_shell_on_a_host_starts_with_umask_022(tmp_path):
    """Over SSH a login's umask (000 with pam_umask) would reach mkdir -p and every redirection."""
    script = with_umask(["sh", "-c", f"mkdir -p {tmp_path}/x/y; echo > {tmp_path}/x/f"])
    assert script[:2] == ["sh", "-c"] and script[2].startswith("umask 022; ")
    subprocess.run(["sh", "-c", 'umask 000; exec "$@"', "sh", *script], check=True)
    assert modes(tmp_path / "x") == {".": "0o755", "y": "0o755", "f": "0o644"}
    (tmp_path / "s.sh").write_text(f'mkdir "{tmp_path}/z"\n')
    wrapped = with_umask(["sh", str(tmp_path / "s.sh"), "arg"])  # the archive installer is run as `sh FILE ...`
    subprocess.run(["sh", "-c", 'umask 000; exec "$@"', "sh", *wrapped], check=True)
    assert oct((tmp_path / "z").stat().st_mode & 0o777) == "0o755"
    assert with_umask(["cat", "--", "/x"]) == ["cat", "--", "/x"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the record's script makes /var/lib/kubeinit, as on a host")
def test_two_runs_writing_one_record_never_share_a_temp_file(tmp_path):
    """Applied records (etcd, containerd, the kubelet) were written through one fixed `<record>.tmp`:
    two runs at once renamed each other's half-written file, or failed on a vanished one."""
    from kubeinit import spec
    from kubeinit.context import Context
    from kubeinit.hostops import install
    from kubeinit.phases import etcd, kubelet, runtime

    ctx = Context(spec.ClusterSpec(hosts=[spec.Host("a", "10.0.0.1", "control-plane")]), [])
    scripts = [runtime.RESTART, etcd.health_script(ctx, ["/x"]), kubelet.restart_script("/usr/bin/kubelet", ["/x"])]
    assert not any(".tmp" in s for s in scripts)
    record = tmp_path / "etcd.applied"
    procs = [
        subprocess.Popen(
            [
                "sh",
                "-c",
                "umask 000; "
                + install.write_record(str(record), f"i=0; while [ $i -lt 200 ]; do echo {n}; i=$((i+1)); done"),
            ]
        )
        for n in range(8)
    ]
    assert [p.wait() for p in procs] == [0] * 8
    lines = record.read_text().splitlines()
    assert len(lines) == 200 and len(set(lines)) == 1, "one run's whole record"
    assert oct(record.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["etcd.applied"], "no temp file left"
