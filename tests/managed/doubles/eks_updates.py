"""What moto lacks for `upgrade cluster` on EKS: UpdateClusterVersion, UpdateNodegroupVersion and
DescribeUpdate, on moto's own cluster and nodegroup objects, with EKS's rules: a control plane
moves exactly one minor version, a nodegroup never past its cluster's; one update at a time;
an update is InProgress for `polls` DescribeUpdate calls, then Successful (the version changes then)."""

from __future__ import annotations

import json
import re
import time
import uuid

ACCOUNT = "123456789012"
updates: dict[str, dict] = {}  # id -> {"update", "polls", "apply", "cluster", "nodegroup"}
polls = 1


def _minor(v: str) -> tuple[int, int]:
    major, minor = str(v).split(".")[:2]
    return int(major), int(minor)


def _err(status: int, code: str, message: str):
    return status, {"message": message}, code


def handle(method: str, path: str, body: bytes, environ: dict):
    """(status, json body, error type or None) for the calls this module answers, else None."""
    m = re.match(r"^/clusters/([^/]+)/(updates(?:/([^/]+))?|node-groups/([^/]+)/update-version)$", path)
    if not m:
        return None
    from moto.eks.models import eks_backends

    region = re.search(r"Credential=[^/]+/\d+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    backend = eks_backends[ACCOUNT][region.group(1) if region else "us-east-1"]
    cluster = backend.clusters.get(m.group(1))
    if cluster is None:
        return _err(404, "ResourceNotFoundException", f"No cluster found for name: {m.group(1)}.")
    if method == "GET" and m.group(3):
        u = updates.get(m.group(3))
        if u is None or u["cluster"] != cluster.name:
            return _err(404, "ResourceNotFoundException", f"No update found for ID: {m.group(3)}.")
        if u["update"]["status"] == "InProgress":
            if u["polls"] > 0:
                u["polls"] -= 1
            else:
                u["update"]["status"] = "Successful"
                u["apply"]()
        return 200, {"update": u["update"]}, None
    if method != "POST":
        return None
    want = json.loads(body or b"{}").get("version")
    if any(u["cluster"] == cluster.name and u["update"]["status"] == "InProgress" for u in updates.values()):
        return _err(409, "ResourceInUseException", f"Cluster {cluster.name} has an update in progress.")
    if m.group(4):  # a nodegroup
        ng = cluster.nodegroups.get(m.group(4))
        if ng is None:
            return _err(404, "ResourceNotFoundException", f"No node group found for name: {m.group(4)}.")
        want = want or cluster.version
        if _minor(want) > _minor(cluster.version):
            return _err(
                400,
                "InvalidParameterException",
                f"Requested Nodegroup version {want} is newer than the cluster version {cluster.version}.",
            )
        target, ng_name = ng, ng.nodegroup_name
    else:
        if not want or _minor(want) != (_minor(cluster.version)[0], _minor(cluster.version)[1] + 1):
            return _err(
                400,
                "InvalidParameterException",
                f"Unsupported Kubernetes minor version update from {cluster.version} to {want}",
            )
        target, ng_name = cluster, None
    uid = str(uuid.uuid4())
    update = {
        "id": uid,
        "status": "InProgress",
        "type": "VersionUpdate",
        "createdAt": time.time(),
        "params": [{"type": "Version", "value": want}],
        "errors": [],
    }
    updates[uid] = {
        "update": update,
        "polls": polls,
        "cluster": cluster.name,
        "nodegroup": ng_name,
        "apply": lambda: setattr(target, "version", want),
    }
    return 200, {"update": update}, None


def answer(result, start_response):
    status, doc, code = result
    data = json.dumps(doc).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if code:
        headers.append(("x-amzn-ErrorType", code))
    start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers)
    return [data]
