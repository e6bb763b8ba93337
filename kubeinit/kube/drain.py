"""A Node's part of `kubeinit upgrade`, as the executor does it (ApiCall verbs):

    "drain"      cordon the Node and evict its pods, as `kubectl drain --ignore-daemonsets
                 --delete-emptydir-data` does; kubeinit's annotation on the Node records that kubeinit
                 cordoned it (a Node its user had cordoned is drained but not annotated, and stays cordoned)
    "wait-node"  until the Node is Ready on the kubelet version asked and its control plane's mirror pods
                 run what their manifests say, Ready (body: node, kubelet, pods)
    "uncordon"   make the Node schedulable again and drop the annotation, if kubeinit cordoned it

Each reads the Node first, so a re-run after a kill anywhere goes on from where the cluster is: a
Node kubeinit cordoned is drained again (what is gone is gone), and uncordoned in the end.

kubectl's rules: mirror pods (the kubelet's static pods) and DaemonSet pods stay; a pod that declares
no controller is refused (kubectl wants --force: it would not come back); finished pods are removed.
The Eviction API's group version is the one discovery names for pods/eviction (kubectl's
CheckEvictionSupport): policy/v1 where served, else policy/v1beta1; a server without it gets deletes.
An eviction a PodDisruptionBudget refuses (429) is tried again every `retry` s until the timeout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeinit.errors import KubeinitError
from kubeinit.kube.client import ApiError, Client, Unreachable, namespaced

DRAIN, WAIT, UNCORDON = "drain", "wait-node", "uncordon"
VERBS = (DRAIN, WAIT, UNCORDON)
ANNOTATION = "kubeinit.dev/cordoned-for-upgrade"  # kubeinit cordoned this Node (and uncordons it)
MIRROR = "kubernetes.io/config.mirror"
RETRY = 5.0  # kubectl drain's wait before evicting again a pod a PodDisruptionBudget protects
FINISHED = ("Succeeded", "Failed")


class DrainFailed(KubeinitError):
    pass


def node_path(name: str) -> str:
    return f"/api/v1/nodes/{name}"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[1]


def cordoned_by_kubeinit(node: dict) -> bool:
    return ((node.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION) == "true"


def _update(client: Client, name: str, change: Callable[[dict], bool]) -> None:
    """GET the Node, `change` it (False: nothing to change), PUT it; again when its kubelet or a
    controller wrote it in between (409 Conflict)."""
    for _ in range(10):
        node = client.get(node_path(name))
        if not change(node):
            return
        try:
            client.replace(node_path(name), node)
            return
        except ApiError as e:
            if e.reason != "Conflict":
                raise
    raise DrainFailed(f"node {name} changed under every update kubeinit tried (409 Conflict, 10 times); run again")


def _cordon(node: dict) -> bool:
    spec = node.setdefault("spec", {})
    if spec.get("unschedulable"):
        return False  # cordoned already: by kubeinit (a stopped run), or by its user (left so, not annotated)
    spec["unschedulable"] = True
    meta = node["metadata"]
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: "true"}
    return True


def _uncordon(node: dict) -> bool:
    if not cordoned_by_kubeinit(node):
        return False
    node.setdefault("spec", {}).pop("unschedulable", None)
    del node["metadata"]["annotations"][ANNOTATION]
    return True


def cordon(client: Client, name: str) -> None:
    _update(client, name, _cordon)


def uncordon(client: Client, name: str) -> None:
    _update(client, name, _uncordon)


def eviction_version(client: Client) -> str:
    """The Eviction group version the server names for pods/eviction ("" when it has none)."""
    for r in client.get("/api/v1").get("resources") or []:
        if r.get("name") == "pods/eviction" and r.get("kind") == "Eviction" and r.get("group") and r.get("version"):
            return f"{r['group']}/{r['version']}"
    return ""


def _ref(pod: dict) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


def _controller(pod: dict) -> dict | None:
    return next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)


def to_evict(client: Client, name: str) -> list[dict]:
    """The Node's pods kubectl drain --ignore-daemonsets --delete-emptydir-data evicts; refuses, in one
    sentence, when one of them is a pod kubectl refuses without --force."""
    pods = _on(client, name)
    out, unmanaged, orphaned = [], [], []
    for pod in pods:
        meta, finished = pod["metadata"], (pod.get("status") or {}).get("phase") in FINISHED
        owner = _controller(pod)
        if owner is not None and owner.get("kind") == "DaemonSet" and not finished:
            try:  # kubectl checks the DaemonSet still exists: an orphan would not come back
                client.get(f"/apis/apps/v1/namespaces/{meta.get('namespace')}/daemonsets/{owner['name']}")
            except ApiError as e:
                if e.code != 404:
                    raise
                orphaned.append(_ref(pod))
            continue
        if MIRROR in (meta.get("annotations") or {}):
            continue  # the kubelet's own static pod: it goes and comes with the manifest
        if owner is None and not finished:
            unmanaged.append(_ref(pod))
            continue
        out.append(pod)
    refused = unmanaged + orphaned
    if refused:
        one = len(refused) == 1
        raise DrainFailed(
            f"node {name} cannot be drained: {'pod' if one else 'pods'} {', '.join(refused)} "
            f"{'declares' if one else 'declare'} no controller{' (or its DaemonSet is gone)' if orphaned else ''}, "
            f"so {'it' if one else 'they'} would not come back elsewhere (kubectl drain refuses such pods without "
            f"--force); delete {'it' if one else 'them'}, or run {'it' if one else 'them'} under a controller "
            "(a Deployment), then run again"
        )
    return out


@dataclass
class _Pod:
    obj: dict
    why: str = "not evicted yet"
    again: float = 0.0  # when to ask for its eviction (again); never, once the server took it


def drain(
    client: Client,
    name: str,
    timeout: float,
    retry: float = RETRY,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Cordon the Node, then evict its pods and wait until they are gone, at most `timeout` s."""
    deadline = clock() + timeout
    to_evict(client, name)  # a pod kubectl would refuse is refused before the Node is touched
    try:
        cordon(client, name)
    except ApiError as e:
        if e.code != 404:
            raise
        raise DrainFailed(
            f"node {name} is not registered in the cluster; is its kubelet running? (`journalctl -u kubelet` on it)"
        ) from None
    version = eviction_version(client)
    # listed again once cordoned: nothing is scheduled there any more
    left = {p["metadata"]["uid"]: _Pod(p) for p in to_evict(client, name)}
    while left:
        for pod in left.values():
            if clock() >= pod.again:
                pod.why, blocked = _evict(client, pod.obj, version)
                pod.again = clock() + retry if blocked else math.inf
        # one list a poll, however many pods: a pod is gone once no pod with its uid is on the Node
        there = {p["metadata"]["uid"] for p in _on(client, name)}
        left = {uid: pod for uid, pod in left.items() if uid in there}
        if not left:
            return
        if clock() >= deadline:
            pods = "; ".join(f"{_ref(p.obj)} ({p.why})" for p in left.values())
            raise DrainFailed(
                f"node {name} was not drained within {timeout:.0f} s: pods left: {pods}; let them go "
                "(a PodDisruptionBudget that allows a disruption, a pod that terminates), then run again"
            )
        sleep(poll)


def _on(client: Client, name: str) -> list[dict]:
    return client.list("/api/v1/pods", field_selector=f"spec.nodeName={name}").get("items") or []


def _evict(client: Client, pod: dict, version: str) -> tuple[str, bool]:
    """Ask for the pod's eviction (without the Eviction API, its deletion): what it waits on now, and
    whether a PodDisruptionBudget refused it (asked again later, as kubectl does)."""
    meta = pod["metadata"]
    path = namespaced("pods", meta["namespace"], meta["name"])
    try:
        if version:
            who = {"name": meta["name"], "namespace": meta["namespace"]}
            client.create(f"{path}/eviction", {"apiVersion": version, "kind": "Eviction", "metadata": who})
        else:
            client.delete(path)
    except ApiError as e:
        if e.code == 404:
            return "gone", False
        if e.code == 429:
            return f"a PodDisruptionBudget allows no disruption now: {e.detail or e.reason}", True
        raise
    return "terminating", False


def pending(client: Client, want: dict) -> list[str]:
    """What keeps the Node from being done ([] when nothing does): Ready, on the kubelet version
    `want["kubelet"]` (when given), and each mirror pod in `want["pods"]` (name -> image, command)
    Ready and running what its manifest says."""
    from kubeinit.kube.nodestate import node_state

    name = want["node"]
    node = node_state(client.get(node_path(name)))
    why = [] if node.ready else [f"node {name} is not Ready ({node.why})"]
    if want.get("kubelet") and node.version != want["kubelet"]:
        why.append(f"node {name} reports kubelet {node.version or 'no version'}, not {want['kubelet']}")
    for pod_name, spec in (want.get("pods") or {}).items():
        try:
            pod = client.get(namespaced("pods", "kube-system", pod_name))
        except ApiError as e:
            if e.code != 404:
                raise
            why.append(f"{pod_name} is not there yet")
            continue
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        if container.get("image") != spec["image"] or container.get("command") != spec["command"]:
            why.append(f"{pod_name} runs {container.get('image')}, not its manifest's {spec['image']}")
        elif not any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        ):
            why.append(f"{pod_name} is not Ready")
    return why


def wait(
    client: Client,
    want: dict,
    timeout: float,
    check=None,
    interval: float = 2.0,
    sleep=time.sleep,
    clock=time.monotonic,
) -> None:
    """Until pending() is empty, at most `timeout` s. An API server that does not answer, or answers
    an error (this host's own, restarting on its new manifest: refused, then 403 until its RBAC is
    loaded, then 500), is asked again; `check()` between polls may stop it (the kubelet died)."""
    deadline = clock() + timeout
    while True:
        try:
            why = pending(client, want)
        except Unreachable as e:
            why = [str(e).split(";", 1)[0]]
        except ApiError as e:
            why = [f"the API server answered {e.code} {e.reason}" + (f": {e.detail[:160]}" if e.detail else "")]
        if not why:
            return
        if clock() >= deadline:
            raise DrainFailed(
                f"node {want['node']} was not back within {timeout:.0f} s: {'; '.join(why)}; `journalctl -u kubelet` "
                "on it shows why"
            )
        if check is not None:
            check()
        sleep(interval)


def call(client: Client, step, check=None) -> None:
    """What the executor does for this module's ApiCall verbs."""
    if step.verb == DRAIN:
        drain(client, _name(step.path), step.timeout)
    elif step.verb == WAIT:
        wait(client, step.body, step.timeout, check)
    elif step.verb == UNCORDON:
        uncordon(client, _name(step.path))
    else:  # pragma: no cover - a new verb without a branch is a bug
        raise ValueError(f"unknown API verb {step.verb!r}")
