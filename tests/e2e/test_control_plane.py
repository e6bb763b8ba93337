"""End to end on real VMs with real Kubernetes release binaries (`-m e2e`).

Nothing here can run on the development machine (no hypervisor, no kubelet or API server
build): these tests run where a cluster file names real hosts that can fetch the releases
(or an `artifacts.mirror` that holds them), e.g. the Vagrant VMs:

    vagrant up
    KUBEINIT_E2E_CLUSTER=examples/vagrant.yaml KUBEINIT_E2E_KNOWN_HOSTS=~/.ssh/known_hosts \\
        python -m pytest -m e2e tests/e2e

They build the control plane with every phase built today and check that the real kubelet
runs the static pods: the API server answers /readyz with etcd behind it, and its node
registers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PHASES = (
    "preflight,runtime,kubernetes,certs,kubeconfig,etcd,control-plane,kubelet-start,wait-control-plane,"
    "upload-config,mark-control-plane,bootstrap-token"
)
CLUSTER = os.environ.get("KUBEINIT_E2E_CLUSTER")
KNOWN_HOSTS = os.environ.get("KUBEINIT_E2E_KNOWN_HOSTS")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Path:
    if not CLUSTER:
        pytest.skip(
            "needs real VMs and the real Kubernetes release binaries: set KUBEINIT_E2E_CLUSTER to a cluster "
            "file of such hosts (e.g. examples/vagrant.yaml after `vagrant up`)"
        )
    return Path(CLUSTER).expanduser().resolve()


def up(cluster: Path) -> subprocess.CompletedProcess:
    extra = ["--known-hosts", os.path.expanduser(KNOWN_HOSTS)] if KNOWN_HOSTS else []
    return subprocess.run(
        [sys.executable, "-m", "kubeinit", "up", "-f", str(cluster), "--only", PHASES, *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )


def control_plane(cluster: Path):
    from kubeinit.spec import load_file
    from kubeinit.ssh import SSHConnection

    spec = load_file(cluster)
    host = spec.first_control_plane
    return host, SSHConnection(host, known_hosts=os.path.expanduser(KNOWN_HOSTS) if KNOWN_HOSTS else None)


def test_the_kubelet_runs_the_control_plane_and_a_rerun_changes_nothing(cluster):
    r = up(cluster)
    assert r.returncode == 0, r.stdout + r.stderr
    host, conn = control_plane(cluster)
    kubectl = ["/usr/local/bin/kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
    deadline = time.monotonic() + 300  # kubeadm's wait-control-plane allows 4 minutes
    while True:
        ready = conn.run([*kubectl, "get", "--raw", "/readyz"])
        if ready.rc == 0 and ready.out.strip() == "ok":
            break
        assert time.monotonic() < deadline, f"the API server never became ready: {ready.err or ready.out}"
        time.sleep(5)
    nodes = conn.run([*kubectl, "get", "nodes", "-o", "name"])
    assert f"node/{host.name}" in nodes.out.split(), nodes.out + nodes.err
    stored = conn.run([*kubectl, "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "name"])
    assert stored.out.strip() == "configmap/kubeadm-config", stored.err
    # cluster-info is readable without credentials, as join's discovery needs
    info = conn.run(
        [
            "/usr/local/bin/kubectl",
            "--server",
            "https://127.0.0.1:6443",
            "--insecure-skip-tls-verify",
            "-n",
            "kube-public",
            "get",
            "configmap",
            "cluster-info",
            "-o",
            "name",
        ]
    )
    assert info.out.strip() == "configmap/cluster-info", info.err
    again = up(cluster)
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr
    conn.close()
