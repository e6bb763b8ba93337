"""AKS with azure-mgmt-containerservice and DefaultAzureCredential.

Credentials: DefaultAzureCredential's chain (environment, workload or managed
identity, `az login`, …). KUBEINIT_AZURE_ARM_ENDPOINT overrides the Resource
Manager endpoint (sovereign clouds, Azure Stack, a private test endpoint);
TLS trust follows REQUESTS_CA_BUNDLE as for any requests-based client.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from kubeinit.errors import UserError
from kubeinit.managed import checks
from kubeinit.providers.base import CloudError, Fault, Provider, kind_from_code, require, unless_missing, verbose

TAG = "kubeinit.dev-cluster"  # Azure tag names may not contain '/'
RG_API = "2021-04-01"


class ResourceGroups:
    """The resource-group calls kubeinit needs, with azure-mgmt-resource's names and arguments,
    sent through the container service client's ARM pipeline (same credential, retries and
    endpoint) rather than adding another SDK."""

    def __init__(self, client, subscription: str):
        self._client, self._sub = client, subscription
        self.resource_groups = self

    def _send(self, method: str, name: str, body: dict | None = None):
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        req = HttpRequest(
            method, f"/subscriptions/{self._sub}/resourcegroups/{name}", params={"api-version": RG_API}, json=body
        )
        resp = self._client.send_request(req)
        if resp.status_code == 404 and method != "HEAD":
            raise ResourceNotFoundError(response=resp, error_format=ARMErrorFormat)
        if resp.status_code >= 400 and not (method == "HEAD" and resp.status_code == 404):
            raise HttpResponseError(response=resp, error_format=ARMErrorFormat)
        return resp

    def check_existence(self, resource_group_name: str) -> bool:
        return self._send("HEAD", resource_group_name).status_code == 204

    def create_or_update(self, resource_group_name: str, parameters: dict) -> dict:
        return self._send("PUT", resource_group_name, parameters).json()

    def get(self, resource_group_name: str) -> dict:
        return self._send("GET", resource_group_name).json()

    def begin_delete(self, resource_group_name: str) -> None:
        self._send("DELETE", resource_group_name)  # completion is awaited by polling get()


class AKS(Provider):
    name, title, extra, packages = "aks", "AKS", "azure", "azure-mgmt-containerservice and azure-identity"
    poll_interval = 10.0
    services = ("containerservice", "resources")

    def resolve(self, spec, action="create"):
        sub = spec.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if not sub:
            raise UserError("AKS needs a subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
        if action == "create" and not spec.region:
            raise UserError("AKS needs a location: pass --location (e.g. westeurope)")
        rg = spec.resource_group or (None if action == "list" else f"kubeinit-{spec.name}")
        spec = dataclasses.replace(spec, subscription=sub, resource_group=rg)
        checks.place(spec)
        return spec

    def client(self, service, ctx):
        if not hasattr(self, "_client"):
            cs = require("azure.mgmt.containerservice", self)
            identity = require("azure.identity", self)
            if not verbose():  # each credential of the chain warns when it finds nothing: one line says it below
                logging.getLogger("azure.identity").setLevel(logging.ERROR)
            kw = {"polling_interval": ctx.interval}
            endpoint = os.environ.get("KUBEINIT_AZURE_ARM_ENDPOINT")
            if endpoint:
                kw.update(base_url=endpoint, credential_scopes=[endpoint.rstrip("/") + "/.default"])
            self._client = cs.ContainerServiceClient(identity.DefaultAzureCredential(), ctx.spec.subscription, **kw)
        return ResourceGroups(self._client, ctx.spec.subscription) if service == "resources" else self._client

    def classify(self, exc):
        if not type(exc).__module__.startswith("azure."):
            return None
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        if isinstance(exc, ClientAuthenticationError):
            return Fault("auth", type(exc).__name__, str(exc.message or exc).split("\n")[0])
        if isinstance(exc, HttpResponseError):
            err = exc.error
            code = (getattr(err, "code", None) or "") if err else ""
            msg = (getattr(err, "message", None) or "") if err else (exc.reason or "")
            status = exc.status_code if exc.status_code and exc.status_code >= 400 else None
            headers = getattr(exc.response, "headers", None) or {}
            rid = headers.get("x-ms-request-id") or headers.get("x-ms-correlation-request-id") or "-"
            detail = f"request id {rid}, HTTP {exc.status_code}, {code or exc.reason or ''}".rstrip(", ")
            return Fault(kind_from_code(code, msg, status), code or str(exc.status_code), msg, detail)
        if isinstance(exc, ServiceRequestError):
            return Fault("unavailable", "", str(exc.message))
        return None

    def _tags(self, s):
        return {**s.tags, TAG: s.name}

    def create(self, ctx):
        s = ctx.spec
        rgs, mc = ctx.api("resources").resource_groups, ctx.api("containerservice").managed_clusters
        if ctx.record.get("cluster", s.name) is None:  # the name must be free before anything is made
            with ctx.step(f"looking up AKS cluster {s.name}"):
                ctx.check_free(lambda: mc.get(s.resource_group, s.name), self._taken(s))
        group = ctx.record.get("resource_group", s.resource_group)
        if group is None or group.get("pending"):
            ctx.when_missing(
                f"resource group {s.resource_group}",
                lambda: self._foreign_group(ctx),
                lambda: ctx.ensure(
                    "resource_group",
                    s.resource_group,
                    "resource group",
                    lambda: rgs.create_or_update(s.resource_group, {"location": s.region, "tags": self._tags(s)})[
                        "name"
                    ],
                ),
            )
        profiles = [{"name": p.name, **self._pool_body(s, p, system=(i == 0))} for i, p in enumerate(s.node_pools)]
        body = {
            "location": s.region,
            "tags": self._tags(s),
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": s.name,
                "agentPoolProfiles": profiles,
                **({"kubernetesVersion": s.version} if s.version else {}),
            },
        }
        pollers = []

        def create_cluster():
            pollers.append(mc.begin_create_or_update(s.resource_group, s.name, body))
            return s.name

        ctx.ensure("cluster", s.name, f"AKS cluster {s.name}", create_cluster)
        what = f"AKS cluster {s.name} is created"
        if pollers:  # created in this run: follow its operation, which carries the failure's cause
            ctx.wait_lro(what, pollers[0])
        else:  # resumed: the earlier operation is gone; watch the cluster itself
            ctx.wait(what, lambda: mc.get(s.resource_group, s.name), _provisioned)

    def _pool_body(self, s, p, system: bool) -> dict:
        """An agent pool's properties for a NodePoolSpec (ARM's field names)."""
        if p.spot and system:
            raise UserError(
                f"AKS node pool {p.name} is a system pool, and AKS system pools cannot be spot: "
                "drop --spot, or add a user pool with `kubeinit create nodepool NAME --cluster C --spot`"
            )
        prof = {
            "count": p.count,
            "vmSize": p.instance_type,
            "mode": "System" if system else "User",
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "nodeLabels": dict(p.labels),
            "tags": self._tags(s),
        }
        if p.disk_size:
            prof["osDiskSizeGB"] = p.disk_size
        if p.min is not None or p.max is not None:
            prof.update(enableAutoScaling=True, minCount=p.min or 0, maxCount=p.max if p.max is not None else p.count)
        if s.zones:
            prof["availabilityZones"] = list(s.zones)
        if p.spot:  # evicted VMs are deleted; -1: pay up to the on-demand price, never evicted for price
            prof.update(scaleSetPriority="Spot", scaleSetEvictionPolicy="Delete", spotMaxPrice=-1)
        return prof

    @staticmethod
    def _taken(s):
        return (
            f"an AKS cluster named {s.name} already exists in resource group {s.resource_group} and kubeinit has "
            "no record of creating it: choose another --name (nothing was created)"
        )

    def _foreign_group(self, ctx):
        """Does the resource group exist and belong to someone else (then it is used, never recorded)?"""
        s, rgs = ctx.spec, ctx.api("resources").resource_groups
        exists = rgs.check_existence(s.resource_group)

        def foreign():
            entry = ctx.record.get("resource_group", s.resource_group)
            if not exists:
                return False
            if entry is None:
                return True
            if (rgs.get(s.resource_group).get("tags") or {}).get(TAG) == s.name:
                return False  # made by an interrupted run: ensure() finds and records it
            ctx.record.remove(entry)
            return True

        return ctx.decide(foreign, f"(the group is used as it is if it exists and is not kubeinit's for {s.name})")

    def find_resource_group(self, ctx, e):
        try:
            g = ctx.api("resources").resource_groups.get(e["name"])
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        return g["name"] if (g.get("tags") or {}).get(TAG) == ctx.spec.name else None

    def find_cluster(self, ctx, e):
        s = ctx.spec
        try:
            c = ctx.api("containerservice").managed_clusters.get(s.resource_group, s.name)
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        if (c.get("tags") or {}).get(TAG) != s.name:
            raise UserError(self._taken(s))
        return s.name

    def find_agent_pool(self, ctx, e):
        s = ctx.spec
        pool = unless_missing(lambda: ctx.api("containerservice").agent_pools.get(s.resource_group, s.name, e["name"]))
        return None if pool is None else e["name"]

    def failed_cluster(self, ctx, e):
        s = ctx.spec
        c = ctx.api("containerservice").managed_clusters.get(s.resource_group, s.name)
        state = c["properties"].get("provisioningState")
        return f"provisioning state {state}" if state in ("Failed", "Canceled") else None

    def kubeconfig(self, ctx):
        s = ctx.spec
        with ctx.step(f"reading the user credentials of AKS cluster {s.name}"):
            creds = ctx.api("containerservice").managed_clusters.list_cluster_user_credentials(s.resource_group, s.name)
        return creds.kubeconfigs[0].value  # YAML bytes, as `az aks get-credentials` writes them

    def list(self, ctx):
        s, mc = ctx.spec, ctx.api("containerservice").managed_clusters
        with ctx.step("listing AKS clusters"):
            pages = ctx.all(mc.list_by_resource_group(s.resource_group) if s.resource_group else mc.list())
            return [
                {
                    "name": c["name"],
                    "location": c["location"],
                    "version": c["properties"].get("currentKubernetesVersion")
                    or c["properties"].get("kubernetesVersion", ""),
                    "status": c["properties"].get("provisioningState", ""),
                    "endpoint": c["properties"].get("fqdn", ""),
                }
                for c in pages
            ]

    def scale(self, ctx, pool, nodes, min_, max_):
        s, pools = ctx.spec, ctx.api("containerservice").agent_pools
        with ctx.step(f"scaling AKS node pool {pool} to {nodes} nodes"):
            body = pools.get(s.resource_group, s.name, pool)  # PUT replaces the pool: send it whole
            ctx.decide(
                lambda: self._scalable(body, pool, nodes, min_),
                "(refused if it is a System pool and --nodes is 0, or autoscaled and no range is given)",
            )
            body["properties"]["count"] = nodes
            if min_ is not None:  # checks.scale: min and max come together; AKS takes them only with the autoscaler
                body["properties"]["enableAutoScaling"] = True
                body["properties"]["minCount"] = min_
                body["properties"]["maxCount"] = max_
            poller = pools.begin_create_or_update(s.resource_group, s.name, pool, body)
        ctx.wait_lro(f"AKS node pool {pool} is scaled", poller)

    @staticmethod
    def _scalable(body, pool, nodes, min_):
        props = body["properties"]
        if props.get("mode") == "System" and nodes == 0:
            raise UserError(f"AKS node pool {pool} is a System pool: it needs at least 1 node")
        if props.get("enableAutoScaling") and min_ is None:
            raise UserError(
                f"AKS node pool {pool} is autoscaled between {props.get('minCount')} and "
                f"{props.get('maxCount')}: give --nodes-min and --nodes-max with --nodes to change it"
            )

    def describe(self, e):
        what = {"cluster": "AKS cluster", "agent_pool": "AKS node pool"}.get(e["kind"], "resource group")
        return f"{what} {e['id']}"

    def delete_agent_pool(self, ctx, e):
        from kubeinit.managed import pools

        pools.aks_delete(self, ctx, e)

    def delete_cluster(self, ctx, e):
        poller = ctx.api("containerservice").managed_clusters.begin_delete(ctx.spec.resource_group, e["id"])
        ctx.wait_lro(f"AKS cluster {e['id']} is deleted", poller)

    def delete_resource_group(self, ctx, e):
        rgs = ctx.api("resources").resource_groups
        rgs.begin_delete(e["id"])
        ctx.wait(f"resource group {e['id']} is deleted", lambda: rgs.get(e["id"]), gone=True)


def _provisioned(mc):
    state = mc["properties"].get("provisioningState", "")
    if state in ("Failed", "Canceled"):
        return Fault("failed", state, f"the cluster's provisioning state is {state}")
    return True if state == "Succeeded" else state
