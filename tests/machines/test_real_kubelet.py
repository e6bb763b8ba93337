"""`kubeinit up` on one real Debian machine with the REAL kubelet running kubeinit's static pods.

Real here: the kubelet, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
$KUBEINIT_REAL_K8S (v1.20.2 standing in for the cluster's kubernetesVersion v1.31.4), containerd,
runc, etcd, systemd, OpenSSH. The control plane's images come from an image bundle
(artifacts.images) built from those binaries, so no registry is involved; the machine gets
what a VM has and a container lacks (machines.KUBELET_HOST_SCRIPT). What 1.20 needs besides
goes through the cluster file's extraArgs, as a user's would; containerd's
restrictOOMScoreAdj (no CAP_SYS_RESOURCE in a machine) through runtime.containerd alone.
Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import cluster_lab
import pytest
import realk8s
import yaml
from cluster_lab import RealWorkdir, components_for_1_20, real_workdir, write_kubeconfig
from test_up import errors

pytestmark = pytest.mark.machines

SKIP = "addon,cni,join"  # the control plane alone: test_cluster.py makes the whole cluster
MIRROR_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# kubelet 1.20 posts mirror pods 70-87 s after the node registers (its one-minute resync); Ready
# follows once their startup probes pass
PODS_TIMEOUT = 240


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class RealWork(RealWorkdir):
    """One control plane with the real binaries and the image bundle, from the real mirror."""

    def write_spec(self, mirror: str, file: Path | None = None, containerd: dict | None = None, **_) -> Path:
        self.mirror = mirror
        return self.write_one_host(
            mirror,
            "real",
            file,
            {**self.real_artifacts(mirror), "etcd": {"version": self.versions["etcd"]}},
            kubernetesVersion=self.manifest()["stands_for"],
            runtime={"containerd": containerd if containerd is not None else {"restrictOOMScoreAdj": True}},
            components=components_for_1_20(),
        )


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> RealWork:
    return real_workdir(RealWork, "real", machines, real_k8s_mirror, tmp_path_factory)


def kubectl(work: RealWork, *args: str) -> subprocess.CompletedProcess:
    """The real kubectl on this host, with the kubeconfig `kubeinit kubeconfig -f` merged."""
    return cluster_lab.kubectl(work, "--request-timeout", "10s", *args)


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def main_pid(m, unit: str) -> str:
    return m.ssh(f"systemctl show -p MainPID --value {unit}").out.strip()


def test_up_runs_the_control_plane_on_the_real_kubelet(work, machines):
    m = machines[0]
    r = work.up("--skip-phases", SKIP, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for phase in ("images", "kubelet-start", "wait-control-plane", "mark-control-plane", "bootstrap-token"):
        assert f"{m.name}: ✓ {phase}" in r.stdout, r.stdout
    # the setting came from the cluster file alone: kubeinit's config.toml, no drop-in, no edit
    assert "restrict_oom_score_adj = true" in m.ssh("cat /etc/containerd/config.toml").out
    assert m.ssh("ls /etc/containerd").out.split() == ["config.toml"]
    listed = set(m.ssh("ctr -n k8s.io images ls -q").out.split())
    assert {i["name"] for i in realk8s.manifest(Path(work.real_root))["images"]} <= listed
    assert m.ssh("ls -A /var/lib/kubeinit/staging/images 2>/dev/null; true").out == "", "tarballs removed"


def test_kubectl_with_the_users_kubeconfig_lists_the_control_plane_running(work, machines):
    m = machines[0]
    r = write_kubeconfig(work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert oct(os.stat(work.root / "kubeconfig").st_mode & 0o777) == "0o600"
    node = json.loads(kubectl(work, "get", "node", m.name, "-o", "json").stdout)
    assert node["metadata"]["name"] == m.name  # registered
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    want = {f"{p}-{m.name}" for p in MIRROR_PODS}
    deadline, running = time.monotonic() + PODS_TIMEOUT, {}
    while time.monotonic() < deadline:
        pods = json.loads(kubectl(work, "get", "pods", "-n", "kube-system", "-o", "json").stdout)["items"]
        # Running, and Ready: the kubelet posts the phase before its startup probe has passed
        running = {p["metadata"]["name"]: (p["status"].get("phase"), _ready(p)) for p in pods}
        if all(running.get(w) == ("Running", True) for w in want):
            break
        time.sleep(3)
    assert all(running.get(w) == ("Running", True) for w in want), running
    table = kubectl(work, "get", "pods", "-n", "kube-system").stdout
    for w in want:
        assert re.search(rf"^{re.escape(w)}\s+1/1\s+Running", table, re.MULTILINE), table
    assert kubectl(work, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_a_second_up_only_skips(work, machines):
    m = machines[0]
    pids = {u: main_pid(m, u) for u in ("containerd", "kubelet", "etcd")}
    r = work.up("--skip-phases", SKIP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout
    assert {u: main_pid(m, u) for u in pids} == pids


def test_a_changed_containerd_setting_restarts_containerd_once(work, machines):
    m = machines[0]
    before = main_pid(m, "containerd")
    patch = '[plugins."io.containerd.grpc.v1.cri"]\nmax_container_log_line_size = 32768\n'
    work.write_spec(work.mirror, containerd={"restrictOOMScoreAdj": True, "configPatch": patch})
    r = work.up("--skip-phases", SKIP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(re.findall(rf"{m.name}: run .*systemctl restart containerd", r.stdout)) == 1, r.stdout
    assert main_pid(m, "containerd") != before
    assert "max_container_log_line_size = 32768" in m.ssh("cat /etc/containerd/config.toml").out
    again = work.up("--skip-phases", SKIP)
    assert "nothing to change" in again.stdout, again.stdout
    # the control plane's containers outlive containerd's restart (their shims keep them)
    assert kubectl(work, "get", "--raw", "/readyz").stdout.strip() == "ok"


def test_a_tarball_holding_another_image_is_one_sentence(work, machines):
    m = machines[0]
    root = Path(work.real_root)
    images = realk8s.manifest(root)["images"]
    pause = next(i for i in images if i["name"] == realk8s.PAUSE_REF)
    spec = yaml.safe_load(work.file.read_text())
    spec["artifacts"]["images"] = [
        {
            "name": "registry.k8s.io/not-in-the-tarball:1",
            "url": f"{work.mirror}/{pause['path']}",
            "sha256": pause["sha256"],
        }
    ]
    file = work.root / "wrong-image.yaml"
    file.write_text(yaml.safe_dump(spec, sort_keys=False))
    r = work.up("--only", "images", file=file)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = errors(r)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {m.name}: phase images failed at 'import image registry.k8s.io/not-in-the-tarball:1"
    ), r.stderr
    assert "the tarball holds no image named registry.k8s.io/not-in-the-tarball:1" in lines[0], lines[0]
    assert m.ssh("ls -A /var/lib/kubeinit/staging/images 2>/dev/null; true").out == ""


def sandbox_tasks(m, pod: str) -> list[str]:
    """The running pause tasks of a pod (its sandboxes), by containerd's CRI labels."""
    ids = m.ssh(
        f"ctr -n k8s.io containers ls -q 'labels.\"io.kubernetes.pod.name\"=={pod}',"
        "'labels.\"io.cri-containerd.kind\"==sandbox'"
    ).out.split()
    running = {
        line.split()[0]
        for line in m.ssh("ctr -n k8s.io tasks ls").out.splitlines()[1:]
        if line.split()[-1] == "RUNNING"
    }
    return [i for i in ids if i in running]


def test_the_setting_is_what_lets_sandboxes_start(work, machines):
    """The control: without restrictOOMScoreAdj a new sandbox fails as machines.md says (runc cannot
    lower oom_score_adj without CAP_SYS_RESOURCE); with it again, the kubelet's next try succeeds."""
    m = machines[0]
    pod = f"kube-scheduler-{m.name}"
    work.write_spec(work.mirror, containerd={})
    assert work.up("--only", "runtime").returncode == 0
    since = m.ssh("date '+%Y-%m-%d %H:%M:%S'").out.strip()
    (old,) = sandbox_tasks(m, pod)
    m.ssh(f"ctr -n k8s.io tasks kill -s SIGKILL {old}")
    failed, deadline = "", time.monotonic() + 60
    while time.monotonic() < deadline and not failed:
        time.sleep(2)
        failed = m.ssh(
            f"journalctl -u kubelet --since '{since}' --no-pager -o cat | "
            "grep -m1 'RunPodSandbox from runtime service failed'; true"
        ).out.strip()
    assert failed, "the kubelet's new sandbox should have failed without the setting"
    assert sandbox_tasks(m, pod) == []

    work.write_spec(work.mirror)  # restrictOOMScoreAdj: true again
    r = work.up("--skip-phases", SKIP)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 90  # the kubelet retries a failed pod sync after ~10 s, with back-off
    while time.monotonic() < deadline and not sandbox_tasks(m, pod):
        time.sleep(2)
    assert sandbox_tasks(m, pod), m.ssh("journalctl -u kubelet -n 20 --no-pager -o cat").out
