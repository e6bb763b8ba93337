"""Objects in the cluster as the API phases see them: where each lives, whether the cluster
already holds what a plan wants (a fact), and what the executor does for an ApiCall.

kubeinit owns the fields it writes and nothing else: an object matches when each of those
fields (and each label and annotation it sets) has the wanted value; what the cluster added
(uid, resourceVersion, a controller's jws-kubeconfig-* keys in cluster-info) is left alone.
"""

from __future__ import annotations

import time

from kubeinit.kube import drain
from kubeinit.kube.client import ApiError, Client, Unreachable

RBAC = "rbac.authorization.k8s.io/v1"
_PLURAL = {
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Node": "nodes",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments",
    "DaemonSet": "daemonsets",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "CustomResourceDefinition": "customresourcedefinitions",
}


def collection(obj: dict) -> str:
    """The URL path of the object's collection."""
    api = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
    ns = obj["metadata"].get("namespace")
    return f"{api}/namespaces/{ns}/{_PLURAL[obj['kind']]}" if ns else f"{api}/{_PLURAL[obj['kind']]}"


def item(obj: dict) -> str:
    return f"{collection(obj)}/{obj['metadata']['name']}"


def label(obj: dict) -> str:
    """ "ConfigMap kube-public/cluster-info", "ClusterRole kubeadm:get-nodes"."""
    ns = obj["metadata"].get("namespace")
    return f"{obj['kind']} {ns + '/' if ns else ''}{obj['metadata']['name']}"


def matches(have: dict | None, want: dict) -> bool:
    if have is None:
        return False
    for key, value in want.items():
        if key == "metadata":
            for part in ("labels", "annotations"):
                mine = value.get(part) or {}
                theirs = (have.get("metadata") or {}).get(part) or {}
                if any(theirs.get(k) != v for k, v in mine.items()):
                    return False
        elif key == "data" and isinstance(value, dict):
            theirs = have.get("data") or {}
            if any(theirs.get(k) != v for k, v in value.items()):
                return False
        elif not within(value, have.get(key)):
            return False
    return True


def within(want, have) -> bool:
    """Whether `have` holds every field of `want` with its value: what the server defaults
    (a Deployment's strategy, a container's terminationMessagePath) is not kubeinit's to compare.
    A list matches element by element; a zero value (false, 0, "", empty) matches an absent field,
    as the server omits it (`readOnly: false`)."""
    if isinstance(want, dict):
        if have is None:
            return not any(want.values()) if want else True
        return isinstance(have, dict) and all(within(v, have[k]) if k in have else not v for k, v in want.items())
    if isinstance(want, list):
        have = have if have is not None else []
        return isinstance(have, list) and len(have) == len(want) and all(map(within, want, have))
    return want == have if have is not None else not want


def get(client: Client, obj: dict) -> dict | None:
    """The cluster's copy of `obj`, or None."""
    try:
        return client.get(item(obj))
    except ApiError as e:
        if e.code == 404:
            return None
        raise


def existing_or_create(client: Client, obj: dict) -> dict | None:
    """The cluster's copy of `obj`, or None once this call has created `obj`."""
    have = get(client, obj)
    if have is not None:
        return have
    try:
        client.create(collection(obj), obj)
        return None
    except ApiError as e:
        if e.reason != "AlreadyExists":  # made meanwhile (another run): that one is the cluster's copy
            raise
        have = get(client, obj)
        if have is None:  # and deleted again since: the conflict stands
            raise
        return have


def apply(client: Client, obj: dict) -> None:
    """Make the cluster hold `obj`'s fields: create it, or replace it keeping what others added."""
    have = existing_or_create(client, obj)
    if have is None or matches(have, obj):
        return
    new = {**have, **{k: v for k, v in obj.items() if k != "metadata"}}
    meta = dict(have["metadata"])
    for part in ("labels", "annotations"):
        if obj["metadata"].get(part):
            meta[part] = {**(meta.get(part) or {}), **obj["metadata"][part]}
    new["metadata"] = meta
    if isinstance(obj.get("data"), dict):
        new["data"] = {**(have.get("data") or {}), **obj["data"]}
    client.replace(item(obj), new)


OWNED = "apply-owned"  # ApiCall verb: apply `body` with the object at `via` as its controller owner


def apply_owned(client: Client, obj: dict, owner_path: str) -> None:
    """Make the cluster hold `obj`, its data replaced whole, owned by the object at `owner_path` (read
    now: its uid exists only once it is made), so the garbage collector deletes it with its owner."""
    owner = client.get(owner_path)
    ref = {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner.get("kind", "Secret"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    want = {**obj, "metadata": {**obj["metadata"], "ownerReferences": [ref]}}
    have = existing_or_create(client, want)
    if have is None:
        return
    body = {**have, **{k: v for k, v in want.items() if k != "metadata"}}
    body["metadata"] = {**have["metadata"], "ownerReferences": [ref]}
    client.replace(item(want), body)


def wait_ready(client: Client, path: str, timeout: float, interval: float = 0.5, check=None) -> None:
    """Until `path` answers "ok" (the API server's /readyz), at most `timeout` seconds. As kubeadm's
    waiter, any other outcome is asked again: a starting server refuses connections, fails TLS,
    answers 403 (its RBAC roles are not there yet), then 500, then ok; asked every 0.5 s as kubeadm
    does. `check()`, between polls, may raise to stop at once (the kubelet that runs the server died)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            answer = client.get_text(path).strip()
            if answer == "ok":
                return
            last = f"it answered {answer[-120:]!r}"
        except ApiError as e:
            last = f"it answered {e.code} {e.reason}" + (f": {e.detail[:160]}" if e.detail else "")
        except Unreachable as e:
            last = str(e).split(";", 1)[0]
        if time.monotonic() >= deadline:
            raise Unreachable(
                f"the API server did not answer {path} with ok within {timeout:.0f} s (last: {last}); "
                "the kubelet runs it as a static pod: on the control plane, `journalctl -u kubelet` "
                "shows why the kubelet did not start it, and `crictl logs $(crictl ps -q --name "
                "kube-apiserver)` why the API server did not become ready"
            )
        if check is not None:
            check()
        time.sleep(interval)


def node_marked(node: dict | None, labels: dict[str, str], taints: list[dict]) -> bool:
    if node is None:
        return False
    have = node["metadata"].get("labels") or {}
    present = {(t.get("key"), t.get("effect")) for t in (node.get("spec") or {}).get("taints") or []}
    return all(have.get(k) == v for k, v in labels.items()) and all((t["key"], t["effect"]) in present for t in taints)


def mark_node(
    client: Client,
    path: str,
    labels: dict[str, str],
    taints: list[dict],
    timeout: float,
    interval: float = 1.0,
    check=None,
) -> None:
    """Add labels and taints to a Node once its kubelet has registered it (kubeadm's
    mark-control-plane waits for that too); other labels and taints stay. `check()` as for
    wait_ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            node = client.get(path)
        except ApiError as e:
            if e.code != 404:
                raise
            if time.monotonic() >= deadline:
                raise Unreachable(
                    f"the node {path.rsplit('/', 1)[1]} did not register within {timeout:.0f} s; is "
                    "its kubelet running? `journalctl -u kubelet` on it shows why"
                ) from None
            if check is not None:
                check()
            time.sleep(interval)
            continue
        if node_marked(node, labels, taints):
            return
        node["metadata"]["labels"] = {**(node["metadata"].get("labels") or {}), **labels}
        spec = node.setdefault("spec", {})
        have = spec.get("taints") or []
        spec["taints"] = have + [
            t for t in taints if (t["key"], t["effect"]) not in {(h.get("key"), h.get("effect")) for h in have}
        ]
        try:
            client.replace(path, node)
            return
        except ApiError as e:
            if e.reason != "Conflict":  # the kubelet updated it meanwhile: read it again
                raise


def call(client: Client, step, check=None) -> None:
    """What the executor does for an ApiCall; `check()` runs between the polls of a wait."""
    if step.verb == "wait":
        wait_ready(client, step.path, step.timeout, check=check)
    elif step.verb == "apply":
        apply(client, step.body)
    elif step.verb == OWNED:
        apply_owned(client, step.body, step.via)
    elif step.verb == "mark":
        mark_node(client, step.path, step.body["labels"], step.body["taints"], step.timeout, check=check)
    elif step.verb in drain.VERBS:  # an upgrade's drain, wait and uncordon of a Node
        drain.call(client, step, check)
    else:  # pragma: no cover - a new verb without a branch is a bug
        raise ValueError(f"unknown API verb {step.verb!r}")
