"""A test double of Azure Resource Manager for AKS, over HTTPS (azure-core refuses
bearer tokens over http), with:

- an App Service-style managed-identity endpoint (IDENTITY_ENDPOINT/IDENTITY_HEADER),
  so DefaultAzureCredential gets its token from here and probes nothing else;
- resource groups (HEAD/GET/PUT/DELETE) and Microsoft.ContainerService managed
  clusters and agent pools;
- the Azure-AsyncOperation protocol: PUT/DELETE answer 201/202 with an
  operation URL that reports InProgress for `op_polls` GETs, then Succeeded
  (or Failed, see fail_operation()).
"""

from __future__ import annotations

import base64
import itertools
import re
import time

import yaml

from .http import JsonApiDouble, Reply

SUB = r"^/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
MC = RG + r"/providers/Microsoft\.ContainerService/managedClusters"


def _minor(v: str) -> tuple[int, int]:
    m = re.match(r"^(\d+)\.(\d+)", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class ArmApiDouble(JsonApiDouble):
    def __init__(self, tls: dict, ca_pem: bytes, token: str, identity_header: str, user_token: str, user_key: str):
        super().__init__(tls)
        self.ca_b64 = base64.b64encode(ca_pem).decode()
        self.token, self.identity_header = token, identity_header
        self.user_token, self.user_key = user_token, user_key
        self.op_polls = 1
        self.api_server: str | None = None  # the clusters' API server in their kubeconfigs (default: the fqdn)
        self.api_ca_b64: str | None = None  # and its CA (default: this double's)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.groups: dict[tuple[str, str], dict] = {}
        self.clusters: dict[tuple[str, str, str], dict] = {}
        self.operations: dict[str, dict] = {}
        self.op_faults: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)

    def fail_operation(self, kind: str, code: str, message: str) -> None:
        """The next async operation of this kind (create_cluster, delete_cluster, scale) fails."""
        self.op_faults[kind] = (code, message)

    def route(self, method, path, query, headers, body):
        if path == "/msi/token":
            if headers.get("X-IDENTITY-HEADER") != self.identity_header:
                return Reply(401, {"error": "unauthorized"})
            return Reply(
                200,
                {
                    "access_token": self.token,
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": query.get("resource"),
                    "token_type": "Bearer",
                },
            )
        if headers.get("Authorization") != f"Bearer {self.token}":
            return error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        routes = [
            (RG + "$", self._group),
            (MC + "$", self._list),
            (SUB + r"/providers/Microsoft\.ContainerService/managedClusters$", self._list),
            (MC + r"/(?P<name>[^/]+)$", self._cluster),
            (MC + r"/(?P<name>[^/]+)/listClusterUserCredential$", self._credentials),
            (MC + r"/(?P<name>[^/]+)/agentPools$", self._pools),
            (MC + r"/(?P<name>[^/]+)/agentPools/(?P<pool>[^/]+)$", self._pool),
            (
                SUB + r"/providers/Microsoft\.ContainerService/locations/[^/]+/operations/(?P<op>[^/]+)$",
                self._operation,
            ),
        ]
        for pattern, handler in routes:
            m = re.match(pattern, path, re.IGNORECASE)
            if m:
                return handler(method, body=body, **m.groupdict())
        return error(404, "NotFound", f"no route {method} {path}")

    # resource groups
    def _group(self, method, sub, rg, body):
        key = (sub, rg.lower())
        g = self.groups.get(key)
        if method == "HEAD":
            return Reply(204 if g else 404)
        if method == "PUT":
            created = g is None
            self.groups[key] = g = {
                "id": f"/subscriptions/{sub}/resourceGroups/{rg}",
                "name": rg,
                "location": body["location"],
                "tags": body.get("tags", {}),
                "properties": {"provisioningState": "Succeeded"},
            }
            return Reply(201 if created else 200, g)
        if g is None:
            return error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if method == "GET":
            return Reply(200, g)
        if method == "DELETE":
            del self.groups[key]
            for k in [k for k in self.clusters if k[:2] == key]:
                del self.clusters[k]
            return Reply(202, None, {"Location": f"{self.url}/subscriptions/{sub}/operationresults/rg-{rg}"})
        return error(405, "MethodNotAllowed", method)

    # managed clusters
    def _find(self, sub, rg, name):
        return self.clusters.get((sub, rg.lower(), name))

    def _async(self, sub, location, kind, on_done, target=None):
        op = f"op-{next(self._ids)}"
        self.operations[op] = {
            "kind": kind,
            "polls": self.op_polls,
            "done": on_done,
            "status": "InProgress",
            "target": target,
        }
        url = (
            f"{self.url}/subscriptions/{sub}/providers/Microsoft.ContainerService/locations/{location}"
            f"/operations/{op}?api-version=2026-08-01"
        )
        return {"Azure-AsyncOperation": url, "Retry-After": "0"}

    def _cluster(self, method, sub, rg, name, body):
        c = self._find(sub, rg, name)
        if method == "GET":
            for o in list(self.operations.values()):  # the cloud goes on without anyone polling the operation
                if o["target"] == (sub, rg.lower(), name):
                    self._advance(o)
            return Reply(200, c) if c else error(404, "ResourceNotFound", f"managed cluster {name} was not found.")
        if method == "PUT":
            if (sub, rg.lower()) not in self.groups:
                return error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            if c is not None and c["properties"].get("provisioningState") == "Succeeded":
                return self._update_cluster(sub, c, body)
            props = body["properties"]
            for prof in props.get("agentPoolProfiles", []):
                if prof.get("mode") == "System" and prof.get("scaleSetPriority") == "Spot":
                    return error(400, "InvalidParameter", f"System agent pool {prof['name']} cannot be a Spot pool.")
            c = {
                "id": f"/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}",  # noqa: E501
                "name": name,
                "type": "Microsoft.ContainerService/ManagedClusters",
                "location": body["location"],
                "tags": body.get("tags", {}),
                "identity": body.get("identity"),
                "properties": {
                    **props,
                    "provisioningState": "Creating",
                    "currentKubernetesVersion": props.get("kubernetesVersion") or "1.30.5",
                    "fqdn": f"{props.get('dnsPrefix', name)}-test.hcp.{body['location']}.azmk8s.io",
                },
            }
            self.clusters[(sub, rg.lower(), name)] = c

            def done(fault):
                c["properties"]["provisioningState"] = "Failed" if fault else "Succeeded"

            return Reply(201, c, self._async(sub, c["location"], "create_cluster", done, (sub, rg.lower(), name)))
        if method == "DELETE":
            if c is None:
                return Reply(204)
            c["properties"]["provisioningState"] = "Deleting"

            def done(fault):
                if not fault:
                    self.clusters.pop((sub, rg.lower(), name), None)

            headers = self._async(sub, c["location"], "delete_cluster", done)
            headers["Location"] = headers["Azure-AsyncOperation"]
            return Reply(202, None, headers)
        return error(405, "MethodNotAllowed", method)

    def _update_cluster(self, sub, c, body):
        """PUT on a cluster that exists: AKS's control plane upgrade, one minor version at a time."""
        want, have = body["properties"].get("kubernetesVersion"), c["properties"]["currentKubernetesVersion"]
        if want and _minor(want) != _minor(have) and _minor(want) != (_minor(have)[0], _minor(have)[1] + 1):
            return error(400, "OperationNotAllowed", f"Upgrading from {have} to {want} skips a minor version.")
        c["properties"]["provisioningState"] = "Upgrading"

        def done(fault):
            c["properties"]["provisioningState"] = "Failed" if fault else "Succeeded"
            if not fault and want:
                c["properties"].update(kubernetesVersion=want, currentKubernetesVersion=want + ".3")

        return Reply(200, c, self._async(sub, c["location"], "upgrade_cluster", done))

    def _list(self, method, sub, body, rg=None):
        return Reply(
            200,
            {"value": [c for (s, g, _), c in self.clusters.items() if s == sub and (rg is None or g == rg.lower())]},
        )

    def _credentials(self, method, sub, rg, name, body):
        c = self._find(sub, rg, name)
        if c is None:
            return error(404, "ResourceNotFound", f"managed cluster {name} was not found.")
        user = f"clusterUser_{rg}_{name}"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "preferences": {},
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "certificate-authority-data": self.api_ca_b64 or self.ca_b64,
                        "server": self.api_server or f"https://{c['properties']['fqdn']}:443",
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": base64.b64encode(b"test client certificate").decode(),
                        "client-key-data": base64.b64encode(self.user_key.encode()).decode(),
                        "token": self.user_token,
                    },
                }
            ],
        }
        value = base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()
        return Reply(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})

    @staticmethod
    def _pool_doc(c, prof):
        return {
            "id": f"{c['id']}/agentPools/{prof['name']}",
            "name": prof["name"],
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": {k: v for k, v in prof.items() if k != "name"},
        }

    def _pools(self, method, sub, rg, name, body):
        c = self._find(sub, rg, name)
        if c is None:
            return error(404, "ResourceNotFound", f"managed cluster {name} was not found.")
        return Reply(200, {"value": [self._pool_doc(c, p) for p in c["properties"]["agentPoolProfiles"]]})

    def _new_pool(self, sub, c, pool, body):
        new = body["properties"]
        if new.get("mode") == "System" and new.get("scaleSetPriority") == "Spot":
            return error(400, "InvalidParameter", f"System agent pool {pool} cannot be a Spot pool.")
        prof = {"name": pool, **new, "provisioningState": "Creating"}
        c["properties"]["agentPoolProfiles"].append(prof)

        def done(fault):
            prof["provisioningState"] = "Failed" if fault else "Succeeded"

        return Reply(
            201, self._pool_doc(c, prof), self._async(sub, c["location"], "create_pool", done, (c["id"], pool))
        )

    def _delete_pool(self, sub, c, prof):
        profs = c["properties"]["agentPoolProfiles"]
        if prof.get("mode") == "System" and sum(p.get("mode") == "System" for p in profs) == 1:
            return error(400, "OperationNotAllowed", f"Cannot delete {prof['name']}: a cluster needs a System pool.")
        prof["provisioningState"] = "Deleting"

        def done(fault):
            if not fault and prof in profs:
                profs.remove(prof)

        headers = self._async(sub, c["location"], "delete_pool", done)
        headers["Location"] = headers["Azure-AsyncOperation"]
        return Reply(202, None, headers)

    def _pool(self, method, sub, rg, name, pool, body):
        c = self._find(sub, rg, name)
        prof = next(
            (p for p in (c or {}).get("properties", {}).get("agentPoolProfiles", []) if p["name"] == pool), None
        )
        if c is not None and prof is None and method == "PUT":
            return self._new_pool(sub, c, pool, body)
        if prof is None:
            return error(404, "ResourceNotFound", f"agent pool {pool} was not found.")
        if method == "GET":  # the cloud goes on without anyone polling the operation
            for o in list(self.operations.values()):
                if o["target"] == (c["id"], pool):
                    self._advance(o)
        if method == "DELETE":
            return self._delete_pool(sub, c, prof)
        doc = {
            "id": f"{c['id']}/agentPools/{pool}",
            "name": pool,
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": {k: v for k, v in prof.items() if k != "name"},
        }
        if method == "GET":
            return Reply(200, doc)
        if method == "PUT":
            new = body["properties"]
            if new.get("vmSize") != prof.get("vmSize"):
                return error(400, "PropertyChangeNotAllowed", "Changing property 'vmSize' is not allowed.")
            have = c["properties"]["currentKubernetesVersion"]
            if new.get("orchestratorVersion") and _minor(new["orchestratorVersion"]) > _minor(have):
                return error(
                    400,
                    "InvalidParameter",
                    f"Node pool version {new['orchestratorVersion']} is newer than the control plane's {have}.",
                )
            if new.get("orchestratorVersion"):
                new = {**new, "currentOrchestratorVersion": new["orchestratorVersion"]}
            refused = _pool_counts(new)
            if refused:
                return error(400, "InvalidParameter", refused)

            def done(fault):
                if not fault:
                    prof.update(new)

            return Reply(200, doc, self._async(sub, c["location"], "scale", done))
        return error(405, "MethodNotAllowed", method)

    def _advance(self, o):
        if o["status"] == "InProgress":
            if o["polls"] > 0:
                o["polls"] -= 1
            else:
                fault = self.op_faults.pop(o["kind"], None)
                o["status"] = "Failed" if fault else "Succeeded"
                if fault:
                    o["error"] = {"code": fault[0], "message": fault[1]}
                o["done"](fault)

    def _operation(self, method, sub, op, body):
        o = self.operations.get(op)
        if o is None:
            return error(404, "NotFound", f"operation {op}")
        self._advance(o)
        return Reply(200, {"name": op, "status": o["status"], **({"error": o["error"]} if "error" in o else {})})


def _pool_counts(p: dict) -> str | None:
    """What AKS refuses in an agent pool's counts: a System pool without nodes, min/max without the
    autoscaler enabled, and a count outside [minCount, maxCount]."""
    count, lo, hi = p.get("count"), p.get("minCount"), p.get("maxCount")
    if p.get("mode") == "System" and count == 0:
        return "A System mode agent pool must have at least 1 node."
    if not p.get("enableAutoScaling") and (lo is not None or hi is not None):
        return "minCount and maxCount must be null when enableAutoScaling is false."
    if p.get("enableAutoScaling") and (lo is None or hi is None or not lo <= (count or 0) <= hi):
        return f"count {count} must be within minCount {lo} and maxCount {hi} when enableAutoScaling is true."
    return None
