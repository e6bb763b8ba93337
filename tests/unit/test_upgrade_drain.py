"""kube/drain.py against the RBAC-strict API double: cordon with kubeinit's annotation, evictions as
`kubectl drain --ignore-daemonsets --delete-emptydir-data` makes them (retried while a
PodDisruptionBudget answers 429), the wait until the pods are gone, the node wait, uncordon, and
every step again after a kill."""

from __future__ import annotations

import apiserver_pods as pods
import pytest
from apiserver import cluster  # noqa: F401 (fixture)

from kubeinit.kube import drain
from kubeinit.kube.client import ApiError, Client

NODE = "w-1"
OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8", "uid": "rs-uid", "controller": True}


def add_node(api, name: str = NODE, unschedulable: bool = False, annotated: bool = False, ready: bool = True):
    """The Node as its kubelet registered it (written straight into the double's store)."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"{name}-uid",
            "resourceVersion": api._next_rv(),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": name},
            "annotations": {drain.ANNOTATION: "true"} if annotated else {},
        },
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.31.5"},
        },
    }
    api.objects[("nodes", "", name)] = node
    return node


def pod(name: str, node: str = NODE, ns: str = "default", owner: dict | None = OWNER, **meta) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app": name},
            **meta,
            **({"ownerReferences": [owner]} if owner else {}),
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }


@pytest.fixture
def admin(cluster):  # noqa: F811
    return Client.from_kubeconfig(cluster.admin_conf)


def create(client: Client, *objs: dict) -> None:
    for o in objs:
        client.create(f"/api/v1/namespaces/{o['metadata']['namespace']}/pods", o)


def kubelet_sleep(api, node: str = NODE, then=None):
    """A sleep during which the node's kubelet finishes the pods it was told to stop."""

    def sleep(_seconds: float) -> None:
        pods.kubelet_confirms(api, node)
        if then is not None:
            then()

    return sleep


def evictions(api) -> list[str]:
    return [path.split("/")[-2] for method, path, _ in api.requests if method == "POST" and path.endswith("/eviction")]


def test_drain_cordons_and_evicts_what_kubectl_drain_evicts(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)
    add_node(api, "w-2")
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "proxy", "namespace": "kube-system"}}
    admin.create("/apis/apps/v1/namespaces/kube-system/daemonsets", {**ds, "spec": {}})
    ds_owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "uid": "ds-uid", "controller": True}
    mirror = {"annotations": {drain.MIRROR: "abc"}}
    create(
        admin,
        pod("web"),
        pod("cache", owner={**OWNER, "name": "cache-1"}),
        pod("proxy-x", ns="kube-system", owner=ds_owner),
        pod("kube-apiserver-w-1", ns="kube-system", owner=None, **mirror),
        pod("elsewhere", node="w-2"),
    )
    create(admin, pod("done", owner=None))
    pods.set_status(api, "default", "done", "Succeeded", False)  # finished: removed though unmanaged

    drain.drain(admin, NODE, timeout=60, sleep=kubelet_sleep(api))

    node = api.objects[("nodes", "", NODE)]
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"][drain.ANNOTATION] == "true"
    assert node["metadata"]["labels"] == {"kubernetes.io/hostname": NODE}, "the Node's own fields are kept"
    left = sorted(k[2] for k in api.objects if k[0] == "pods")
    assert left == ["elsewhere", "kube-apiserver-w-1", "proxy-x"]
    assert sorted(evictions(api)) == ["cache", "done", "web"]
    assert api.objects[("nodes", "", "w-2")]["spec"] == {}


def test_the_eviction_waits_for_the_kubelet_to_finish_the_pod(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)
    create(admin, pod("web"))
    seen = []

    def sleep(_s):  # the pod is terminating (grace 30 s) until its kubelet confirms it
        seen.append(api.objects[("pods", "default", "web")]["metadata"].get("deletionTimestamp"))
        if len(seen) == 3:
            pods.kubelet_confirms(api, NODE)

    drain.drain(admin, NODE, timeout=60, sleep=sleep)
    assert len(seen) == 3 and all(seen), "drain waited while the pod was terminating"
    assert ("pods", "default", "web") not in api.objects
    assert evictions(api) == ["web"], "evicted once, then waited"


def test_a_disruption_budget_is_retried_until_it_allows_the_eviction(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)
    create(admin, pod("web"))
    pods.set_status(api, "default", "web", "Running", True)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }
    admin.create("/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb)
    budget = api.objects[("poddisruptionbudgets", "default", "web")]
    budget["status"] = {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    now = [0.0]

    def tick():
        now[0] += 1.0
        if now[0] == 12:  # another replica became Ready elsewhere: the disruption controller allows one
            budget["status"]["disruptionsAllowed"] = 1

    drain.drain(admin, NODE, timeout=60, retry=5, sleep=kubelet_sleep(api, then=tick), clock=lambda: now[0])
    assert evictions(api) == ["web"] * 4, "asked at 0, 5 and 10 s (429), then at 15 s"
    assert ("pods", "default", "web") not in api.objects
    assert budget["status"]["disruptionsAllowed"] == 0


def test_a_budget_that_never_allows_it_ends_in_one_sentence_naming_the_pods(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)
    create(admin, pod("web"), pod("db", owner={**OWNER, "kind": "StatefulSet", "name": "db"}))
    pods.set_status(api, "default", "web", "Running", True)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}},
    }
    admin.create("/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb)  # no status yet: 429 too
    now = [0.0]

    def tick(_s):
        now[0] += 1.0

    with pytest.raises(drain.DrainFailed) as e:
        drain.drain(admin, NODE, timeout=20, sleep=tick, clock=lambda: now[0])
    msg = str(e.value)
    assert msg.startswith(f"node {NODE} was not drained within 20 s: pods left: ")
    assert "default/web (a PodDisruptionBudget allows no disruption now" in msg
    assert "default/db (terminating)" in msg, "the evicted pod its kubelet never finished"
    assert "\n" not in msg
    assert api.objects[("nodes", "", NODE)]["spec"]["unschedulable"] is True, "left cordoned: a re-run goes on"


def test_a_pod_without_a_controller_is_refused_before_the_node_is_touched(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)
    rv = api.objects[("nodes", "", NODE)]["metadata"]["resourceVersion"]
    create(admin, pod("web"), pod("debug", owner=None))
    with pytest.raises(
        drain.DrainFailed, match=r"node w-1 cannot be drained: pod default/debug declares no controller"
    ):
        drain.drain(admin, NODE, timeout=60, sleep=kubelet_sleep(api))
    assert api.objects[("nodes", "", NODE)]["metadata"]["resourceVersion"] == rv, "not cordoned"
    assert evictions(api) == [] and ("pods", "default", "web") in api.objects


def test_a_daemonset_pod_whose_daemonset_is_gone_is_refused(cluster, admin):  # noqa: F811
    add_node(cluster.api)
    gone = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "old", "uid": "x", "controller": True}
    create(admin, pod("old-x", owner=gone))
    with pytest.raises(
        drain.DrainFailed, match=r"pod default/old-x declares no controller \(or its DaemonSet is gone\)"
    ):
        drain.drain(admin, NODE, timeout=60)


def test_a_node_its_user_cordoned_is_drained_but_stays_cordoned(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api, unschedulable=True)
    create(admin, pod("web"))
    drain.drain(admin, NODE, timeout=60, sleep=kubelet_sleep(api))
    node = api.objects[("nodes", "", NODE)]
    assert drain.ANNOTATION not in node["metadata"]["annotations"] and node["spec"]["unschedulable"] is True
    writes = [r for r in api.requests if r[0] == "PUT"]
    drain.uncordon(admin, NODE)
    assert api.objects[("nodes", "", NODE)]["spec"]["unschedulable"] is True, "the user's cordon stays"
    assert [r for r in api.requests if r[0] == "PUT"] == writes == []


def test_killed_after_the_cordon_a_rerun_goes_on_and_uncordon_undoes_it_once(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api, unschedulable=True, annotated=True)  # what the stopped run left
    create(admin, pod("web"))
    drain.drain(admin, NODE, timeout=60, sleep=kubelet_sleep(api))
    assert evictions(api) == ["web"]
    drain.uncordon(admin, NODE)
    node = api.objects[("nodes", "", NODE)]
    assert "unschedulable" not in node["spec"] and drain.ANNOTATION not in node["metadata"]["annotations"]
    puts = len([r for r in api.requests if r[0] == "PUT"])
    drain.uncordon(admin, NODE)  # again (a run killed after its uncordon): nothing to write
    assert len([r for r in api.requests if r[0] == "PUT"]) == puts == 1


def test_a_node_its_kubelet_updates_meanwhile_is_written_again(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api)

    class Busy(Client):  # the kubelet writes the Node between kubeinit's read and its write, once
        raced = False

        def replace(self, path, obj):
            if not Busy.raced:
                Busy.raced = True
                api.objects[("nodes", "", NODE)]["metadata"]["resourceVersion"] = api._next_rv()
            return super().replace(path, obj)

    busy = Busy.from_kubeconfig(cluster.admin_conf)
    drain.cordon(busy, NODE)
    assert Busy.raced and api.objects[("nodes", "", NODE)]["spec"]["unschedulable"] is True
    assert [r[0] for r in api.requests if r[0] in ("PUT",)] == ["PUT", "PUT"], "409, then read and written again"


def test_an_unregistered_node_is_one_sentence(cluster, admin):  # noqa: F811
    with pytest.raises(drain.DrainFailed, match=r"^node w-1 is not registered in the cluster; is its kubelet running"):
        drain.drain(admin, NODE, timeout=60)


def test_the_eviction_version_comes_from_discovery_and_rbac_is_the_servers(cluster, admin):  # noqa: F811
    assert drain.eviction_version(admin) == "policy/v1"
    add_node(cluster.api)
    create(admin, pod("web"))
    nobody = Client.from_kubeconfig(cluster.kubeconfig("scheduler.conf"))  # no rights on pods here
    with pytest.raises(ApiError) as e:
        nobody.create(
            "/api/v1/namespaces/default/pods/web/eviction",
            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web", "namespace": "default"}},
        )
    assert e.value.code == 403 and 'cannot create resource "pods/eviction"' in e.value.detail
    with pytest.raises(ApiError) as e:  # the version discovery does not name: refused as the real server does
        admin.create(
            "/api/v1/namespaces/default/pods/web/eviction",
            {"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "web", "namespace": "default"}},
        )
    assert e.value.code == 400


APISERVER = "registry.k8s.io/kube-apiserver:"


def control_plane_want() -> dict:
    return {
        "node": "cp-1",
        "kubelet": "v1.31.5",
        "pods": {
            "kube-apiserver-cp-1": {
                "image": "registry.k8s.io/kube-apiserver:v1.31.5",
                "command": ["kube-apiserver", "--a=1"],
            }
        },
    }


def mirror_pod(image: str, ready: bool) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver-cp-1",
            "namespace": "kube-system",
            "uid": "m",
            "annotations": {drain.MIRROR: "h"},
        },
        "spec": {
            "nodeName": "cp-1",
            "containers": [{"name": "kube-apiserver", "image": image, "command": ["kube-apiserver", "--a=1"]}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_wait_passes_at_once_on_a_converged_node_and_polls_until_the_new_pods_are_ready(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api, "cp-1")
    want = control_plane_want()

    def mirror(tag: str, ready: bool) -> None:  # what cp-1's kubelet posts for its static pod
        api.objects[("pods", "kube-system", "kube-apiserver-cp-1")] = mirror_pod(APISERVER + tag, ready)

    mirror("v1.31.5", True)
    assert drain.pending(admin, want) == []
    mirror("v1.31.4", True)
    assert drain.pending(admin, want) == [
        f"kube-apiserver-cp-1 runs {APISERVER}v1.31.4, not its manifest's {APISERVER}v1.31.5"
    ]
    then = iter([lambda: mirror("v1.31.5", False), lambda: mirror("v1.31.5", True)])
    slept = []
    drain.wait(admin, want, 60, sleep=lambda s: (slept.append(s), next(then)()))
    assert len(slept) == 2, "old image, then new but not Ready, then done"


def test_wait_wants_the_kubelet_version_asked_and_says_what_is_missing_when_it_times_out(cluster, admin):  # noqa: F811
    api = cluster.api
    add_node(api, "cp-1", ready=False)
    api.objects[("nodes", "", "cp-1")]["status"]["nodeInfo"]["kubeletVersion"] = "v1.31.4"
    now = [0.0]
    checks = []
    with pytest.raises(drain.DrainFailed) as e:
        drain.wait(
            admin,
            control_plane_want(),
            10,
            check=lambda: checks.append(1),
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )
    msg = str(e.value)
    assert msg.startswith("node cp-1 was not back within 10 s: node cp-1 is not Ready (KubeletReady); ")
    assert "node cp-1 reports kubelet v1.31.4, not v1.31.5" in msg and "kube-apiserver-cp-1 is not there yet" in msg
    assert checks, "the kubelet's unit is watched between polls"


def test_wait_asks_again_while_the_api_server_restarts(tmp_path):
    from apiserver import make_cluster

    c = make_cluster(tmp_path / "c", start=False)  # the API server restarting on its new manifest
    c.api.starting(forbidden=1, unready=0)  # once up, 403 to all but system:masters until its RBAC is loaded
    try:
        add_node(c.api, "cp-1")
        admin = Client.from_kubeconfig(c.admin_conf)
        want = {"node": "cp-1", "kubelet": "v1.31.5", "pods": {}}
        answers = []

        def sleep(_s):
            answers.append([r[0] for r in c.api.requests])
            if c.api._thread is None:
                c.start()  # refused until now
            else:
                c.api._boot.clear()  # its RBAC loaded

        drain.wait(admin, want, 60, sleep=sleep)
        assert len(answers) == 2 and answers[0] == [] and answers[1] == ["GET"], "refused, 403, then answered"
    finally:
        c.api.stop()
