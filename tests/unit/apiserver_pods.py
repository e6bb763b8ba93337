"""Pods in the API-server double (apiserver.py), as kube-apiserver stores and deletes them; TEST DOUBLE.

What the real server does (checked against kube-apiserver v1.20.2 on loopback, tests/real):
- create: status is the server's (phase Pending), terminationGracePeriodSeconds defaults to 30
- delete of a pod bound to a node (spec.nodeName), not finished, with a grace period: the pod stays,
  terminating (deletionTimestamp, deletionGracePeriodSeconds), until its kubelet confirms it (here
  `kubelet_confirms`); a pod that is not bound, finished, or has a grace period of 0 goes at once
- POST pods/<name>/eviction (RBAC: create pods/eviction): a body of the Eviction group version discovery
  names (policy/v1 here), its name the pod's; a terminating pod: 201; a Pending or finished pod is
  deleted whatever its PodDisruptionBudget; one PDB: 429 unless its status allows a disruption (which
  the eviction uses up), 429 while the PDB has no status (no disruption controller runs here: a test
  writes it); more than one PDB: 500. Answer 201 Status Success.

No kubelet runs: a test sets a pod's status as its kubelet would (`set_status`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

EVICTION_VERSION = "policy/v1"  # what the double's discovery names for pods/eviction
FINISHED = ("Succeeded", "Failed")


def _fail(code: int, reason: str, message: str, details: dict | None = None):
    from apiserver import Fail

    return Fail(code, reason, message, details)


def _stamp(seconds: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def created(obj: dict) -> dict:
    """A new pod as the server stores it: status is the server's, the grace period defaulted."""
    obj.setdefault("spec", {}).setdefault("terminationGracePeriodSeconds", 30)
    obj["status"] = {"phase": "Pending"}
    return obj


def delete(api, ns: str, name: str, grace: int | None = None) -> dict:
    """The pod deleted, or marked terminating for its kubelet to finish (the pod strategy's graceful delete)."""
    pod = api._get("pods", ns, name)
    spec, meta = pod.get("spec") or {}, pod["metadata"]
    period = spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace
    if not spec.get("nodeName") or (pod.get("status") or {}).get("phase") in FINISHED:
        period = 0
    if period == 0:
        del api.objects[("pods", ns, name)]
        return pod
    if "deletionTimestamp" not in meta:
        meta.update(deletionTimestamp=_stamp(period), deletionGracePeriodSeconds=period)
        meta["resourceVersion"] = api._next_rv()
    return pod


def evict(api, ns: str, name: str, body: bytes) -> dict:
    """POST pods/<name>/eviction, RBAC already checked."""
    try:
        ev = json.loads(body or b"null")
    except ValueError as e:
        raise _fail(400, "BadRequest", f"the body is not JSON: {e}") from None
    if not isinstance(ev, dict) or ev.get("kind") != "Eviction" or ev.get("apiVersion") != EVICTION_VERSION:
        version = (ev or {}).get("apiVersion") if isinstance(ev, dict) else None
        raise _fail(
            400,
            "BadRequest",
            f'Eviction in version "{version}" cannot be handled as a Eviction: no kind "Eviction" is registered '
            f'for version "{version}"',
        )
    if (ev.get("metadata") or {}).get("name") != name:
        raise _fail(400, "BadRequest", "name in URL does not match name in Eviction object")
    pod = api._get("pods", ns, name)
    if "deletionTimestamp" in pod["metadata"]:
        return _success()
    if (pod.get("status") or {}).get("phase") not in ("Pending", *FINISHED):
        budgets = [b for (r, b_ns, _), b in api.objects.items() if r == "poddisruptionbudgets" and b_ns == ns]
        budgets = [b for b in budgets if _selects((b.get("spec") or {}).get("selector"), pod)]
        if len(budgets) > 1:
            raise _fail(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        if budgets:
            status = budgets[0].get("status")
            if status is None:
                raise _fail(
                    429,
                    "TooManyRequests",
                    f"Cannot evict pod as it would violate the pod's disruption budget. The disruption budget "
                    f"{budgets[0]['metadata']['name']} is still being processed by the server.",
                )
            if status.get("disruptionsAllowed", 0) <= 0:
                raise _fail(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
            status["disruptionsAllowed"] -= 1
    delete(api, ns, name)
    return _success()


def _success() -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _selects(selector: dict | None, pod: dict) -> bool:
    """A PodDisruptionBudget's label selector (matchLabels, matchExpressions) over the pod's labels, as
    policy/v1 reads it: a missing one selects nothing, an empty one every pod of the namespace."""
    if selector is None:
        return False
    labels = pod["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def set_status(api, ns: str, name: str, phase: str, ready: bool) -> None:
    """What the pod's kubelet reports: its phase and Ready condition."""
    pod = api.objects[("pods", ns, name)]
    pod["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    pod["metadata"]["resourceVersion"] = api._next_rv()


def kubelet_confirms(api, node: str) -> list[str]:
    """What the node's kubelet does once a terminating pod's containers stopped: delete it for good.
    The names of the pods it removed."""
    done = []
    for key, pod in list(api.objects.items()):
        if (
            key[0] == "pods"
            and (pod.get("spec") or {}).get("nodeName") == node
            and "deletionTimestamp" in pod["metadata"]
        ):
            del api.objects[key]
            done.append(f"{key[1]}/{key[2]}")
    return done
