"""Loopback tier: upgrade's node verbs (kube/drain.py, through objects.call as the executor calls them)
against the real kube-apiserver, controller-manager and scheduler (loopback.py): the Eviction group
version discovery names, a cordon with kubeinit's annotation, evictions the real server answers
(201, 429 while a PodDisruptionBudget the real disruption controller keeps allows no disruption),
pods that terminate only once their kubelet confirms it, the node wait over the real objects, and
the uncordon.

No kubelet runs for the Node here (it is registered by the test, with the status a kubelet posts):
a pod bound to it and evicted keeps its deletionTimestamp until its kubelet deletes it for good, so
a thread does what that kubelet does once the containers stopped (DELETE with gracePeriodSeconds 0);
a pod with terminationGracePeriodSeconds 0 is deleted by the server at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from loopback import missing, wait_for

from kubeinit.kube import drain, objects
from kubeinit.kube.client import ApiError, Client
from kubeinit.steps import ApiCall

pytestmark = [pytest.mark.real, pytest.mark.skipif(bool(missing()), reason=missing() or "-")]

NS, NODE = "drain-test", "w-9"
PODS = f"/api/v1/namespaces/{NS}/pods"
IMAGE = "registry.k8s.io/kube-apiserver:"
PDBS = f"/apis/policy/v1beta1/namespaces/{NS}/poddisruptionbudgets"  # the version v1.20 serves


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def clients(control_plane):
    """admin.conf (a cluster admin, as init's binding makes it) for kubeinit; super-admin.conf plays
    the kubelet and the user."""
    cp = control_plane
    if cp.kubectl("get", "clusterrolebinding", "kubeadm:cluster-admins").returncode != 0:
        r = cp.kubectl(
            "create",
            "clusterrolebinding",
            "kubeadm:cluster-admins",
            "--clusterrole=cluster-admin",
            "--group=kubeadm:cluster-admins",
            kubeconfig=cp.etc / "super-admin.conf",
        )
        assert r.returncode == 0, r.stderr
    admin = Counting.from_kubeconfig(cp.admin_conf)
    sup = Client.from_kubeconfig(cp.etc / "super-admin.conf")
    admin.writes = []
    wait_for("admin.conf a cluster admin", lambda: _can_list_nodes(admin), 30)
    sup.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: _exists(sup, f"/api/v1/namespaces/{NS}/serviceaccounts/default"),
        60,
    )
    yield admin, sup
    admin.close()
    sup.close()


class Counting(Client):
    """kubeinit's client, its writes to Nodes noted (the node controller writes them too: their
    resourceVersion cannot tell)."""

    writes: list[str]

    def replace(self, path: str, obj: dict) -> dict:
        if path.startswith("/api/v1/nodes/"):
            self.writes.append(path)
        return super().replace(path, obj)


def _can_list_nodes(c: Client) -> bool:
    try:
        c.list("/api/v1/nodes")
        return True
    except ApiError:
        return False


def _exists(c: Client, path: str) -> bool:
    try:
        c.get(path)
        return True
    except ApiError as e:
        if e.code == 404:
            return False
        raise


def register(sup: Client, name: str) -> None:
    """The Node as its kubelet registers it and posts its status (Ready, its version)."""
    sup.create(
        "/api/v1/nodes",
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}},
    )
    post_status(sup, name)


def post_status(sup: Client, name: str) -> None:
    """As a kubelet posts it: read again when the node controller wrote the Node meanwhile (409)."""
    for _ in range(20):
        node = sup.get(f"/api/v1/nodes/{name}")
        node["status"]["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now(),
                "lastTransitionTime": now(),
            }
        ]
        node["status"]["nodeInfo"]["kubeletVersion"] = "v1.20.2"
        try:
            sup.replace(f"/api/v1/nodes/{name}/status", node)
            return
        except ApiError as e:
            if e.reason != "Conflict":
                raise
    raise AssertionError(f"node {name}'s status could not be posted")


def owner(sup: Client) -> dict:
    """A controller owner no controller acts on (a ConfigMap): kubectl drain asks only that a pod has one,
    and the garbage collector keeps a pod whose owner exists."""
    cm = sup.create(
        f"/api/v1/namespaces/{NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}
    )
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm["metadata"]["uid"], "controller": True}


def pod(name: str, ref: dict | None, node: str = NODE, ns: str = NS, **spec) -> dict:
    meta = {"name": name, "namespace": ns, "labels": {"app": name}, **({"ownerReferences": [ref]} if ref else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def running(sup: Client, name: str, ns: str = NS, ready: bool = True) -> None:
    """What the pod's kubelet posts once it runs."""
    p = sup.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    p["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    sup.replace(f"/api/v1/namespaces/{ns}/pods/{name}/status", p)


class Kubelet(threading.Thread):
    """The node's kubelet, as far as deletion goes: a pod that is terminating is deleted for good."""

    def __init__(self, sup: Client):
        super().__init__(daemon=True)
        self.sup, self.done, self.finished = sup, threading.Event(), []

    def run(self) -> None:
        while not self.done.is_set():
            for p in self.sup.list("/api/v1/pods", field_selector=f"spec.nodeName={NODE}").get("items") or []:
                meta = p["metadata"]
                if meta.get("deletionTimestamp"):
                    try:
                        self.sup.request(
                            "DELETE",
                            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                            body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
                        )
                        self.finished.append(meta["name"])
                    except ApiError as e:
                        if e.code != 404:
                            raise
            time.sleep(0.2)


def names(c: Client) -> list[str]:
    return sorted(
        p["metadata"]["name"] for p in c.list("/api/v1/pods", field_selector=f"spec.nodeName={NODE}")["items"]
    )


def test_drain_wait_and_uncordon_on_the_real_server(clients):
    admin, sup = clients
    assert drain.eviction_version(admin) == "policy/v1beta1", "v1.20's discovery names policy/v1beta1"
    register(sup, NODE)
    ref = owner(sup)
    for p in (pod("web-quick", ref, terminationGracePeriodSeconds=0), pod("web-slow", ref), pod("guarded", ref)):
        sup.create(PODS, p)
    running(sup, "guarded")
    sup.create(
        PDBS,
        {
            "apiVersion": "policy/v1beta1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    wait_for(
        "the disruption controller's status",
        lambda: (sup.get(f"{PDBS}/guarded").get("status") or {}).get("currentHealthy") == 1,
        30,
    )

    # a pod with no controller: refused before the Node is touched
    sup.create(PODS, pod("debug", None))
    with pytest.raises(
        drain.DrainFailed, match=rf"node {NODE} cannot be drained: pod {NS}/debug declares no controller"
    ):
        objects.call(admin, ApiCall("drain", drain.node_path(NODE), timeout=30))
    assert not sup.get(f"/api/v1/nodes/{NODE}")["spec"].get("unschedulable") and admin.writes == []
    sup.request("DELETE", f"{PODS}/debug", body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})

    kubelet = Kubelet(sup)
    kubelet.start()
    try:
        # the budget allows no disruption: the real server answers 429 to every try, the drain ends in one sentence
        with pytest.raises(drain.DrainFailed) as e:
            drain.drain(admin, NODE, timeout=6, retry=1)
        msg = str(e.value)
        assert msg.startswith(f"node {NODE} was not drained within 6 s: pods left: {NS}/guarded (a PodDisruptionBudget")
        assert "Cannot evict pod as it would violate the pod's disruption budget" in msg and "web" not in msg
        node = sup.get(f"/api/v1/nodes/{NODE}")
        assert node["spec"]["unschedulable"] is True and node["metadata"]["annotations"][drain.ANNOTATION] == "true"
        assert names(sup) == ["guarded"], "the others evicted: web-quick at once, web-slow once its kubelet confirmed"
        assert "web-slow" in kubelet.finished and "web-quick" not in kubelet.finished

        # the budget lets one go now: the re-run goes on from the cordoned Node
        pdb = sup.get(f"{PDBS}/guarded")
        pdb["spec"]["minAvailable"] = 0
        sup.replace(f"{PDBS}/guarded", pdb)
        objects.call(admin, ApiCall("drain", drain.node_path(NODE), timeout=60))
        assert names(sup) == []
    finally:
        kubelet.done.set()
        kubelet.join(timeout=5)

    # back: the Node Ready on its kubelet's version (the status its kubelet posts on start)
    post_status(sup, NODE)
    want = {"node": NODE, "kubelet": "v1.20.2", "pods": {}}
    assert drain.pending(admin, want) == []
    assert drain.pending(admin, {**want, "kubelet": "v1.31.5"}) == [f"node {NODE} reports kubelet v1.20.2, not v1.31.5"]
    objects.call(admin, ApiCall("wait-node", drain.node_path(NODE), want, timeout=30))

    objects.call(admin, ApiCall("uncordon", drain.node_path(NODE)))
    node = sup.get(f"/api/v1/nodes/{NODE}")
    assert not node["spec"].get("unschedulable") and drain.ANNOTATION not in (node["metadata"].get("annotations") or {})
    writes = len(admin.writes)
    objects.call(admin, ApiCall("uncordon", drain.node_path(NODE)))  # again: nothing to write
    assert len(admin.writes) == writes


def test_a_node_its_user_cordoned_stays_cordoned(clients, control_plane):
    admin, sup = clients
    register(sup, "w-8")
    r = control_plane.kubectl("cordon", "w-8")
    assert r.returncode == 0, r.stderr
    drain.drain(admin, "w-8", timeout=30)
    drain.uncordon(admin, "w-8")
    node = sup.get("/api/v1/nodes/w-8")
    assert node["spec"]["unschedulable"] is True and drain.ANNOTATION not in (node["metadata"].get("annotations") or {})


def test_the_control_plane_wait_reads_the_mirror_pods_the_server_keeps(clients):
    """A static pod's mirror as its kubelet creates it (the config.mirror annotation), read back as the
    real server returns it: image and command as the manifest has them, Ready once the kubelet says so."""
    admin, sup = clients
    register(sup, "cp-9")
    command = ["kube-apiserver", "--advertise-address=127.0.0.1", "--secure-port=6443"]
    mirror = pod("kube-apiserver-cp-9", None, node="cp-9", ns="kube-system")
    mirror["metadata"]["annotations"] = {drain.MIRROR: "0123abcd", "kubernetes.io/config.source": "file"}
    mirror["spec"]["containers"] = [{"name": "kube-apiserver", "image": IMAGE + "v1.31.5", "command": command}]
    sup.create("/api/v1/namespaces/kube-system/pods", mirror)
    want = {
        "node": "cp-9",
        "kubelet": "v1.20.2",
        "pods": {"kube-apiserver-cp-9": {"image": IMAGE + "v1.31.5", "command": command}},
    }
    assert drain.pending(admin, want) == ["kube-apiserver-cp-9 is not Ready"]
    running(sup, "kube-apiserver-cp-9", ns="kube-system")
    assert drain.pending(admin, want) == []
    old = {
        **want,
        "pods": {
            "kube-apiserver-cp-9": {
                **want["pods"]["kube-apiserver-cp-9"],
                "image": IMAGE + "v1.31.6",
            }
        },
    }
    assert drain.pending(admin, old) == [f"kube-apiserver-cp-9 runs {IMAGE}v1.31.5, not its manifest's {IMAGE}v1.31.6"]
    # the drain leaves the mirror pod alone, as kubectl's does
    drain.drain(admin, "cp-9", timeout=30)
    assert _exists(sup, "/api/v1/namespaces/kube-system/pods/kube-apiserver-cp-9")
