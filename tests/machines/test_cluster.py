"""`kubeinit up -f` with no --only: a whole cluster, 1 control plane + 2 workers, on real Debian
machines with the REAL Kubernetes components, then pods talking across nodes through it.

Real here: kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy (iptables
mode, its image holding the machines' own iptables) and kubectl of $KUBEINIT_REAL_K8S (v1.20.2
standing in for the cluster's kubernetesVersion), containerd, runc, the CNI plugins, etcd, systemd,
OpenSSH. The pod network is `networking.cni: bridge` (no image, no daemon). The images come from
the image bundle (realk8s.py), which also holds the busybox test pods' image. CoreDNS's image is
not in it and no registry is reachable here: its Deployment and Service are checked as objects,
its pods never run. What 1.20 needs besides goes through the cluster file, as a user's would.
Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess

import pytest
import yaml
from cluster_lab import (
    POD_SUBNET,
    READY_TIMEOUT,
    SERVICE_SUBNET,
    UP_TIMEOUT,
    ClusterWork,
    fresh_machines,
    kubectl,
    pod,
    real_workdir,
    until,
    wait_nodes_ready,
    write_kubeconfig,
)

pytestmark = pytest.mark.machines


@pytest.fixture(scope="module")
def machines(machine_image, machine_network):
    yield from fresh_machines(machine_image, machine_network, 3)


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> ClusterWork:
    return real_workdir(ClusterWork, "cluster", machines, real_k8s_mirror, tmp_path_factory)


def phase_times(log: str) -> dict[str, int]:
    """Seconds each phase of a run took, from its log (`HH:MM:SS host [phase] ...`, in run order):
    from its first line to the next phase's first line (phases run one after another)."""
    firsts: dict[str, int] = {}
    last = 0
    for h, m, sec, phase in re.findall(r"^(\d\d):(\d\d):(\d\d) \S+ \[([^\]]+)\]", log, re.MULTILINE):
        last = int(h) * 3600 + int(m) * 60 + int(sec)
        firsts.setdefault(phase, last)
    starts = [*firsts.values(), last]
    return {p: (starts[i + 1] - t) % 86400 for i, (p, t) in enumerate(firsts.items())}


UP: dict[str, subprocess.CompletedProcess] = {}


def test_up_brings_up_the_whole_cluster(work, machines):
    r = work.up(timeout=UP_TIMEOUT)
    (work.root / "up.out").write_text(r.stdout + "\n--- stderr\n" + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    (log,) = (work.home / "clusters/whole/logs").glob("up-*.log")
    times = phase_times(log.read_text())
    print(f"\nup: {r.seconds:.1f} s wall; per phase (s): " + ", ".join(f"{p} {t}" for p, t in times.items()))
    assert {"preflight", "runtime", "join/kubelet-start", "addon/kube-proxy", "cni"} <= set(times), times
    for m in machines:
        assert f"{m.name}: ✓ kubelet-start" in r.stdout or f"{m.name}: ✓ join" in r.stdout, r.stdout
    # the summary: every node Ready (read through the API), each phase's time, the kubectl line
    assert "✓ 3 of 3 nodes Ready" in r.stdout, r.stdout + r.stderr
    assert re.search(rf"^{machines[0].name}\s+Ready\s+control-plane\s", r.stdout, re.MULTILINE), r.stdout
    assert re.search(rf"^{machines[1].name}\s+Ready\s+worker\s", r.stdout, re.MULTILINE), r.stdout
    assert re.search(r"^time per phase: preflight [\d.]+s, .* cni [\d.]+s$", r.stdout, re.MULTILINE), r.stdout
    assert f"kubectl: `kubeinit kubeconfig -f {work.file} --known-hosts {work.known_hosts}`" in r.stdout


def test_the_admin_kubeconfig_sees_three_nodes_ready(work, machines):
    r = write_kubeconfig(work)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_nodes_ready(work, machines, "3 nodes Ready")
    table = kubectl(work, "get", "nodes", "-o", "wide").stdout
    for m in machines:
        assert re.search(rf"^{m.name}\s+Ready\s", table, re.MULTILINE), table
    cp = json.loads(kubectl(work, "get", "node", machines[0].name, "-o", "json").stdout)
    assert "node-role.kubernetes.io/control-plane" in cp["metadata"]["labels"]


def test_kube_proxy_runs_on_every_node(work, machines):
    def running() -> list[str] | None:
        pods = json.loads(
            kubectl(work, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-proxy", "-o", "json").stdout
        )
        nodes = sorted(p["spec"].get("nodeName", "") for p in pods["items"] if p["status"].get("phase") == "Running")
        return nodes if nodes == sorted(m.name for m in machines) else None

    until("kube-proxy Running on each node", running, READY_TIMEOUT)
    # it programs the service rules in iptables mode, in the machine's own (nft) ruleset
    rules = until(
        "kube-proxy's KUBE-SERVICES chain",
        lambda: "KUBE-SERVICES" in (out := machines[1].ssh("iptables-save -t nat").out) and out,
        60,
    )
    assert "default/kubernetes:https" in rules, rules


SERVE = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


def test_a_pod_on_each_worker_reaches_the_other_by_pod_ip_and_through_a_service(work, machines):
    _, w1, w2 = machines
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web-b", "namespace": "default"},
        "spec": {"selector": {"app": "b"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }
    objs = [
        pod("pod-a", w1.name, "exec sleep 100000", {"app": "a"}),
        pod("pod-b", w2.name, SERVE, {"app": "b"}),
        service,
    ]
    kubectl(work, "apply", "-f", "-", stdin=yaml.safe_dump_all(objs))
    kubectl(work, "wait", "--for=condition=Ready", "pod/pod-a", "pod/pod-b", "--timeout=180s")
    a, b = (json.loads(kubectl(work, "get", "pod", p, "-o", "json").stdout) for p in ("pod-a", "pod-b"))
    assert (a["spec"]["nodeName"], b["spec"]["nodeName"]) == (w1.name, w2.name)
    b_ip = b["status"]["podIP"]

    assert ipaddress.ip_address(b_ip) in ipaddress.ip_network(POD_SUBNET), b_ip
    assert ipaddress.ip_address(a["status"]["podIP"]) in ipaddress.ip_network(POD_SUBNET)

    def fetch(host: str, port: int) -> str:
        # busybox's nc (its wget has segfaulted in this image: machines.md)
        r = kubectl(
            work,
            "exec",
            "pod-a",
            "--",
            "sh",
            "-c",
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}",
            check=False,
        )
        return r.stdout if "hello-from-pod-b" in r.stdout else ""

    assert until(f"pod-a -> pod-b at {b_ip}:8080", lambda: fetch(b_ip, 8080), 30)
    cluster_ip = json.loads(kubectl(work, "get", "service", "web-b", "-o", "json").stdout)["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(SERVICE_SUBNET)
    # the ClusterIP exists only as kube-proxy's DNAT rules on pod-a's node
    assert until(f"pod-a -> Service web-b at {cluster_ip}:80", lambda: fetch(cluster_ip, 80), 60)
    assert cluster_ip in w1.ssh("iptables-save -t nat").out


def test_coredns_objects_exist(work):
    """CoreDNS's image is not in the bundle and no registry is reachable here, so its pods cannot
    start (ImagePullBackOff): the Deployment and the kube-dns Service are what is checked."""
    dep = json.loads(kubectl(work, "-n", "kube-system", "get", "deployment", "coredns", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.k8s.io/coredns/coredns:")
    svc = json.loads(kubectl(work, "-n", "kube-system", "get", "service", "kube-dns", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.96.0.10"  # the 10th address of the service subnet
    assert {p["port"] for p in svc["spec"]["ports"]} == {53, 9153}


def test_a_second_up_only_skips(work):
    r = work.up(timeout=UP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout
    assert "✓ 3 of 3 nodes Ready" in r.stdout and "waiting up to" not in r.stdout, r.stdout
    print(f"\nre-run: {r.seconds:.1f} s wall")
