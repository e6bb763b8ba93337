"""A test double of the GKE container v1 REST API (the subset kubeinit uses).

Authentication: API calls need a bearer token, either one this double's OAuth
endpoint issued (a service-account key's `token_uri` points at it) or a JWT
self-signed by that service account's key (what google-auth sends by default
for service accounts); `tokens_seen` keeps them so tests can look for leaks.
Operations finish after `op_polls` GETs; fail_operation() makes one end in error.
"""

from __future__ import annotations

import base64
import itertools
import json
import re

from .http import JsonApiDouble, Reply

P = r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def error(status: int, grpc: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": status, "message": message, "status": grpc}})


class GkeApiDouble(JsonApiDouble):
    def __init__(self, ca_pem: bytes, token: str, sa_public_pem: bytes):
        super().__init__()
        self.ca_b64 = base64.b64encode(ca_pem).decode()
        self.token = token
        self.sa_public_pem = sa_public_pem
        self.tokens_seen: set[str] = set()
        self.op_polls = 1
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.clusters: dict[tuple[str, str, str], dict] = {}
        self.operations: dict[str, dict] = {}
        self.op_faults: dict[str, tuple[int, str]] = {}
        self._ids = itertools.count(1)

    def fail_operation(self, op_type: str, code: int, message: str) -> None:
        """The next operation of this type (e.g. CREATE_CLUSTER) ends DONE with this google.rpc error."""
        self.op_faults[op_type] = (code, message)

    def route(self, method, path, query, headers, body):
        if path == "/token" and method == "POST":
            if "assertion" not in (body or {}):
                return Reply(400, {"error": "invalid_grant"})
            return Reply(200, {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"})
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if not (bearer == self.token or self._valid_jwt(bearer)):
            return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        self.tokens_seen.add(bearer)
        for pattern, methods in self._routes():
            m = re.match(pattern, path)
            if m and method in methods:
                return methods[method](**m.groupdict(), body=body)
        return error(404, "NOT_FOUND", f"no route {method} {path}")

    def _valid_jwt(self, token: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, sig = token.split(".")
            key = serialization.load_pem_public_key(self.sa_public_pem)
            key.verify(
                base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
                f"{head}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return claims.get("iss", "").endswith(".iam.gserviceaccount.com")
        except (ValueError, InvalidSignature):
            return False

    def _routes(self):
        return [
            (P + r"/clusters$", {"POST": self._create, "GET": self._list}),
            (P + r"/clusters/(?P<name>[^/:]+)$", {"GET": self._get, "DELETE": self._delete}),
            (P + r"/clusters/(?P<name>[^/]+)/nodePools/(?P<pool>[^/:]+):setSize$", {"POST": self._set_size}),
            (
                P + r"/clusters/(?P<name>[^/]+)/nodePools/(?P<pool>[^/:]+):setAutoscaling$",
                {"POST": self._set_autoscaling},
            ),
            (P + r"/clusters/(?P<name>[^/:]+)/nodePools$", {"POST": self._create_pool, "GET": self._list_pools}),
            (
                P + r"/clusters/(?P<name>[^/]+)/nodePools/(?P<pool>[^/:]+)$",
                {"GET": self._get_pool, "DELETE": self._delete_pool, "PUT": self._update_pool},
            ),
            (P + r"/clusters/(?P<name>[^/:]+):updateMaster$", {"POST": self._update_master}),
            (P + r"/operations/(?P<op>[^/]+)$", {"GET": self._get_op}),
        ]

    # node pools of an existing cluster
    def _create_pool(self, project, location, name, body):
        try:
            c = self._cluster(project, location, name)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        spec = body["nodePool"]
        if any(p["name"] == spec["name"] for p in c["nodePools"]):
            return error(409, "ALREADY_EXISTS", f"Already exists: node pool {spec['name']}.")
        if c["status"] != "RUNNING":  # GKE runs one operation on a cluster at a time
            return error(400, "FAILED_PRECONDITION", f"Cluster {name} is {c['status']}: an operation is running.")
        pool = {**spec, "status": "PROVISIONING", "version": c["currentMasterVersion"]}
        c["nodePools"].append(pool)

        def done(err):
            pool["status"] = "ERROR" if err else "RUNNING"

        return self._op(project, location, "CREATE_NODE_POOL", f"{c['selfLink']}/nodePools/{spec['name']}", done)

    # upgrades: the master one minor at a time, a pool never past the master (GKE's rules)
    def _update_master(self, project, location, name, body):
        try:
            c = self._cluster(project, location, name)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        want, have = body.get("masterVersion", ""), c["currentMasterVersion"]
        if _minor(want) != (_minor(have)[0], _minor(have)[1] + 1):
            return error(
                400,
                "INVALID_ARGUMENT",
                f"Master cannot be upgraded from {have} to {want}: upgrade one minor version at a time.",
            )

        def done(err):
            if not err:
                c["currentMasterVersion"] = want + ".2-gke.100"

        return self._op(project, location, "UPGRADE_MASTER", c["selfLink"], done)

    def _update_pool(self, project, location, name, pool, body):
        try:
            c, p = self._pool(project, location, name, pool)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        want = body.get("nodeVersion", "")
        if not body.get("imageType"):
            return error(400, "INVALID_ARGUMENT", "image_type is required.")
        if _minor(want) > _minor(c["currentMasterVersion"]):
            return error(
                400, "INVALID_ARGUMENT", f"Node version {want} is newer than the master's {c['currentMasterVersion']}."
            )

        def done(err):
            if not err:
                p["version"] = want + ".2-gke.100"

        return self._op(project, location, "UPGRADE_NODES", f"{c['selfLink']}/nodePools/{pool}", done)

    def _list_pools(self, project, location, name, body):
        try:
            return Reply(200, {"nodePools": self._cluster(project, location, name)["nodePools"]})
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))

    def _get_pool(self, project, location, name, pool, body):
        try:
            c, p = self._pool(project, location, name, pool)
            for o in list(self.operations.values()):  # the cloud goes on without anyone polling the operation
                if o["targetLink"] == f"{c['selfLink']}/nodePools/{pool}" and o["status"] == "RUNNING":
                    self._get_op(project, location, o["name"], None)
            return Reply(200, self._pool(project, location, name, pool)[1])
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))

    def _delete_pool(self, project, location, name, pool, body):
        try:
            c, p = self._pool(project, location, name, pool)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        p["status"] = "STOPPING"

        def done(err):
            if not err:
                c["nodePools"].remove(p)

        return self._op(project, location, "DELETE_NODE_POOL", f"{c['selfLink']}/nodePools/{pool}", done)

    def _op(self, project, location, op_type, target, on_done):
        name = f"operation-{next(self._ids)}"
        op = {
            "name": name,
            "operationType": op_type,
            "status": "RUNNING",
            "zone": location,
            "selfLink": f"/v1/projects/{project}/locations/{location}/operations/{name}",
            "targetLink": target,
            "_polls": self.op_polls,
            "_done": on_done,
        }
        self.operations[name] = op
        return Reply(200, _public(op))

    def _cluster(self, project, location, name):
        c = self.clusters.get((project, location, name))
        if c is None:
            raise LookupError(f"Not found: projects/{project}/locations/{location}/clusters/{name}.")
        return c

    def _create(self, project, location, body):
        spec = body["cluster"]
        name = spec["name"]
        if (project, location, name) in self.clusters:
            return error(
                409, "ALREADY_EXISTS", f"Already exists: projects/{project}/locations/{location}/clusters/{name}."
            )
        locations = spec.get("locations") or [location]
        if re.match(r".*\d-[a-z]$", location) and location not in locations:
            return error(400, "INVALID_ARGUMENT", f"Locations must include the cluster's zone {location}.")
        pools = [{**p, "status": "PROVISIONING", "version": "1.30.5-gke.1000"} for p in spec.get("nodePools", [])]
        self.clusters[(project, location, name)] = cluster = {
            "name": name,
            "location": location,
            "status": "PROVISIONING",
            "endpoint": "127.0.0.1",
            "masterAuth": {"clusterCaCertificate": self.ca_b64},
            "nodePools": pools,
            "currentMasterVersion": (spec.get("initialClusterVersion") or "1.30") + ".5-gke.1000",
            "resourceLabels": spec.get("resourceLabels", {}),
            "locations": locations,
            "selfLink": f"/v1/projects/{project}/locations/{location}/clusters/{name}",
        }

        def done(err):
            cluster["status"] = "ERROR" if err else "RUNNING"
            for p in pools:
                p["status"] = "ERROR" if err else "RUNNING"

        return self._op(project, location, "CREATE_CLUSTER", cluster["selfLink"], done)

    def _list(self, project, location, body):
        return Reply(
            200,
            {"clusters": [c for (p, loc, _), c in self.clusters.items() if p == project and location in ("-", loc)]},
        )

    def _get(self, project, location, name, body):
        try:
            c = self._cluster(project, location, name)
            if c["status"] in (
                "STOPPING",
                "PROVISIONING",
            ):  # time passes for an operation nobody polls: one step per look
                for o in list(self.operations.values()):
                    if o["operationType"] in ("DELETE_CLUSTER", "CREATE_CLUSTER") and o["targetLink"] == c["selfLink"]:
                        self._get_op(project, location, o["name"], None)
            return Reply(200, self._cluster(project, location, name))
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))

    def _delete(self, project, location, name, body):
        try:
            c = self._cluster(project, location, name)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        if c["status"] == "STOPPING":  # as GKE: one operation on a cluster at a time
            return error(400, "FAILED_PRECONDITION", f"Cluster {name} is currently being deleted.")
        c["status"] = "STOPPING"

        def done(err):
            if not err:
                self.clusters.pop((project, location, name), None)

        return self._op(project, location, "DELETE_CLUSTER", c["selfLink"], done)

    def _pool(self, project, location, name, pool):
        c = self._cluster(project, location, name)
        p = next((p for p in c["nodePools"] if p["name"] == pool), None)
        if p is None:
            raise LookupError(f"Not found: node pool {pool}.")
        return c, p

    def _set_size(self, project, location, name, pool, body):
        try:
            c, p = self._pool(project, location, name, pool)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))

        def done(err):
            if not err:
                p["initialNodeCount"] = body["nodeCount"]

        return self._op(project, location, "SET_NODE_POOL_SIZE", c["selfLink"], done)

    def _set_autoscaling(self, project, location, name, pool, body):
        try:
            c, p = self._pool(project, location, name, pool)
        except LookupError as e:
            return error(404, "NOT_FOUND", str(e))
        p["autoscaling"] = body["autoscaling"]
        return self._op(project, location, "SET_NODE_POOL_AUTOSCALING", c["selfLink"], lambda err: None)

    def _get_op(self, project, location, op, body):
        o = self.operations.get(op)
        if o is None:
            return error(404, "NOT_FOUND", f"Not found: operation {op}.")
        if o["status"] == "RUNNING":
            if o["_polls"] > 0:
                o["_polls"] -= 1
            else:
                o["status"] = "DONE"
                fault = self.op_faults.pop(o["operationType"], None)
                if fault:
                    o["error"] = {"code": fault[0], "message": fault[1]}
                    o["statusMessage"] = fault[1]
                o["_done"](fault)
        return Reply(200, _public(o))


def _minor(v: str) -> tuple[int, int]:
    m = re.match(r"^(\d+)\.(\d+)", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _public(op: dict) -> dict:
    return {k: v for k, v in op.items() if not k.startswith("_")}
