"""GKE with google-cloud-container's ClusterManagerClient (REST transport).

Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
`gcloud auth application-default login`, or the metadata server on GCP).
KUBEINIT_GKE_ENDPOINT overrides the API endpoint (a private or test endpoint;
`http://` is allowed).
"""

from __future__ import annotations

import dataclasses
import os
import re

from kubeinit import kubeconfig as kcfg
from kubeinit.errors import UserError
from kubeinit.managed import checks
from kubeinit.providers.base import CloudError, Fault, Provider, kind_from_code, require

LABEL = "kubeinit-dev-cluster"  # GCP label keys allow only [a-z0-9_-]
# google.rpc.Code → kubeinit fault kind
_GRPC = {3: "invalid", 5: "not_found", 6: "exists", 7: "permission", 8: "quota", 9: "invalid", 16: "auth"}
PLUGIN_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin"
)


class GKE(Provider):
    name, title, extra, packages = "gke", "GKE", "gcp", "google-cloud-container"
    poll_interval = 5.0
    services = ("container",)

    def resolve(self, spec, action="create"):
        project = spec.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
        if not project:
            raise UserError("GKE needs a project: pass --project or set GOOGLE_CLOUD_PROJECT")
        if action != "list" and not spec.region:
            raise UserError("GKE needs a location: pass --zone, --region or --location")
        spec = dataclasses.replace(spec, project=project)
        checks.place(spec)
        return spec

    def client(self, service, ctx):
        container_v1 = require("google.cloud.container_v1", self)
        endpoint = os.environ.get("KUBEINIT_GKE_ENDPOINT")
        return container_v1.ClusterManagerClient(
            transport="rest", client_options={"api_endpoint": endpoint} if endpoint else None
        )

    def classify(self, exc):
        mod = type(exc).__module__
        if mod.startswith("google.api_core"):
            from google.api_core import exceptions as gex

            if isinstance(exc, gex.GoogleAPICallError):
                status = int(exc.code) if exc.code is not None else None
                reason = getattr(exc, "reason", None) or (exc.grpc_status_code.name if exc.grpc_status_code else "")
                message = re.sub(r"^[A-Z]+ \S+: ", "", exc.message or "")  # drop the "POST https://…: " prefix
                resp = getattr(exc, "response", None)
                rid = resp.headers.get("x-goog-request-id", "") if resp is not None and hasattr(resp, "headers") else ""
                detail = ", ".join(
                    x
                    for x in (
                        f"HTTP {status}",
                        reason,
                        rid and f"request id {rid}",
                        "; ".join(map(str, exc.details or ())),
                    )
                    if x
                )
                return Fault(kind_from_code(reason or "", message, status), reason or str(status), message, detail)
            if isinstance(exc, gex.RetryError):
                return Fault("unavailable", "", str(exc))
        if mod.startswith("google.auth"):
            return Fault("auth", type(exc).__name__, str(exc).split("\n")[0])
        if mod.startswith("requests") or mod.startswith("urllib3"):
            return Fault("unavailable", "", str(exc))
        return None

    @staticmethod
    def _parent(s, location=None):
        return f"projects/{s.project}/locations/{location or s.region}"

    def _cluster_path(self, s):
        return f"{self._parent(s)}/clusters/{s.name}"

    def _wait_op(self, ctx, what, op_name):
        container = ctx.api("container")

        def check(op):
            if op.status.name != "DONE":
                return op.status.name
            if op.error and op.error.code:
                return Fault(_GRPC.get(op.error.code, "failed"), f"operation {op_name}", op.error.message)
            return True

        ctx.wait(
            what,
            lambda: container.get_operation(request={"name": f"{self._parent(ctx.spec)}/operations/{op_name}"}),
            check,
        )

    def create(self, ctx):
        s, container = ctx.spec, ctx.api("container")
        if ctx.record.get("cluster", s.name) is None:  # the name must be free before anything is made
            with ctx.step(f"looking up GKE cluster {s.name}"):
                ctx.check_free(lambda: container.get_cluster(request={"name": self._cluster_path(s)}), self._taken(s))
        pools = [self._pool_body(p) for p in s.node_pools]
        cluster = {
            "name": s.name,
            "node_pools": pools,
            "resource_labels": {**s.tags, LABEL: s.name},
            **({"initial_cluster_version": s.version} if s.version else {}),
            **({"locations": list(s.zones)} if s.zones else {}),
        }
        entry = ctx.ensure(
            "cluster",
            s.name,
            f"GKE cluster {s.name}",
            lambda: (
                s.name,
                {"operation": container.create_cluster(request={"parent": self._parent(s), "cluster": cluster}).name},
            ),
        )
        if entry["data"].get("operation") is not None:
            self._wait_op(ctx, f"GKE cluster {s.name} is created", entry["data"]["operation"])
        else:  # found after an interrupted create: its operation's name is unknown, so watch the cluster
            ctx.wait(
                f"GKE cluster {s.name} is created",
                lambda: container.get_cluster(request={"name": self._cluster_path(s)}),
                self._running,
            )

    @staticmethod
    def _running(c):
        """Wait check on a Cluster: True when RUNNING, a Fault when ERROR, else its status."""
        state = c.status.name
        if state in ("ERROR", "DEGRADED"):
            return Fault("failed", state, c.status_message or f"the cluster's status is {state}")
        return True if state == "RUNNING" else state

    @staticmethod
    def _taken(s):
        return (
            f"a GKE cluster named {s.name} already exists in {s.project}/{s.region} and kubeinit has no record "
            "of creating it: choose another --name (nothing was created)"
        )

    def find_cluster(self, ctx, e):
        s = ctx.spec
        try:
            c = ctx.api("container").get_cluster(request={"name": self._cluster_path(s)})
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        if dict(c.resource_labels).get(LABEL) != s.name:
            raise UserError(self._taken(s))
        return s.name, {"operation": None}

    def find_node_pool(self, ctx, e):
        try:
            ctx.api("container").get_node_pool(
                request={"name": f"{self._cluster_path(ctx.spec)}/nodePools/{e['name']}"}
            )
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        return e["name"], {"operation": None}

    def failed_cluster(self, ctx, e):
        c = ctx.api("container").get_cluster(request={"name": self._cluster_path(ctx.spec)})
        return f"status ERROR: {c.status_message or 'no message'}" if c.status.name == "ERROR" else None

    @staticmethod
    def _pool_body(p) -> dict:
        """A NodePool message (snake_case fields, as the SDK takes them) for a NodePoolSpec."""
        pool = {
            "name": p.name,
            "initial_node_count": p.count,
            "config": {
                "machine_type": p.instance_type,
                "labels": dict(p.labels),
                **({"disk_size_gb": p.disk_size} if p.disk_size else {}),
                **({"spot": True} if p.spot else {}),
            },
        }
        if p.min is not None or p.max is not None:
            pool["autoscaling"] = {
                "enabled": True,
                "min_node_count": p.min or 0,
                "max_node_count": p.max if p.max is not None else p.count,
            }
        return pool

    def kubeconfig(self, ctx):
        s = ctx.spec
        with ctx.step(f"reading GKE cluster {s.name}"):
            c = ctx.api("container").get_cluster(request={"name": self._cluster_path(s)})
        user = {
            "exec": {
                "apiVersion": kcfg.EXEC_API,
                "command": "gke-gcloud-auth-plugin",
                "installHint": PLUGIN_HINT,
                "provideClusterInfo": True,
                "interactiveMode": "IfAvailable",
            }
        }
        return kcfg.entry(
            f"gke_{s.project}_{s.region}_{s.name}", f"https://{c.endpoint}", c.master_auth.cluster_ca_certificate, user
        )

    def list(self, ctx):
        s = ctx.spec
        with ctx.step(f"listing GKE clusters in project {s.project}"):
            resp = ctx.api("container").list_clusters(request={"parent": self._parent(s, s.region or "-")})
        return [
            {
                "name": c.name,
                "location": c.location,
                "version": c.current_master_version,
                "status": c.status.name,
                "endpoint": c.endpoint,
            }
            for c in resp.clusters
        ]

    def scale(self, ctx, pool, nodes, min_, max_):
        s, container = ctx.spec, ctx.api("container")
        name = f"{self._cluster_path(s)}/nodePools/{pool}"
        if min_ is not None or max_ is not None:
            with ctx.step(f"setting autoscaling of GKE node pool {pool}"):
                op = container.set_node_pool_autoscaling(
                    request={
                        "name": name,
                        "autoscaling": {
                            "enabled": True,
                            "min_node_count": min_ or 0,
                            "max_node_count": max_ if max_ is not None else nodes,
                        },
                    }
                )
            self._wait_op(ctx, f"autoscaling of GKE node pool {pool} is set", op.name)
        with ctx.step(f"scaling GKE node pool {pool} to {nodes} nodes per zone"):
            op = container.set_node_pool_size(request={"name": name, "node_count": nodes})
        self._wait_op(ctx, f"GKE node pool {pool} is resized", op.name)

    def describe(self, e):
        return f"GKE {'node pool' if e['kind'] == 'node_pool' else 'cluster'} {e['id']}"

    def delete_node_pool(self, ctx, e):
        from kubeinit.managed import pools

        pools.gke_delete(self, ctx, e)

    def delete_cluster(self, ctx, e):
        container = ctx.api("container")
        if e["data"].get("deleting"):  # --no-wait started it: GKE refuses a second delete while the first runs
            ctx.wait(
                f"GKE cluster {e['id']} is deleted",
                lambda: container.get_cluster(request={"name": self._cluster_path(ctx.spec)}),
                gone=True,
            )
            return
        op = container.delete_cluster(request={"name": self._cluster_path(ctx.spec)})
        self._wait_op(ctx, f"GKE cluster {e['id']} is deleted", op.name)
