"""`kubeinit up --only ...,kubelet-start` on one real Debian machine, its only control plane.

The kubelet is the real one of $KUBEINIT_REAL_K8S (v1.20.2, standing in for the cluster's
kubernetesVersion; skipped, with the reason, without it): the test mirror serves it where the
release's kubelet goes (realk8s.py), so kubeinit downloads, verifies, installs and starts it as
it would a release's. It reads kubeinit's files strictly; with no control plane yet it keeps
running and retrying the API server. What kubelet 1.20 needs besides goes through extraArgs
(--container-runtime=remote), and the machine gets what a VM has (machines.KUBELET_HOST_SCRIPT).
Real here: the kubelet, systemd, the unit and drop-in, the env file, containerd, the restart
decisions. test_real_kubelet.py runs the whole control plane on it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import realk8s
import yaml
from test_up import Workdir, errors

pytestmark = pytest.mark.machines

PHASES = "preflight,runtime,kubernetes,certs,kubeconfig,kubelet-start"


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class KubeletWork(Workdir):
    """test_up's Workdir (its `up`) with one control-plane host and the real kubelet."""

    def write_spec(
        self,
        mirror: str,
        file: Path | None = None,
        kubelet_args: dict | None = None,
        dns_domain: str = "cluster.local",
        **_,
    ) -> Path:
        self.mirror = mirror
        m = realk8s.manifest(self.real_root)
        kube = {n: {"version": m["version"], "sha256": m["files"][n]["sha256"]} for n in ("kubelet", "kubectl")}
        return self.write_one_host(
            mirror,
            "kubelet",
            file,
            kube,
            networking={"dnsDomain": dns_domain},
            components={"kubelet": {"extraArgs": {"container-runtime": "remote", **(kubelet_args or {})}}},
        )


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> KubeletWork:
    KubeletWork.real_root = real_k8s_mirror.root
    w = KubeletWork(tmp_path_factory.mktemp("kubelet"), machines, real_k8s_mirror.url, real_k8s_mirror.versions)
    w.trust_all()
    return w


def started_with(m) -> list[str]:
    """The running kubelet's arguments, as systemd started it."""
    return m.ssh(f"tr '\\0' '\\n' < /proc/{main_pid(m)}/cmdline").out.split("\n")[1:-1]


def main_pid(m) -> str:
    return m.ssh("systemctl show -p MainPID --value kubelet").out.strip()


def test_up_starts_the_kubelet_with_kubeadms_files(work, machines):
    m = machines[0]
    r = work.up("--only", PHASES, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{m.name}: ✓ kubelet-start" in r.stdout, r.stdout
    assert m.ssh("systemctl is-active kubelet").out.strip() == "active"
    assert m.ssh("systemctl is-enabled kubelet").out.strip() == "enabled"
    assert m.ssh("kubelet --version").out.strip() == f"Kubernetes v{work.versions['kubernetes']}"
    # kubeadm's drop-in arguments, then kubeadm-flags.env's, in that order (the unit's ExecStart)
    assert started_with(m) == [
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
        "--container-runtime=remote",
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        f"--node-ip={m.ip}",
    ]
    assert m.ssh("cat /var/lib/kubelet/kubeadm-flags.env").out == (
        'KUBELET_KUBEADM_ARGS="--container-runtime=remote '
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock "
        f'--node-ip={m.ip}"\n'
    )
    time.sleep(8)  # a kubelet 1.20 that cannot run exits 5-6 s after it starts: this one took kubeinit's files
    assert m.ssh("systemctl is-active kubelet").out.strip() == "active"
    assert m.ssh("systemctl show -p NRestarts --value kubelet").out.strip() == "0"
    config = yaml.safe_load(m.ssh("cat /var/lib/kubelet/config.yaml").out)
    assert (config["apiVersion"], config["kind"]) == ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")
    assert config["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"
    assert config["authentication"]["anonymous"]["enabled"] is False and config["authorization"]["mode"] == "Webhook"
    assert (config["clusterDNS"], config["clusterDomain"]) == (["10.96.0.10"], "cluster.local")
    assert (config["cgroupDriver"], config["staticPodPath"]) == ("systemd", "/etc/kubernetes/manifests")
    assert config["rotateCertificates"] is True and "resolvConf" not in config  # no systemd-resolved here
    for path in (
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/kubeadm-flags.env",
        "/etc/systemd/system/kubelet.service",
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    ):
        assert m.ssh(f"stat -c %a {path}").out.strip() == "644", path
    verify = m.ssh("systemd-analyze verify kubelet.service 2>&1; true").out
    assert "kubelet" not in verify, verify  # systemd finds nothing wrong with the unit and drop-in


def test_second_up_only_skips_and_leaves_the_kubelet_running(work, machines):
    m = machines[0]
    pid = main_pid(m)
    r = work.up("--only", PHASES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout
    assert f"{m.name}: ✓ kubelet-start: 0 changed" in r.stdout, r.stdout
    assert main_pid(m) == pid, "the kubelet was not restarted"


def test_a_changed_setting_restarts_the_kubelet_once(work, machines):
    m = machines[0]
    pid = main_pid(m)
    work.write_spec(work.mirror, kubelet_args={"v": "2"}, dns_domain="example.internal")
    r = work.up("--only", "kubelet-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"{m.name}: upload /var/lib/kubelet/config.yaml ", r.stdout), r.stdout
    assert main_pid(m) != pid
    assert started_with(m)[-1] == "--v=2"
    assert yaml.safe_load(m.ssh("cat /var/lib/kubelet/config.yaml").out)["clusterDomain"] == "example.internal"
    again = work.up("--only", "kubelet-start")
    assert "nothing to change" in again.stdout, again.stdout


def test_a_run_killed_before_the_restart_restarts_it_next_time(work, machines):
    """The files were written but the kubelet never restarted on them: what it last started
    with (APPLIED) no longer matches, so the next run restarts it though no file changes."""
    m = machines[0]
    m.ssh(
        "echo '# edited' >> /etc/systemd/system/kubelet.service.d/10-kubeadm.conf; "
        "sha256sum /etc/systemd/system/kubelet.service.d/10-kubeadm.conf >/dev/null"
    )
    work.up("--only", "kubelet-start")  # restores the drop-in and restarts
    pid = main_pid(m)
    m.ssh("rm /var/lib/kubeinit/kubelet.applied")  # as if killed between the uploads and the restart
    r = work.up("--only", "kubelet-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"{m.name}: run sh -c .*systemctl restart kubelet", r.stdout), r.stdout
    assert main_pid(m) != pid
    assert "nothing to change" in work.up("--only", "kubelet-start").stdout


def test_a_kubelet_that_exits_is_one_sentence_with_its_log_and_the_next_run_repairs_it(work, machines):
    m = machines[0]
    work.write_spec(work.mirror, kubelet_args={"no-such-flag": "1"})
    r = work.up("--only", "kubelet-start")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = errors(r)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {m.name}: phase kubelet-start failed at "), lines[0]
    assert "unknown flag: --no-such-flag" in lines[0] and "--only kubelet-start" in lines[0], lines[0]
    work.write_spec(work.mirror)
    r = work.up("--only", "kubelet-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.ssh("systemctl is-active kubelet").out.strip() == "active"
    assert "--no-such-flag=1" not in started_with(m)


def test_reset_stops_the_kubelet_and_up_starts_it_again(work, machines):
    from test_etcd import reset

    m = machines[0]
    r = reset(work, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"{m.name}: run systemctl stop kubelet", r.stdout), r.stdout
    assert m.ssh("systemctl is-active kubelet", check=False).out.strip() != "active"
    assert m.ssh("ls -A /var/lib/kubelet").out == "", "kubeadm's reset empties the kubelet dir"
    r = work.up("--only", PHASES, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.ssh("systemctl is-active kubelet").out.strip() == "active"
    assert m.ssh("[ -f /var/lib/kubelet/config.yaml ] && echo yes").out.strip() == "yes"


def test_no_private_key_in_output_or_logs(work, machines):
    keys = machines[0].ssh("cat /etc/kubernetes/pki/*.key").out
    bodies = {line for line in keys.splitlines() if line and not line.startswith("-----")}
    logs = "".join(p.read_text() for p in (work.home / "clusters").rglob("*.log"))
    assert bodies and not any(b in logs for b in bodies)
