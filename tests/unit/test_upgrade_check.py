"""upgrade's preflight (phases/upgrade_check.py PREFLIGHT) run by the executor against the API-server
test double: kubeadm-config and the Nodes read through admin.conf, the verdict, the refusals (exit 2,
one line naming the host and the phase, nothing written)."""

from __future__ import annotations

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)
from phase_harness import View, cluster_file, local_context

from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.commands.upgrade_plan import preflight_phase
from kubeinit.errors import StepFailed
from kubeinit.kube.clusterversion import ClusterState
from kubeinit.phases.upgrade_check import FROM, STATE
from kubeinit.steps import Check, Notice

WORKERS = ("w-1", "w-2")


def put_node(cluster, name: str, version: str = "v1.33.1", ready: bool = True, unschedulable: bool = False) -> None:
    """A Node as its kubelet posts it (status.nodeInfo, the Ready condition)."""
    ready_cond = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready"}
    if not ready:
        ready_cond = {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
        }
    cluster.api.objects[("nodes", "", name)] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "namespace": "", "uid": f"{name}-uid", "resourceVersion": "7"},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": [ready_cond], "nodeInfo": {"kubeletVersion": version}},
    }


def put_config(cluster, version: str) -> None:
    """kube-system/kubeadm-config as upload-config writes it (its other fields do not matter here)."""
    config = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "kubernetesVersion": version}
    cluster.api.objects[("configmaps", "kube-system", "kubeadm-config")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system", "uid": "cfg-uid", "resourceVersion": "3"},
        "data": {"ClusterConfiguration": yaml.safe_dump(config)},
    }


def running(cluster, version: str = "v1.33.1", kubelets: str | None = None) -> None:
    put_config(cluster, version)
    for name in ("cp-1", *WORKERS):
        put_node(cluster, name, kubelets or version)


def make_spec(cluster, version: str, workers=WORKERS):
    raw = cluster_file(cluster, kubernetesVersion=version)
    raw["hosts"] += [{"name": w, "address": f"192.0.2.{i + 1}", "role": "worker"} for i, w in enumerate(workers)]
    return specmod.load_documents([raw], source="/work/c.yaml")


def run(cluster, version: str, dry_run: bool = False, ignore: frozenset[str] = frozenset(), workers=WORKERS):
    """The phase on cp-1; what it yielded and ctx.shared."""
    view = View()
    ctx = local_context(make_spec(cluster, version, workers), dry_run=dry_run, ignore_preflight_errors=ignore)
    try:
        execute(ctx, [preflight_phase()], view)
    finally:
        ctx.close()
    steps = [e[3] for e in view.events if e[0] == "step"] + view.steps()
    return steps, ctx.shared


def refusal(cluster, version: str, **kw) -> StepFailed:
    with pytest.raises(StepFailed) as e:
        run(cluster, version, **kw)
    assert e.value.exit_code == 2 and "\n" not in str(e.value) and "resume" not in str(e.value)
    assert str(e.value).startswith("cp-1: phase preflight failed at 'plan': ")
    assert [r for r in cluster.api.requests if r[0] != "GET"] == [], "a refusal writes nothing"
    return e.value


def test_a_patch_upgrade_is_allowed_and_hands_the_clusters_version_on(cluster):
    running(cluster, "v1.33.1")
    steps, shared = run(cluster, "v1.33.2")
    checks = {s.name: s for s in steps if isinstance(s, Check)}
    assert checks["Upgrade"].passed and checks["Upgrade"].message == "v1.33.1 -> v1.33.2"
    assert checks["NodesReady"].passed and checks["NodesReady"].message == "3 nodes Ready"
    assert shared[FROM] == "v1.33.1"
    state = shared[STATE]
    assert isinstance(state, ClusterState) and [n.name for n in state.nodes] == ["cp-1", "w-1", "w-2"]
    assert {n.version for n in state.nodes} == {"v1.33.1"}
    assert [(m, p) for m, p, _ in cluster.api.requests] == [
        ("GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"),
        ("GET", "/api/v1/nodes"),
    ]


def test_the_same_version_finishes_the_hosts_not_yet_upgraded(cluster):
    running(cluster, "v1.33.2", kubelets="v1.33.1")
    steps, shared = run(cluster, "v1.33.2")
    notes = [s.text for s in steps if isinstance(s, Notice)]
    assert notes == ["the cluster already runs v1.33.2: finishing any host not yet upgraded"]
    assert shared[FROM] == "v1.33.2"


@pytest.mark.parametrize(
    ("cluster_version", "target", "says"),
    [
        ("v1.33.2", "v1.33.1", "the cluster runs v1.33.2 and the file says v1.33.1: kubeinit does not downgrade"),
        ("v1.32.4", "v1.34.0", "upgrade one minor at a time: first to v1.33.x"),
    ],
)
def test_a_downgrade_or_a_minor_jump_is_refused_before_anything(cluster, cluster_version, target, says):
    running(cluster, cluster_version)
    assert says in str(refusal(cluster, target))


def test_a_node_not_ready_is_refused_by_name_unless_ignored(cluster):
    running(cluster, "v1.33.1")
    put_node(cluster, "w-2", "v1.33.1", ready=False)
    err = str(refusal(cluster, "v1.33.2"))
    assert "w-2 is NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)" in err
    assert "--ignore-preflight-errors=NodesReady" in err
    steps, shared = run(cluster, "v1.33.2", ignore=frozenset({"nodesready"}))
    ready = next(s for s in steps if isinstance(s, Check) and s.name == "NodesReady")
    assert not ready.passed and not ready.fatal and ready.message.endswith("(ignored)")
    assert shared[FROM] == "v1.33.1"


def test_a_host_of_the_file_that_is_not_a_node_is_refused(cluster):
    running(cluster, "v1.33.1")
    del cluster.api.objects[("nodes", "", "w-2")]
    err = str(refusal(cluster, "v1.33.2"))
    assert "w-2 of the file is not a Node of the cluster: join it first" in err
    assert "`kubeinit up -f /work/c.yaml` with kubernetesVersion: v1.33.1" in err


def test_a_node_outside_the_file_and_a_skewed_kubelet_are_shown_not_refused(cluster):
    running(cluster, "v1.33.1")
    put_node(cluster, "w-1", "v1.31.0")
    steps, _ = run(cluster, "v1.34.0", workers=("w-1",))
    notes = [s.text for s in steps if isinstance(s, Notice)]
    assert notes == ["node w-2 is not a host of the file: it is not upgraded (its kubelet is v1.33.1)"]
    skew = [s for s in steps if isinstance(s, Check) and s.name == "KubeletVersion"]
    assert len(skew) == 1 and not skew[0].fatal and "node w-1's kubelet v1.31.0 is more than 1 minor" in skew[0].message


def test_a_cluster_without_kubeadm_config_is_refused(cluster):
    for name in ("cp-1", *WORKERS):
        put_node(cluster, name)
    err = str(refusal(cluster, "v1.33.2"))
    assert "cluster 'lab' has no ConfigMap kube-system/kubeadm-config" in err and "kubeinit up -f /work/c.yaml" in err


def test_a_dry_run_shows_an_unreachable_server_as_a_notice_and_a_real_run_stops(cluster):
    running(cluster, "v1.33.1")
    cluster.api.stop()
    steps, shared = run(cluster, "v1.33.2", dry_run=True)
    assert shared[FROM] is None and STATE not in shared
    (note,) = [s.text for s in steps if isinstance(s, Notice)]
    assert (
        note.startswith("the cluster's version and Nodes cannot be read yet (") and "connection refused" in note.lower()
    )
    with pytest.raises(StepFailed) as e:
        run(cluster, "v1.33.2")
    assert e.value.exit_code == 1 and "cp-1: phase preflight failed" in str(e.value)
