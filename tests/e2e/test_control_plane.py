"""End to end on real VMs with real Kubernetes release binaries and images (`-m e2e`).

Nothing here can run on the development machine (no hypervisor, no registry to pull from):
these tests run where a cluster file names real hosts that can fetch the releases and images
(or an `artifacts.mirror` and `registryMirrors` that hold them), e.g. the Vagrant VMs:

    vagrant up
    KUBEINIT_E2E_CLUSTER=examples/vagrant.yaml KUBEINIT_E2E_KNOWN_HOSTS=~/.ssh/known_hosts \\
        python -m pytest -m e2e tests/e2e

A plain `kubeinit up` (every phase) builds the whole cluster; then, with the real kubectl on the
control plane: the API server answers /readyz with etcd behind it, every host of the file is a
Ready node, a pod runs on a worker, it resolves kubernetes.default through CoreDNS, and it reaches
a pod on another worker through a ClusterIP Service by its DNS name (kube-proxy and the pod
network); a re-run of `up` only skips. The test's objects are removed at the end.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

CLUSTER = os.environ.get("KUBEINIT_E2E_CLUSTER")
KNOWN_HOSTS = os.environ.get("KUBEINIT_E2E_KNOWN_HOSTS")
ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ["/usr/local/bin/kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
IMAGE = "docker.io/library/busybox:1.36"
NAMESPACE = "kubeinit-e2e"
WAIT = 300  # seconds for nodes, pods and DNS (images are pulled from the Internet)


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
        [sys.executable, "-m", "kubeinit", "up", "-f", str(cluster), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )


@pytest.fixture(scope="module")
def spec(cluster):
    from kubeinit.spec import load_file

    return load_file(cluster)


@pytest.fixture(scope="module")
def first_up(cluster) -> subprocess.CompletedProcess:
    r = up(cluster)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def conn(spec, first_up):
    """The first control plane, over SSH: the real kubectl there, with admin.conf."""
    from kubeinit.ssh import SSHConnection

    c = SSHConnection(spec.first_control_plane, known_hosts=os.path.expanduser(KNOWN_HOSTS) if KNOWN_HOSTS else None)
    yield c
    c.run([*KUBECTL, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false"])
    c.close()


def kubectl(conn, *args: str, stdin: str | None = None):
    return conn.run([*KUBECTL, *args], stdin=stdin.encode() if stdin is not None else None)


def until(what: str, probe, timeout: float = WAIT, every: float = 5.0):
    deadline, last = time.monotonic() + timeout, None
    while True:
        last = probe()
        if last or time.monotonic() > deadline:
            break
        time.sleep(every)
    assert last, f"{what}: not within {timeout:.0f} s (last: {last!r})"
    return last


def test_the_control_plane_answers_and_keeps_kubeadms_objects(spec, conn):
    until("the API server's /readyz", lambda: (r := kubectl(conn, "get", "--raw", "/readyz")).rc == 0 and r.out)
    stored = kubectl(conn, "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "name")
    assert stored.out.strip() == "configmap/kubeadm-config", stored.err
    # cluster-info is readable without credentials (and before the CA is trusted), as join's discovery needs
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    url = f"{spec.api_endpoint()}/api/v1/namespaces/kube-public/configmaps/cluster-info"
    with urllib.request.urlopen(url, context=insecure, timeout=30) as answer:
        info = json.load(answer)
    assert info["metadata"]["name"] == "cluster-info" and "kubeconfig" in info["data"], info


def test_every_host_is_a_ready_node_and_up_said_so(spec, first_up, conn):
    assert f"✓ {len(spec.hosts)} of {len(spec.hosts)} nodes Ready" in first_up.stdout, first_up.stdout

    def ready() -> dict | None:
        items = json.loads(kubectl(conn, "get", "nodes", "-o", "json").out or "{}").get("items", [])
        state = {
            n["metadata"]["name"]: any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])
            )
            for n in items
        }
        return state if state == {h.name: True for h in spec.hosts} else None

    until("every host a Ready node (kubectl)", ready)


def pod(name: str, node: str, command: str, labels: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", command]}],
        },
    }


def test_a_pod_resolves_kubernetes_default_and_reaches_a_service_on_another_node(spec, conn):
    workers = [h.name for h in spec.hosts if not h.is_control_plane] or [spec.first_control_plane.name]
    client_node, server_node = workers[0], workers[-1]
    serve = "mkdir -p /www && echo hello-from-e2e > /www/index.html && exec httpd -f -p 8080 -h /www"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        pod("client", client_node, "exec sleep 100000", {"app": "client"}),
        pod("web", server_node, serve, {"app": "web"}),
        service,
    ]
    applied = kubectl(conn, "apply", "-f", "-", stdin=yaml.safe_dump_all(objs))
    assert applied.rc == 0, applied.out + applied.err
    waited = kubectl(
        conn, "-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/client", "pod/web", f"--timeout={WAIT}s"
    )
    assert waited.rc == 0, waited.out + waited.err

    def execs(command: str) -> str:
        r = kubectl(conn, "-n", NAMESPACE, "exec", "client", "--", "sh", "-c", command)
        return r.out if r.rc == 0 else ""

    # DNS: CoreDNS (its Deployment and the kube-dns Service the addon phase made) answers for the API's Service
    dns = until("nslookup kubernetes.default from the pod", lambda: execs("nslookup kubernetes.default"))
    cluster_ip = json.loads(kubectl(conn, "get", "service", "kubernetes", "-o", "json").out)["spec"]["clusterIP"]
    assert cluster_ip in dns, dns
    # the Service by its name: DNS, then kube-proxy's rules to the pod on the other node over the pod network
    name = f"web.{NAMESPACE}.svc.{spec.networking.dns_domain}"
    got = until(f"http://{name} from the pod", lambda: execs(f"wget -qO- -T 5 http://{name}"))
    assert "hello-from-e2e" in got, got


def test_a_rerun_only_skips(cluster, conn):
    again = up(cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to change, every host already matched" in again.stdout, again.stdout
