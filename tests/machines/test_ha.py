"""`kubeinit up -f` with three control planes: an HA control plane in one run, on real Debian
machines with the REAL Kubernetes components (cluster_lab.py's ClusterWork: $KUBEINIT_REAL_K8S's
v1.20.2 standing in for the cluster's kubernetesVersion, the image bundle, `networking.cni: bridge`).

The first control plane makes the CAs; up copies the shared ones to the other two over SSH, which
make their own certificates, join etcd one at a time (the member added before its etcd starts),
run their own API server and are marked control planes. Checked with the real etcdctl (on the
machines) and kubectl: a 3-member etcd healthy over TLS, /readyz on each API server, a re-run
that only skips, and `kubeinit reset` of the third that leaves a 2-member etcd and a working
cluster. Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cluster_lab import (
    UP_TIMEOUT,
    ClusterWork,
    fresh_machines,
    kubectl,
    kubeinit_here,
    real_workdir,
    wait_nodes_ready,
    write_kubeconfig,
)

pytestmark = pytest.mark.machines

PKI = "/etc/kubernetes/pki"


@pytest.fixture(scope="module")
def machines(machine_image, machine_network):
    yield from fresh_machines(machine_image, machine_network, 3)


class HAWork(ClusterWork):
    """Three control planes, no workers; the first's address is the controlPlaneEndpoint."""

    def write_spec(self, mirror: str, file: Path | None = None, **_) -> Path:
        path = super().write_spec(mirror, file)
        spec = yaml.safe_load(path.read_text())
        spec["name"] = "ha"
        spec["controlPlaneEndpoint"] = f"{self.machines[0].ip}:6443"
        for h in spec["hosts"]:
            h["role"] = "control-plane"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    def only(self, index: int) -> Path:
        """The cluster file with one host: what `kubeinit reset -f` works on."""
        spec = yaml.safe_load(self.file.read_text())
        spec["hosts"] = [spec["hosts"][index]]
        path = self.root / f"only-{index}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> HAWork:
    return real_workdir(HAWork, "ha", machines, real_k8s_mirror, tmp_path_factory)


def etcdctl(machine, endpoints: list[str], *args: str, check: bool = True):
    """The etcdctl kubeinit installed, over TLS with the machine's healthcheck-client certificate."""
    return machine.ssh(
        f"ETCDCTL_API=3 etcdctl --endpoints={','.join(endpoints)} --cacert={PKI}/etcd/ca.crt "
        f"--cert={PKI}/etcd/healthcheck-client.crt --key={PKI}/etcd/healthcheck-client.key "
        f"--command-timeout=10s {' '.join(args)}",
        check=check,
    )


def client_urls(machines) -> list[str]:
    return [f"https://{m.ip}:2379" for m in machines]


def members(machine) -> dict[str, list[str]]:
    out = etcdctl(machine, ["https://127.0.0.1:2379"], "member", "list", "-w", "json").out
    return {m.get("name", ""): m.get("peerURLs", []) for m in json.loads(out)["members"]}


def test_dry_run_on_bare_machines_plans_every_join_and_changes_nothing(work, machines):
    r = work.up("--dry-run", timeout=UP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    # cni planned too: the bridge counts on the plugins the runtime phase installs, and says what it will write
    assert "/etc/cni/net.d/10-kubeinit-bridge.conflist will hold this node's podCIDR" in r.stdout, r.stdout
    for i, m in enumerate(machines[1:], start=1):
        before = ", ".join(f"https://{x.ip}:2379" for x in machines[:i])
        assert f"add {m.name} to etcd as a member (through {before})" in r.stdout, r.stdout
        assert f"ca.key, shared, on {machines[0].name}" in r.stdout, r.stdout
    assert machines[1].ssh("test -e /etc/kubernetes/pki/ca.crt", check=False).rc != 0, "a dry run writes nothing"


def test_up_makes_three_control_planes_in_one_run(work, machines):
    r = work.up(timeout=UP_TIMEOUT)
    (work.root / "up.out").write_text(r.stdout + "\n--- stderr\n" + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    for m in machines[1:]:
        assert f"{m.name}: ✓ join/control-plane-join/etcd" in r.stdout, r.stdout


def test_etcd_has_three_members_healthy_over_tls(work, machines):
    assert sorted(members(machines[0])) == sorted(m.name for m in machines)
    health = etcdctl(machines[0], client_urls(machines), "endpoint", "health")
    for url in client_urls(machines):
        assert f"{url} is healthy" in health.out + health.err, health.out + health.err
    # each member answers on its own address, with the certificate made for it
    for m in machines:
        status = etcdctl(m, [f"https://{m.ip}:2379"], "endpoint", "status", "-w", "json").out
        assert json.loads(status)[0]["Status"]["header"]["member_id"], status


def test_each_api_server_answers_readyz(work, machines):
    r = write_kubeconfig(work, work.root / "kc")
    assert r.returncode == 0, r.stdout + r.stderr
    (work.root / "kubeconfig").write_bytes((work.root / "kc").read_bytes())
    for m in machines:
        # the admin kubeconfig's CA checks each server's own certificate at its own address
        ready = kubectl(work, "--server", f"https://{m.ip}:6443", "get", "--raw", "/readyz")
        assert ready.stdout.strip() == "ok", (m.name, ready.stdout, ready.stderr)


def test_three_control_plane_nodes_ready(work, machines):
    for node in wait_nodes_ready(work, machines, "3 nodes Ready"):
        assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"], node["metadata"]
        assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_a_second_up_only_skips(work):
    r = work.up(timeout=UP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout


def test_reset_of_the_third_leaves_two_members_and_a_working_cluster(work, machines):
    third = machines[2]
    r = kubeinit_here(
        work, "reset", "-f", str(work.only(2)), "--yes", "--known-hosts", str(work.known_hosts), timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "remove-etcd-member" in r.stdout, r.stdout
    assert sorted(members(machines[0])) == sorted(m.name for m in machines[:2])
    health = etcdctl(machines[0], client_urls(machines[:2]), "endpoint", "health")
    assert health.out.count("is healthy") + health.err.count("is healthy") == 2, health.out + health.err
    assert third.ssh("systemctl is-active etcd", check=False).out.strip() != "active"
    # the cluster still works through the endpoint: write and read an object
    kubectl(work, "-n", "default", "create", "configmap", "after-reset", "--from-literal=k=v")
    got = json.loads(kubectl(work, "-n", "default", "get", "configmap", "after-reset", "-o", "json").stdout)
    assert got["data"] == {"k": "v"}
    for m in machines[:2]:
        assert kubectl(work, "--server", f"https://{m.ip}:6443", "get", "--raw", "/readyz").stdout.strip() == "ok"
