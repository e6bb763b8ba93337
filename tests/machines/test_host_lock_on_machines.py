"""The host lock and umask-proof modes on one real Debian machine, over real SSH.

- Two `up` runs from two KUBEINIT_HOMEs against the same host: one is refused naming the other
  (its user, machine, pid and KUBEINIT_HOME), and the PKI on the host stays one PKI: every
  certificate verifies against its CA with the real `openssl verify`.
- A host whose SSH logins have umask 000 (pam_umask) still gets kubeadm's modes: nothing kubeinit
  makes is group- or world-writable.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_etcd import EtcdWork
from test_etcd import reset as reset_run
from test_up import OUTPUTS, ROOT

pytestmark = pytest.mark.machines

PKI = "/etc/kubernetes/pki"
# Each certificate kubeadm signs, and the CA it must verify against.
SIGNED = {
    "apiserver.crt": "ca.crt",
    "apiserver-kubelet-client.crt": "ca.crt",
    "front-proxy-client.crt": "front-proxy-ca.crt",
    "apiserver-etcd-client.crt": "etcd/ca.crt",
    "etcd/server.crt": "etcd/ca.crt",
    "etcd/peer.crt": "etcd/ca.crt",
    "etcd/healthcheck-client.crt": "etcd/ca.crt",
}
KUBECONFIGS = ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf")
CLEAN = "systemctl disable --now etcd >/dev/null 2>&1; rm -rf /etc/kubernetes /var/lib/kubeinit /var/lib/etcd; true"


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class LockWork(EtcdWork):
    def start(self, *args: str, home: Path) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(home), cwd=ROOT
        )


@pytest.fixture(scope="module")
def work(machines, artifact_mirror, tmp_path_factory) -> LockWork:
    w = LockWork(tmp_path_factory.mktemp("hostlock"), machines, artifact_mirror.url, artifact_mirror.versions)
    w.trust_all()
    return w


def finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=300)
    OUTPUTS.extend([out, err])
    return p.returncode, out, err


def assert_one_pki(m, tmp: Path) -> None:
    """Every certificate on the host verifies against its CA (real openssl, here), and every
    kubeconfig's client certificate against ca.crt, the CA it names."""
    tmp.mkdir(exist_ok=True)
    names = sorted({*SIGNED, *SIGNED.values()})
    for name in names:
        (tmp / name.replace("/", "_")).write_bytes(m.ssh(f"cat {PKI}/{name}").out.encode())
    for cert, ca in SIGNED.items():
        r = subprocess.run(
            ["openssl", "verify", "-CAfile", tmp / ca.replace("/", "_"), tmp / cert.replace("/", "_")],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"{cert} is not signed by {ca}: {r.stdout}{r.stderr}"
    ca = (tmp / "ca.crt").read_bytes()
    for conf in KUBECONFIGS:
        user = yaml.safe_load(m.ssh(f"cat /etc/kubernetes/{conf}").out)["users"][0]["user"]
        cluster = yaml.safe_load(m.ssh(f"cat /etc/kubernetes/{conf}").out)["clusters"][0]["cluster"]
        assert base64.b64decode(cluster["certificate-authority-data"]) == ca, conf
        client = tmp / f"{conf}.crt"
        client.write_bytes(base64.b64decode(user["client-certificate-data"]))
        r = subprocess.run(["openssl", "verify", "-CAfile", tmp / "ca.crt", client], capture_output=True, text=True)
        assert r.returncode == 0, f"{conf}'s client certificate is not signed by ca.crt: {r.stdout}{r.stderr}"


def snapshot(m) -> str:
    return m.ssh("find /etc/kubernetes -exec stat -c '%n %a %s %.9Y' {} + | sort").out


def holder_pattern(home: Path, pid: int | None = None) -> str:
    who = rf"`kubeinit up` of cluster 'etcd' by root@{re.escape(os.uname().nodename)} "
    return who + (rf"\(pid {pid}, " if pid else r"\(pid \d+, ") + rf"KUBEINIT_HOME {re.escape(str(home))}\) since "


def test_a_run_while_another_holds_the_host_is_refused_naming_it(work, machines, tmp_path):
    m = machines[0]
    m.ssh(CLEAN)
    first, second = tmp_path / "home-a", tmp_path / "home-b"
    a = work.start("--only", "certs,kubeconfig", home=first)
    # Stop the first run once it has begun changing the host: it holds the lock, half a PKI is there.
    for line in a.stdout:
        if re.search(rf"^\s+{m.name}: upload {PKI}/", line):
            a.send_signal(signal.SIGSTOP)
            break
    try:
        time.sleep(0.5)  # what the stopped run had already sent completes on the host
        before = snapshot(m)
        b = work.up("--only", "certs,kubeconfig", home=second)
        assert b.returncode == 1, b.stdout + b.stderr
        err = [line for line in b.stderr.splitlines() if line.startswith("error:")]
        assert len(err) == 1, b.stderr
        assert re.match(
            rf"error: {m.name}: phase certs\S* failed at 'lock': {m.name} is locked by "
            + holder_pattern(first, a.pid)
            + r".*; wait for that run to finish \(or check that it is still "
            r"running\), then run this again",
            err[0],
        ), err[0]
        reset = reset_run(work, "--yes", home=second, timeout=120)
        assert reset.returncode == 1 and re.search(
            rf"{m.name} is locked by " + holder_pattern(first, a.pid), reset.stderr
        ), reset.stdout + reset.stderr
        assert snapshot(m) == before, "the refused runs touched nothing"
        dry = work.up("--only", "certs,kubeconfig", "--dry-run", home=second)
        assert dry.returncode == 0, "a dry run changes nothing and takes no lock: " + dry.stdout + dry.stderr
    finally:
        a.send_signal(signal.SIGCONT)
    rc, out, err = finish(a)
    assert rc == 0, out + err
    assert_one_pki(m, tmp_path / "pki")
    assert m.ssh("cat /var/lib/kubeinit/run.lock.holder").out.startswith("`kubeinit up` of cluster 'etcd'")
    assert work.up("--only", "certs,kubeconfig", home=second).returncode == 0, "the lock is free again"


def test_two_runs_started_together_leave_one_pki(work, machines, tmp_path):
    """Started at the same moment, as in the audit (4 of 4 tries mixed the PKI, one exiting 0)."""
    m = machines[0]
    refused = 0
    for i in range(3):
        m.ssh(CLEAN)
        homes = [tmp_path / f"home-{i}-a", tmp_path / f"home-{i}-b"]
        procs = [work.start("--only", "certs,kubeconfig", home=h) for h in homes]
        results = [finish(p) for p in procs]
        assert any(rc == 0 for rc, _, _ in results), results
        for (rc, _out, err), other in zip(results, reversed(homes), strict=True):
            if rc != 0:
                refused += 1
                assert re.search(r"is locked by " + holder_pattern(other), err), err
        assert_one_pki(m, tmp_path / f"pki-{i}")
    print(f"refused in {refused} of 3 rounds (the others ran one after the other)")


def test_logins_with_umask_000_still_get_kubeadms_modes(work, machines):
    m = machines[0]
    m.ssh(CLEAN + "; rm -rf /var/lib/kubelet")
    m.ssh(
        "grep -q 'pam_umask.so umask=0000' /etc/pam.d/sshd || "
        "echo 'session optional pam_umask.so umask=0000' >> /etc/pam.d/sshd"
    )
    try:
        fresh_logins(m)  # PAM sets the umask when a connection logs in
        assert m.ssh("umask", timeout=30).out.strip() in ("0000", "000"), "the login's umask must be 000 for this test"
        m.ssh("touch /run/kubeinit-modes-mark")
        r = work.up("--only", "runtime,certs,kubeconfig,etcd,control-plane", timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        stat = dict(
            reversed(line.split(" ", 1))
            for line in m.ssh(
                "stat -c '%a %n' /etc/kubernetes /etc/kubernetes/pki /etc/kubernetes/pki/etcd /etc/kubernetes/manifests "  # noqa: E501
                "/var/lib/etcd /var/lib/kubeinit /var/lib/kubeinit/*.applied /var/lib/kubeinit/installed/*.stamp "
                "/etc/kubernetes/pki/ca.key /etc/kubernetes/pki/ca.crt /etc/kubernetes/admin.conf"
            ).out.splitlines()
        )
        assert {k: v for k, v in stat.items() if not k.endswith((".applied", ".stamp"))} == {
            "/etc/kubernetes": "755",
            "/etc/kubernetes/pki": "755",
            "/etc/kubernetes/pki/etcd": "755",
            "/etc/kubernetes/manifests": "700",
            "/var/lib/etcd": "700",
            "/var/lib/kubeinit": "700",
            "/etc/kubernetes/pki/ca.key": "600",
            "/etc/kubernetes/pki/ca.crt": "644",
            "/etc/kubernetes/admin.conf": "600",
        }
        records = {k: v for k, v in stat.items() if k.endswith((".applied", ".stamp"))}
        assert "/var/lib/kubeinit/etcd.applied" in records and "/var/lib/kubeinit/containerd.applied" in records
        assert set(records.values()) == {"644"}, records
        loose = m.ssh(
            "find /etc/kubernetes /var/lib/kubeinit /var/lib/etcd /etc/containerd /opt/cni /usr/local/bin "
            "/usr/local/sbin /etc/systemd/system /etc/sysctl.d -newer /run/kubeinit-modes-mark ! -type l "
            r"\( -perm -g+w -o -perm -o+w \) 2>/dev/null"
        ).out.split()
        assert loose == [], f"group- or world-writable: {loose}"
    finally:
        m.ssh("sed -i '/pam_umask.so umask=0000/d' /etc/pam.d/sshd")
        fresh_logins(m)


def fresh_logins(m) -> None:
    for c in m._clients.values():
        c.close()
    m._clients.clear()
