"""Loopback tier: upgrade's preflight (phases/upgrade_check.py) reads the cluster as the real
kube-apiserver returns it: kube-system/kubeadm-config as kubeinit's upload-config phase wrote it,
and Nodes whose status was posted as a kubelet posts it (create, then PUT .../status), so their
kubeletVersion and Ready condition are what the real server stored. v1.20.2 stands in for the
file's v1.31.4; the upgrade asked is v1.31.4 -> v1.31.5."""

from __future__ import annotations

import dataclasses

import pytest
from loopback import missing

pytestmark = [pytest.mark.real, pytest.mark.skipif(bool(missing()), reason=missing() or "-")]

NODES = {"up-cp": True, "up-w1": True, "up-w2": False}  # name -> Ready


def post_node(client, name: str, ready: bool) -> None:
    """As a kubelet registers: the Node, then its status through the status subresource (again on a
    409: the controller-manager writes the new Node too, its podCIDR and taints)."""
    from kubeinit.kube.client import ApiError

    client.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    cond = (
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
        if ready
        else {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"}
    )
    for _ in range(20):
        node = client.get(f"/api/v1/nodes/{name}")
        node["status"] = {"conditions": [cond], "nodeInfo": {"kubeletVersion": "v1.31.4"}}
        try:
            client.replace(f"/api/v1/nodes/{name}/status", node)
            return
        except ApiError as e:
            if e.code != 409:
                raise
    raise AssertionError(f"node {name}'s status was never written: the object kept changing")


def run(cp, ignore: frozenset[str] = frozenset()):
    from kubeinit import spec as specmod
    from kubeinit.apply import execute
    from kubeinit.commands.upgrade_plan import preflight_phase
    from kubeinit.connection import LocalConnection
    from kubeinit.context import Context, Options, Target
    from kubeinit.spec import Host

    spec = specmod.load_file(str(cp.config))
    hosts = [Host("up-cp", "127.0.0.1"), *(Host(n, "192.0.2.1", "worker") for n in NODES if n != "up-cp")]
    spec = dataclasses.replace(spec, hosts=hosts, kubernetes_version="v1.31.5")
    ctx = Context(
        spec, [Target(h, lambda h: LocalConnection(h.name)) for h in hosts], Options(ignore_preflight_errors=ignore)
    )

    class View:
        def __init__(self):
            self.steps = []

        def step(self, host, phase, step):
            self.steps.append(step)

        def __getattr__(self, name):
            return lambda *a: None

    view = View()
    try:
        execute(ctx, [preflight_phase()], view)
    finally:
        ctx.close()
    return view.steps, ctx.shared


def test_the_check_reads_kubeadm_config_and_nodes_as_the_real_server_returns_them(control_plane):
    from kubeinit.errors import StepFailed
    from kubeinit.kube.client import Client
    from kubeinit.phases.upgrade_check import FROM, STATE
    from kubeinit.steps import Check

    cp = control_plane
    r = cp.phase("upload-config kubeadm")  # kubeadm-config as `up` leaves it (and admin.conf a cluster admin)
    assert r.returncode == 0, r.stdout + r.stderr
    client = Client.from_kubeconfig(cp.admin_conf)
    try:
        for name, ready in NODES.items():
            post_node(client, name, ready)
        with pytest.raises(StepFailed) as e:
            run(cp)
        assert e.value.exit_code == 2
        head = "up-cp: phase preflight failed at 'plan': "
        assert str(e.value).startswith(head), str(e.value)
        why = str(e.value)[len(head) :]  # other tests' Nodes (cp-1, never Ready here) may be named too
        assert "up-w2 is NotReady (KubeletNotReady: container runtime is down)" in why
        assert "up-w1 is" not in why and "up-cp is" not in why

        steps, shared = run(cp, ignore=frozenset({"nodesready"}))
        assert shared[FROM] == "v1.31.4", "the version upload-config wrote, read back"
        ours = [n for n in shared[STATE].nodes if n.name in NODES]
        assert [(n.name, n.ready, n.version) for n in ours] == [
            ("up-cp", True, "v1.31.4"),
            ("up-w1", True, "v1.31.4"),
            ("up-w2", False, "v1.31.4"),
        ]
        upgrade = next(s for s in steps if isinstance(s, Check) and s.name == "Upgrade")
        assert upgrade.passed and upgrade.message == "v1.31.4 -> v1.31.5"
    finally:
        for name in NODES:
            try:
                client.delete(f"/api/v1/nodes/{name}")
            except Exception:  # noqa: BLE001 - one that was never made
                pass
        client.close()
