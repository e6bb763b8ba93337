"""`kubeinit reset -f cluster.yaml --yes` on one real Debian machine, over real SSH, with cert dirs
a typo or a symlink makes dangerous: reset removes kubeinit's own file names only, and refuses a
cert dir that resolves to a system directory before anything changes (issue 12, item 1).

No `up` is needed: kubeinit's names are planted beside the host's own files, as a converged host
would have them, so what reset may and may not touch is known exactly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from test_etcd import reset
from test_up import Workdir, errors

pytestmark = pytest.mark.machines

PKI_FILES = (
    "ca.crt",
    "ca.key",
    "apiserver.crt",
    "apiserver.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "etcd/ca.crt",
    "etcd/ca.key",
    "etcd/server.key",
)


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class ResetWork(Workdir):
    """test_up's Workdir with a spec of one control-plane host and the cert dir under test."""

    def write_spec(self, mirror: str, file: Path | None = None, cert_dir: str = "/etc/kubernetes/pki", **_) -> Path:
        # reset downloads nothing: no mirror, only the host and the cert dir
        from image import ssh_key

        self.mirror = mirror
        m = self.machines[0]
        spec = {
            "apiVersion": "kubeinit.dev/v1alpha1",
            "kind": "Cluster",
            "name": "reset",
            "kubernetesVersion": "v1.32.5",
            "pki": {"certificatesDir": cert_dir},
            "hosts": [
                {
                    "name": m.name,
                    "address": m.ip,
                    "role": "control-plane",
                    "ssh": {"user": "root", "key": str(ssh_key())},
                }
            ],
        }
        path = file or self.file
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path


@pytest.fixture(scope="module")
def work(machines, artifact_mirror, tmp_path_factory) -> ResetWork:
    w = ResetWork(tmp_path_factory.mktemp("reset"), machines, artifact_mirror.url, artifact_mirror.versions)
    w.trust_all()
    return w


def listing(m, d: str) -> list[str]:
    """Every entry under d (recursively), with its size and mode: what a removal would change."""
    return m.ssh(f"find {d} -xdev -printf '%p %s %m\\n' | sort").out.splitlines()


def fresh_login(work, m) -> subprocess.CompletedProcess:
    """A new SSH login (not the harness's cached one), checking the host key: sshd still works."""
    from image import ssh_key

    return subprocess.run(
        [
            "ssh",
            "-i",
            str(ssh_key()),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={work.known_hosts}",
            "-o",
            "ConnectTimeout=10",
            f"root@{m.ip}",
            "echo logged-in",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "cert_dir,real",
    [("//etc", "/etc"), ("/etc/ssh", "/etc/ssh"), ("/srv/pki-link", "/etc")],
    ids=["//etc", "/etc/ssh", "symlink-to-etc"],
)
def test_a_system_cert_dir_is_refused_and_nothing_is_touched(work, machines, cert_dir, real):
    m = machines[0]
    if cert_dir == "/srv/pki-link":
        m.ssh("mkdir -p /srv && ln -sfn /etc /srv/pki-link")
    # kubeinit's names too, where the cert dir points: even they stay, since the dir is refused
    m.ssh(f"mkdir -p {real}/etcd-kubeinit-test && touch {real}/ca.crt {real}/sa.key")
    work.write_spec(work.mirror, cert_dir=cert_dir)
    before_etc, before_ssh = listing(m, "/etc"), listing(m, "/etc/ssh")
    assert len(m.ssh("ls -A /etc").out.split()) > 50 and len(m.ssh("ls -A /etc/ssh").out.split()) > 5

    r = reset(work, "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    (err,) = errors(r)
    assert err.startswith(f"error: {m.name}: phase preflight failed at 'plan': the cert dir {cert_dir!r}"), err
    assert "is a system directory" in err and "nothing was reset" in err and "--yes" not in err, err
    assert " run " not in r.stdout, r.stdout

    assert listing(m, "/etc") == before_etc and listing(m, "/etc/ssh") == before_ssh, "not one entry changed"
    assert m.ssh("sshd -t && echo ok").out.strip() == "ok"
    login = fresh_login(work, m)
    assert login.returncode == 0 and login.stdout.strip() == "logged-in", login.stderr
    m.ssh(f"rm -rf {real}/etcd-kubeinit-test {real}/ca.crt {real}/sa.key /srv/pki-link")


def test_a_cert_dir_of_its_own_loses_only_kubeinits_names_and_a_second_reset_changes_nothing(work, machines):
    m = machines[0]
    # the cert dir is a symlink: reset works in the dir it resolves to, by name
    plant = " && ".join(
        [
            "mkdir -p /srv/real-pki/etcd /srv/real-pki/notes /etc/kubernetes/manifests /var/lib/kubelet/pods",
            "ln -sfn /srv/real-pki /srv/k8s-pki",
            *(f"echo x > /srv/real-pki/{f}" for f in PKI_FILES),
            "echo mine > /srv/real-pki/foreign.crt",
            "echo mine > /srv/real-pki/.hidden",
            "echo mine > /srv/real-pki/notes/ca.key",
            "echo mine > /srv/real-pki/etcd/backup.key",
            "echo x > /etc/kubernetes/admin.conf",
            "echo x > /etc/kubernetes/scheduler.conf",
            "echo mine > /etc/kubernetes/my-notes.txt",
            "echo x > /etc/kubernetes/manifests/kube-apiserver.yaml",
            "echo x > /etc/kubernetes/manifests/etcd.yaml",
            "echo mine > /etc/kubernetes/manifests/my-static-pod.yaml",
            "echo x > /var/lib/kubelet/config.yaml",
        ]
    )
    m.ssh(plant)
    work.write_spec(work.mirror, cert_dir="/srv/k8s-pki")
    before_etc = len(m.ssh("ls -A /etc").out.split())

    r = reset(work, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    left = m.ssh("find /srv /etc/kubernetes /var/lib/kubelet | sort").out.split()
    assert left == sorted(
        [
            "/srv",
            "/srv/k8s-pki",
            "/srv/real-pki",
            "/srv/real-pki/.hidden",
            "/srv/real-pki/foreign.crt",
            "/srv/real-pki/notes",
            "/srv/real-pki/notes/ca.key",
            "/srv/real-pki/etcd",
            "/srv/real-pki/etcd/backup.key",
            "/etc/kubernetes",
            "/etc/kubernetes/my-notes.txt",
            "/etc/kubernetes/manifests",
            "/etc/kubernetes/manifests/my-static-pod.yaml",
            "/var/lib/kubelet",
        ]
    ), "only kubeinit's names went"
    assert "/srv/real-pki/etcd holds files that are not kubeinit's" in r.stdout, r.stdout
    assert len(m.ssh("ls -A /etc").out.split()) == before_etc

    again = reset(work, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{m.name}: ✓ cleanup-node: 0 changed" in again.stdout, again.stdout
    assert m.ssh("find /srv /etc/kubernetes /var/lib/kubelet | sort").out.split() == left

    # with the foreign file gone, the emptied etcd dir goes too (rmdir), and nothing else
    m.ssh("rm /srv/real-pki/etcd/backup.key")
    r = reset(work, "--yes")
    assert r.returncode == 0 and "remove the empty /srv/real-pki/etcd" in r.stdout, r.stdout
    assert m.ssh("[ -e /srv/real-pki/etcd ] || echo gone").out.strip() == "gone"
    assert m.ssh("ls -A /srv/real-pki").out.split() == [".hidden", "foreign.crt", "notes"]
