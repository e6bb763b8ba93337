"""EKS with boto3: IAM roles, a VPC (unless subnets are given), the cluster, its nodegroups.

Endpoints and credentials come from boto3's own configuration chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL[_EKS|_EC2|_IAM], ~/.aws, SSO, instance roles).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys

from kubeinit import kubeconfig as kcfg
from kubeinit import redact
from kubeinit.errors import UserError
from kubeinit.managed import checks
from kubeinit.providers.base import TAG, Fault, Provider, kind_from_code, require, unless_missing
from kubeinit.providers.eks_iam import CLUSTER_POLICIES, NODE_POLICIES, EKSIam
from kubeinit.providers.eks_network import EKSNetwork
from kubeinit.providers.eks_network import status_check as _status


class EKS(EKSIam, EKSNetwork, Provider):
    name, title, extra, packages = "eks", "EKS", "aws", "boto3"
    poll_interval = 15.0
    services = ("iam", "ec2", "eks")

    def resolve(self, spec, action="create"):
        region = spec.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise UserError("EKS needs a region: pass --region or set AWS_REGION")
        spec = dataclasses.replace(spec, region=region)
        checks.place(spec)
        return spec

    def client(self, service, ctx):
        boto3 = require("boto3", self)
        if not hasattr(self, "_session"):
            import botocore.session

            core = botocore.session.get_session()
            # botocore parses its JSON service models per session (~0.2 s for EC2): share them in-process
            core.register_component("data_loader", _loader())
            self._session = boto3.session.Session(
                botocore_session=core, region_name=ctx.spec.region, profile_name=getattr(ctx.spec, "profile", None)
            )
            creds = self._session.get_credentials()
            if creds is not None:  # keep whatever the chain found out of every output
                frozen = creds.get_frozen_credentials()
                for secret in (frozen.secret_key, frozen.token):
                    if secret:
                        redact.register(secret)
        from botocore.config import Config

        return self._session.client(service, config=Config(retries={"mode": "standard"}))

    def classify(self, exc):
        try:
            from botocore import exceptions as bex
        except ImportError:
            return None
        if isinstance(exc, bex.ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code, msg = str(err.get("Code", "")), str(err.get("Message", ""))
            meta = exc.response.get("ResponseMetadata", {})
            detail = f"request id {meta.get('RequestId') or '-'}, HTTP {status}, {code}, {exc.operation_name}"
            return Fault(kind_from_code(code, msg, None if status in (400, 404, 409) else status), code, msg, detail)
        if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
            return Fault("auth", "", "no AWS credentials found (environment, ~/.aws, SSO or instance role)")
        if isinstance(exc, bex.ProfileNotFound):
            return Fault("auth", "ProfileNotFound", f"{exc}: name a profile of ~/.aws/config in AWS_PROFILE")
        if isinstance(exc, (bex.InvalidRegionError, bex.NoRegionError)):
            return Fault("invalid", type(exc).__name__, str(exc))
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError)):
            return Fault("unavailable", "", str(exc))
        if isinstance(exc, bex.BotoCoreError):
            return Fault("failed", type(exc).__name__, str(exc))
        return None

    # -- create ------------------------------------------------------------
    def create(self, ctx):
        s, eks = ctx.spec, ctx.api("eks")
        if ctx.record.get("cluster", s.name) is None:  # before any role or VPC: is the name free?
            with ctx.step(f"looking up EKS cluster {s.name}"):
                ctx.check_free(lambda: eks.describe_cluster(name=s.name), self._taken(s))
        cluster_role = s.cluster_role_arn or self._role(ctx, "cluster", "eks.amazonaws.com", CLUSTER_POLICIES)
        node_role = s.node_role_arn or self._role(ctx, "node", "ec2.amazonaws.com", NODE_POLICIES)
        cluster_subnets, node_subnets = (list(s.subnets), list(s.subnets)) if s.subnets else self._network(ctx)
        ctx.ensure(
            "cluster",
            s.name,
            f"EKS cluster {s.name}",
            lambda: eks.create_cluster(
                name=s.name,
                roleArn=cluster_role,
                clientRequestToken=ctx.record.token("cluster", s.name),
                **({"version": s.version} if s.version else {}),
                resourcesVpcConfig={
                    "subnetIds": cluster_subnets,
                    "endpointPublicAccess": True,
                    "endpointPrivateAccess": False,
                },
                accessConfig={
                    "authenticationMode": "API_AND_CONFIG_MAP",
                    "bootstrapClusterCreatorAdminPermissions": True,
                },
                tags=self._tags(s),
            )["cluster"]["name"],
        )
        ctx.wait(
            f"EKS cluster {s.name} is ACTIVE",
            lambda: eks.describe_cluster(name=s.name),
            lambda r: _status(r["cluster"], "ACTIVE", ("FAILED", "DELETING")),
        )
        for pool in s.node_pools:
            self.ensure_nodegroup(ctx, pool, node_role, node_subnets, ctx.record.token("nodegroup", pool.name))
        for pool in s.node_pools:
            self._wait_nodegroup(ctx, pool.name)

    def ensure_nodegroup(self, ctx, pool, role: str, subnets: list[str], token: str | None = None) -> None:
        """Create nodegroup `pool` of the cluster unless the record has it (not waiting for it)."""
        s, eks = ctx.spec, ctx.api("eks")
        scaling = {
            "desiredSize": pool.count,
            "minSize": pool.count if pool.min is None else pool.min,
            "maxSize": max(pool.count, 1) if pool.max is None else pool.max,
        }
        ctx.ensure(
            "nodegroup",
            pool.name,
            f"EKS nodegroup {pool.name}",
            lambda: eks.create_nodegroup(
                clusterName=s.name,
                nodegroupName=pool.name,
                nodeRole=role,
                subnets=subnets,
                **({"clientRequestToken": token} if token else {}),
                scalingConfig=scaling,
                instanceTypes=[pool.instance_type],
                amiType="AL2023_x86_64_STANDARD",
                capacityType="SPOT" if pool.spot else "ON_DEMAND",
                **({"diskSize": pool.disk_size} if pool.disk_size else {}),
                labels=dict(pool.labels),
                tags=self._tags(s),
            )["nodegroup"]["nodegroupName"],
        )

    def _wait_nodegroup(self, ctx, pool, desired=None):
        eks = ctx.api("eks")

        def check(r):
            ng = r["nodegroup"]
            if desired is not None and ng["scalingConfig"]["desiredSize"] != desired:
                return ng["status"]
            return _status(ng, "ACTIVE", ("CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED"))

        ctx.wait(
            f"EKS nodegroup {pool} is ACTIVE",
            lambda: eks.describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=pool),
            check,
        )

    @staticmethod
    def _tags(s):
        return {**s.tags, TAG: s.name}

    def _tag_list(self, s):
        return [{"Key": k, "Value": v} for k, v in self._tags(s).items()]

    # -- what an interrupted create made, and what failed in the cloud -----
    @staticmethod
    def _taken(s):
        return (
            f"an EKS cluster named {s.name} already exists in {s.region} and kubeinit has no record of "
            "creating it: choose another --name (nothing was created)"
        )

    def find_cluster(self, ctx, e):
        c = unless_missing(lambda: ctx.api("eks").describe_cluster(name=e["name"])["cluster"])
        if c is None:
            return None
        if (c.get("tags") or {}).get(TAG) != ctx.spec.name:
            raise UserError(self._taken(ctx.spec))
        return c["name"]

    def find_nodegroup(self, ctx, e):
        ng = unless_missing(
            lambda: ctx.api("eks").describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["name"])["nodegroup"]
        )
        return None if ng is None else ng["nodegroupName"]

    def failed_cluster(self, ctx, e):
        c = ctx.api("eks").describe_cluster(name=e["id"])["cluster"]
        return f"status {c['status']}" if c["status"] == "FAILED" else None

    def failed_nodegroup(self, ctx, e):
        ng = ctx.api("eks").describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["id"])["nodegroup"]
        if ng["status"] != "CREATE_FAILED":
            return None
        issues = (ng.get("health") or {}).get("issues") or []
        return "status CREATE_FAILED" + "".join(f"; {i.get('code')}: {i.get('message')}" for i in issues[:2])

    # -- kubeconfig, list, scale -------------------------------------------
    def kubeconfig(self, ctx):
        s = ctx.spec
        with ctx.step(f"reading EKS cluster {s.name}"):
            c = ctx.api("eks").describe_cluster(name=s.name)["cluster"]
        user = {
            "exec": {
                "apiVersion": kcfg.EXEC_API,
                "command": "aws",
                "args": ["--region", s.region, "eks", "get-token", "--cluster-name", s.name, "--output", "json"],
                "interactiveMode": "IfAvailable",
            }
        }
        if not shutil.which("aws"):  # no AWS CLI: kubeinit signs the token itself
            user["exec"].update(_kubeinit_exec(s.name, s.region))
        profile = getattr(s, "profile", None) or os.environ.get("AWS_PROFILE")
        if profile:
            user["exec"]["env"] = [{"name": "AWS_PROFILE", "value": profile}]
        return kcfg.entry(c["arn"], c["endpoint"], c["certificateAuthority"]["data"], user)

    def list(self, ctx):
        eks, names, kw = ctx.api("eks"), [], {}
        with ctx.step(f"listing EKS clusters in {ctx.spec.region}"):
            while True:
                page = eks.list_clusters(**kw)
                names += page["clusters"]
                if not page.get("nextToken"):
                    break
                kw = {"nextToken": page["nextToken"]}
            rows = []
            for name in names:
                c = eks.describe_cluster(name=name)["cluster"]
                rows.append(
                    {
                        "name": name,
                        "location": ctx.spec.region,
                        "version": c.get("version", ""),
                        "status": c.get("status", ""),
                        "endpoint": c.get("endpoint", ""),
                    }
                )
        return rows

    def scale(self, ctx, pool, nodes, min_, max_):
        # EKS refuses a desiredSize outside [minSize, maxSize]: send all three, the range widened if it must be
        with ctx.step(f"reading EKS nodegroup {pool}"):
            cur = ctx.api("eks").describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=pool)["nodegroup"]
        cfg = ctx.decide(
            lambda: self._range(ctx, pool, cur["scalingConfig"], nodes, min_, max_),
            f"minSize/maxSize: the nodegroup's (or the flags'), widened to hold {nodes} nodes if needed",
        )
        with ctx.step(f"scaling EKS nodegroup {pool} to {nodes} nodes"):
            ctx.api("eks").update_nodegroup_config(clusterName=ctx.spec.name, nodegroupName=pool, scalingConfig=cfg)
        self._wait_nodegroup(ctx, pool, desired=nodes)

    @staticmethod
    def _range(ctx, pool, cur, nodes, min_, max_):
        lo = cur["minSize"] if min_ is None else min_
        hi = cur["maxSize"] if max_ is None else max_
        new_lo, new_hi = min(lo, nodes), max(hi, nodes, 1)
        if (new_lo, new_hi) != (lo, hi):
            ctx.note(
                f"widening EKS nodegroup {pool}'s size range from [{lo}, {hi}] to [{new_lo}, {new_hi}] "
                f"to hold {nodes} nodes (EKS refuses a desired size outside it)"
            )
        return {"minSize": new_lo, "maxSize": new_hi, "desiredSize": nodes}

    # -- delete ------------------------------------------------------------
    def discover(self, ctx):
        s, eks, found = ctx.spec, ctx.api("eks"), []
        with ctx.step(f"looking up EKS cluster {s.name}", missing_ok=True):
            eks.describe_cluster(name=s.name)  # NotFound: nothing to delete
            found.append({"kind": "cluster", "name": s.name, "id": s.name, "data": {}})
            for ng in eks.list_nodegroups(clusterName=s.name)["nodegroups"]:
                found.append({"kind": "nodegroup", "name": ng, "id": ng, "data": {}})
        return found

    def describe(self, e):
        names = {
            "cluster": "EKS cluster",
            "nodegroup": "EKS nodegroup",
            "iam_role": "IAM role",
            "vpc": "VPC",
            "internet_gateway": "internet gateway",
            "route_table": "route table",
            "subnet": "subnet",
            "elastic_ip": "elastic IP",
            "nat_gateway": "NAT gateway",
        }
        if e["kind"] == "igw_attachment":
            return f"attachment of {e['id']} to {e['data']['vpc']}"
        if e["kind"] == "route":
            return f"route {e['data']['destination']} in {e['id']}"
        if e["kind"] == "rt_association":
            return f"route table association {e['id']}"
        return f"{names[e['kind']]} {e['id']}"

    def delete_nodegroup(self, ctx, e):
        eks = ctx.api("eks")
        eks.delete_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["id"])
        ctx.wait(
            f"EKS nodegroup {e['id']} is deleted",
            lambda: eks.describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["id"]),
            lambda r: _status(r["nodegroup"], None, ("DELETE_FAILED",)),
            gone=True,
        )

    def delete_cluster(self, ctx, e):
        eks = ctx.api("eks")
        eks.delete_cluster(name=e["id"])
        ctx.wait(
            f"EKS cluster {e['id']} is deleted",
            lambda: eks.describe_cluster(name=e["id"]),
            lambda r: _status(r["cluster"], None, ("FAILED",)),
            gone=True,
        )


def _kubeinit_exec(cluster: str, region: str) -> dict:
    """`kubeinit token eks` as the exec plugin: this kubeinit, by its PATH name if that is this one."""
    args = ["token", "eks", "--cluster", cluster, "--region", region]
    found = shutil.which("kubeinit")
    if found and os.path.dirname(os.path.realpath(found)) == os.path.dirname(os.path.realpath(sys.executable)):
        return {"command": "kubeinit", "args": args}
    return {"command": sys.executable, "args": ["-m", "kubeinit", *args]}


@functools.lru_cache(maxsize=1)
def _loader():
    from botocore.loaders import create_loader

    return create_loader()
