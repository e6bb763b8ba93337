"""The end of `up` / `init` with every phase: the Nodes (read through the API-server double as
the cluster admin), their roles and readiness, each phase's time and the kubectl line; a run
with --only ends as before."""

from __future__ import annotations

import pytest
from apiserver import make_cluster

from kubeinit import runner, ui, workflow
from kubeinit import spec as specmod
from kubeinit.apply import Summary
from kubeinit.cluster_summary import Nodes, kubectl_line, phase_times, read, show
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.kube.nodestate import NodeState, node_state, wait_ready


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path / "cluster")
    yield c
    c.api.stop()


@pytest.fixture(autouse=True)
def plain_output(monkeypatch):
    """ui's console as a pipe sees it (the test's capsys), whatever an earlier test made."""
    monkeypatch.setattr(ui, "_console", ui._Plain(stderr=False))
    monkeypatch.setattr(ui, "_err_console", ui._Plain(stderr=True))


def node(name: str, ready: str | None = "True", labels=(), unschedulable=False, version="v1.31.4") -> dict:
    conditions = (
        []
        if ready is None
        else [
            {"type": "MemoryPressure", "status": "False"},
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
                "message": "" if ready == "True" else "network plugin is not ready: cni config uninitialized",
            },
        ]
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "namespace": "", "uid": name, "labels": {k: "" for k in labels}},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": version}},
    }


CP = ("node-role.kubernetes.io/control-plane", "kubernetes.io/hostname")


def test_a_node_shows_as_kubectl_shows_it_and_an_unlabelled_node_is_a_worker():
    cp = node_state(node("cp-1", labels=CP))
    assert (cp.name, cp.status, cp.role, cp.version, cp.why) == ("cp-1", "Ready", "control-plane", "v1.31.4", "")
    w = node_state(node("w-1", ready="False"))
    assert (w.status, w.role) == ("NotReady", "worker")
    assert w.why == "KubeletNotReady: network plugin is not ready: cni config uninitialized"
    assert node_state(node("w-2", ready="Unknown")).status == "NotReady"
    fresh = node_state(node("w-3", ready=None))
    assert (fresh.ready, fresh.why) == (False, "no Ready condition yet")
    cordoned = node_state(node("w-4", unschedulable=True, labels=("node-role.kubernetes.io/infra",)))
    assert (cordoned.status, cordoned.role) == ("Ready,SchedulingDisabled", "infra")


def test_waiting_reads_again_until_every_named_node_is_ready_and_no_longer():
    answers = iter(
        [
            [node_state(node("a"))],  # b not registered yet
            [node_state(node("a")), node_state(node("b", ready="False"))],
            [node_state(node("a")), node_state(node("b"))],
        ]
    )
    now = [0.0]
    got = wait_ready(lambda: next(answers), ["a", "b"], 60, sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert [n.ready for n in got] == [True, True] and now[0] == 4.0
    never = [node_state(node("a", ready="False"))]
    reads = []
    got = wait_ready(
        lambda: reads.append(1) or never,
        ["a"],
        10,
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        clock=lambda: now[0],
    )
    assert got == never and len(reads) == 6  # at 0, 2, ... 10 s: bounded


def test_phase_times_add_up_each_top_level_phase_in_run_order():
    times = {"preflight": 1.0, "certs/ca": 0.25, "certs/apiserver": 0.5, "join/bootstrap-token": 0.5, "cni": 2.0}
    assert phase_times(times) == [("preflight", 1.0), ("certs", 0.75), ("join", 0.5), ("cni", 2.0)]


def test_the_kubectl_line_of_up_and_of_init():
    assert kubectl_line("my cluster.yaml", "/k/h", "/etc/kubernetes/admin.conf") == (
        "kubectl: `kubeinit kubeconfig -f 'my cluster.yaml' --known-hosts /k/h` puts the cluster's admin entry "
        "in ~/.kube/config (or $KUBECONFIG), then `kubectl get nodes`"
    )
    assert "--known-hosts" not in kubectl_line("c.yaml", None, "/etc/kubernetes/admin.conf")
    assert kubectl_line(None, None, "/etc/kubernetes/admin.conf") == (
        "kubectl: `kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes` (as root: admin.conf is 0600)"
    )


def context(cluster, workers: int = 2, cni: str = "bridge") -> Context:
    hosts = [{"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"}]
    hosts += [{"name": f"w-{i}", "address": f"127.0.0.{i + 1}", "role": "worker"} for i in range(1, workers + 1)]
    spec = specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "lab",
            "kubernetesVersion": "v1.33.1",
            "bindPort": cluster.api.port,
            "kubeconfigDir": str(cluster.root),
            "networking": {"cni": cni, **({"podSubnet": ""} if cni == "none" else {})},
            "hosts": hosts,
        }
    )
    return Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options())


def register(cluster, *nodes: dict) -> None:
    for n in nodes:
        cluster.api.objects[("nodes", "", n["metadata"]["name"])] = n


def test_the_nodes_are_read_as_the_cluster_admin_in_one_get_when_nothing_changed(cluster):
    register(cluster, node("cp-1", labels=CP), node("w-1"), node("w-2", ready="False"))
    ctx = context(cluster)
    try:
        before = len(cluster.api.requests)
        got = read(ctx, ["cp-1", "w-1", "w-2"], wait=False)
    finally:
        ctx.close()
    assert got.error == "" and got.waited == 0
    assert [(n.name, n.status, n.role) for n in got.nodes] == [
        ("cp-1", "Ready", "control-plane"),
        ("w-1", "Ready", "worker"),
        ("w-2", "NotReady", "worker"),
    ]
    assert [(m, p) for m, p, _ in cluster.api.requests[before:]] == [("GET", "/api/v1/nodes")]
    assert {u for _, _, u in cluster.api.requests[before:]} == {"kubernetes-admin"}


def test_after_a_change_the_run_waits_for_a_node_still_starting(cluster, monkeypatch, capsys):
    register(cluster, node("cp-1", labels=CP), node("w-1", ready="False"))
    ctx = context(cluster, workers=1)
    reads = []

    def later(read, names, timeout, **_):  # the kubelet reports Ready while the run waits
        reads.append(timeout)
        register(cluster, node("w-1"))
        return read()

    monkeypatch.setattr("kubeinit.kube.nodestate.wait_ready", later)
    try:
        got = read(ctx, ["cp-1", "w-1"], wait=True)
    finally:
        ctx.close()
    assert reads == [90.0] and [n.status for n in got.nodes] == ["Ready", "Ready"] and got.waited > 0
    assert "waiting up to 90 s for every node to be Ready" in capsys.readouterr().out


def test_no_pod_network_is_not_waited_for(cluster, monkeypatch):
    register(cluster, node("cp-1", labels=CP, ready="False"))
    monkeypatch.setattr("kubeinit.kube.nodestate.wait_ready", lambda *a, **k: pytest.fail("waited"))
    ctx = context(cluster, workers=0, cni="none")
    try:
        got = read(ctx, ["cp-1"], wait=True)
    finally:
        ctx.close()
    assert got.no_network and got.nodes[0].status == "NotReady"


def test_the_summary_shows_each_node_the_unregistered_ones_and_the_kubectl_line(capsys):
    nodes = Nodes(
        ["cp-1", "w-1", "w-2"],
        [
            NodeState("cp-1", True, ("control-plane",), "v1.31.4"),
            NodeState("w-1", False, (), "v1.31.4", "KubeletNotReady: cni config uninitialized"),
        ],
        waited=90.0,
    )
    show(nodes, {"preflight": 1.04, "certs/ca": 0.5, "certs/apiserver": 0.5}, "kubectl: LINE")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "time per phase: preflight 1.0s, certs 1.0s"
    assert lines[1].split() == ["node", "status", "roles", "version"]
    assert lines[3].split() == ["cp-1", "Ready", "control-plane", "v1.31.4"]
    assert lines[4].split()[:4] == ["w-1", "NotReady", "worker", "v1.31.4"]
    assert lines[4].endswith("KubeletNotReady: cni config uninitialized")
    assert lines[5].split()[:3] == ["w-2", "not", "registered"]
    assert lines[-1] == "kubectl: LINE"
    assert "1 of 3 nodes Ready after 90 s" in err and "kubectl get nodes -w" in err


def test_all_ready_is_said_plainly_and_an_unreadable_cluster_is_a_warning_not_a_failure(capsys):
    show(Nodes(["cp-1"], [NodeState("cp-1", True, ("control-plane",))]), {"cni": 1.0}, "kubectl: LINE")
    out, err = capsys.readouterr()
    assert "✓ 1 of 1 nodes Ready" in out and err == ""
    show(Nodes(["cp-1"], error="the nodes could not be read through cp-1's API server: refused"), {}, "kubectl: LINE")
    out, err = capsys.readouterr()
    assert "could not be read through cp-1's API server" in err and out.endswith("kubectl: LINE\n")


def test_an_unreachable_api_server_is_named_not_raised(cluster):
    ctx = context(cluster, workers=0)
    cluster.api.stop()
    try:
        got = read(ctx, ["cp-1"], wait=True)
    finally:
        ctx.close()
    assert got.error.startswith("the nodes could not be read through cp-1's API server: ")


def test_the_runner_ends_a_whole_run_with_the_cluster(cluster, capsys):
    register(cluster, node("cp-1", labels=CP), node("w-1"), node("w-2"))
    ctx = context(cluster)
    run = runner.Run(
        "up", ctx.spec, [], lambda p: "", runner.skip_hint, ssh=runner.SSH("/k/h"), whole=True, file="c.yaml"
    )
    summary = Summary(["preflight", "cni"], {"cp-1": 0}, {"cp-1": 3}, 2.0, {"preflight": 0.5, "cni": 1.5})
    try:
        runner._cluster(run, ctx, summary)
    finally:
        ctx.close()
    out = capsys.readouterr().out
    assert "time per phase: preflight 0.5s, cni 1.5s" in out
    assert "✓ 3 of 3 nodes Ready" in out
    assert out.splitlines()[-1].startswith("kubectl: `kubeinit kubeconfig -f c.yaml --known-hosts /k/h`")


def test_only_up_and_init_with_every_phase_end_with_the_cluster(tmp_path, monkeypatch):
    file = tmp_path / "c.yaml"
    file.write_text(
        "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\n"
        "hosts:\n- {name: cp-1, address: 10.0.0.1, role: control-plane}\n"
    )
    ssh = runner.SSH()
    whole = runner.file_run("up", file, workflow.up_phases(), None, ["cni"], ssh, False)
    assert whole.whole and whole.file == str(file)
    assert not runner.file_run("up", file, workflow.up_phases(), ["preflight,runtime"], None, ssh, False).whole
    assert not runner.file_run("reset", file, workflow.reset_phases(), None, None, ssh, False).whole

    runs = []
    monkeypatch.setattr(runner, "run_workflow", runs.append)
    from kubeinit.cli import lifecycle

    lifecycle.run_init(None, config=str(file), dry_run=True)
    lifecycle.run_init("certs/ca", config=str(file), dry_run=True)
    assert [r.whole for r in runs] == [True, False] and runs[0].file is None
