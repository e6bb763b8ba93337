"""EKS with boto3: IAM roles, a VPC (unless subnets are given), the cluster, its nodegroups.

Endpoints and credentials come from boto3's own configuration chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL[_EKS|_EC2|_IAM], ~/.aws, SSO, instance roles).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys

from kubeinit import kubeconfig as kcfg
from kubeinit import redact
from kubeinit.errors import UserError
from kubeinit.managed import checks
from kubeinit.providers.base import TAG, CloudError, Fault, Provider, kind_from_code, require

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                 "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore")
VPC_CIDR = "192.168.0.0/16"
PUBLIC_CIDRS = ("192.168.0.0/19", "192.168.32.0/19")
PRIVATE_CIDRS = ("192.168.64.0/19", "192.168.96.0/19")


class EKS(Provider):
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
            self._session = boto3.session.Session(botocore_session=core, region_name=ctx.spec.region,
                                                  profile_name=getattr(ctx.spec, "profile", None))
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
        ctx.ensure("cluster", s.name, f"EKS cluster {s.name}", lambda: eks.create_cluster(
            name=s.name, roleArn=cluster_role, clientRequestToken=ctx.record.token("cluster", s.name), **({"version": s.version} if s.version else {}),
            resourcesVpcConfig={"subnetIds": cluster_subnets, "endpointPublicAccess": True,
                                "endpointPrivateAccess": False},
            accessConfig={"authenticationMode": "API_AND_CONFIG_MAP",
                          "bootstrapClusterCreatorAdminPermissions": True},
            tags=self._tags(s))["cluster"]["name"])
        ctx.wait(f"EKS cluster {s.name} is ACTIVE", lambda: eks.describe_cluster(name=s.name),
                 lambda r: _status(r["cluster"], "ACTIVE", ("FAILED", "DELETING")))
        for pool in s.node_pools:
            scaling = {"desiredSize": pool.count, "minSize": pool.count if pool.min is None else pool.min,
                       "maxSize": max(pool.count, 1) if pool.max is None else pool.max}
            ctx.ensure("nodegroup", pool.name, f"EKS nodegroup {pool.name}", lambda pool=pool, sc=scaling: eks.create_nodegroup(
                clusterName=s.name, nodegroupName=pool.name, nodeRole=node_role, subnets=node_subnets,
                clientRequestToken=ctx.record.token("nodegroup", pool.name),
                scalingConfig=sc, instanceTypes=[pool.instance_type], amiType="AL2023_x86_64_STANDARD",
                capacityType="SPOT" if pool.spot else "ON_DEMAND", **({"diskSize": pool.disk_size} if pool.disk_size else {}),
                labels=dict(pool.labels), tags=self._tags(s))["nodegroup"]["nodegroupName"])
        for pool in s.node_pools:
            self._wait_nodegroup(ctx, pool.name)

    def _role(self, ctx, which, principal, policies):
        s, iam = ctx.spec, ctx.api("iam")
        role = f"kubeinit-{s.name}-{which}"
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": principal},
                                                         "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
        entry = ctx.ensure("iam_role", which, f"IAM role {role}", lambda: (role, {"arn": iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), Tags=self._tag_list(s),
            Description=f"kubeinit: {which} role of EKS cluster {s.name}")["Role"]["Arn"]}))
        with ctx.step(f"attaching policies to IAM role {role}"):
            for policy in policies:  # idempotent, so a resumed run simply repeats it
                iam.attach_role_policy(RoleName=role, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        return entry["data"]["arn"]

    def _network(self, ctx):
        """A VPC with a public and a private subnet in each of two AZs; nodes go in the private ones."""
        s, ec2 = ctx.spec, ctx.api("ec2")

        def tagged(rtype, role):
            return [{"ResourceType": rtype, "Tags": self._tag_list(s) + [{"Key": "Name", "Value": f"kubeinit-{s.name}-{role}"}]}]

        vpc = ctx.ensure("vpc", "vpc", "VPC", lambda: ec2.create_vpc(
            CidrBlock=VPC_CIDR, TagSpecifications=tagged("vpc", "vpc"))["Vpc"]["VpcId"])["id"]
        with ctx.step(f"configuring VPC {vpc}"):
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        igw = ctx.ensure("internet_gateway", "igw", "internet gateway", lambda: ec2.create_internet_gateway(
            TagSpecifications=tagged("internet-gateway", "igw"))["InternetGateway"]["InternetGatewayId"])["id"]

        def attach():
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            return igw, {"vpc": vpc}

        ctx.ensure("igw_attachment", "igw", f"attachment of {igw} to {vpc}", attach)
        with ctx.step("looking up availability zones"):
            if s.zones:  # --zones: asking for them by name makes a wrong one fail here, before any subnet
                ec2.describe_availability_zones(ZoneNames=list(s.zones))
                zone_names = tuple(s.zones)
            else:
                zones = ec2.describe_availability_zones(
                    Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
                zone_names = (zones[0]["ZoneName"], zones[1]["ZoneName"])
        public_cidrs, private_cidrs = _cidrs(len(zone_names))
        public = self._subnets(ctx, "public", vpc, zone_names, public_cidrs, ("0.0.0.0/0", "GatewayId", igw), tagged)
        eip = ctx.ensure("elastic_ip", "nat", "elastic IP for the NAT gateway", lambda: ec2.allocate_address(
            Domain="vpc", TagSpecifications=tagged("elastic-ip", "nat"))["AllocationId"])["id"]
        nat = ctx.ensure("nat_gateway", "nat", "NAT gateway", lambda: ec2.create_nat_gateway(
            SubnetId=public[0], AllocationId=eip, ClientToken=ctx.record.token("nat_gateway", "nat"),
            TagSpecifications=tagged("natgateway", "nat"))["NatGateway"]["NatGatewayId"])["id"]
        ctx.wait(f"NAT gateway {nat} is available", lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat]),
                 lambda r: _status(r["NatGateways"][0], "available", ("failed", "deleted"), key="State"))
        private = self._subnets(ctx, "private", vpc, zone_names, private_cidrs, ("0.0.0.0/0", "NatGatewayId", nat), tagged)
        return public + private, private

    def _subnets(self, ctx, kind, vpc, zones, cidrs, route, tagged):
        ec2 = ctx.api("ec2")
        rt = ctx.ensure("route_table", kind, f"{kind} route table", lambda: ec2.create_route_table(
            VpcId=vpc, ClientToken=ctx.record.token("route_table", kind), TagSpecifications=tagged("route-table", kind))["RouteTable"]["RouteTableId"])["id"]
        dest, target, target_id = route

        def add_route():
            ec2.create_route(RouteTableId=rt, DestinationCidrBlock=dest, **{target: target_id})
            return rt, {"destination": dest}

        ctx.ensure("route", kind, f"{kind} default route", add_route)
        lb_role = "kubernetes.io/role/elb" if kind == "public" else "kubernetes.io/role/internal-elb"
        ids = []
        for i, (zone, cidr) in enumerate(zip(zones, cidrs)):
            spec = tagged("subnet", f"{kind}-{i}")
            spec[0]["Tags"].append({"Key": lb_role, "Value": "1"})
            sid = ctx.ensure("subnet", f"{kind}-{i}", f"{kind} subnet {cidr}", lambda zone=zone, cidr=cidr, spec=spec: ec2.create_subnet(
                VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=spec)["Subnet"]["SubnetId"])["id"]
            if kind == "public":
                with ctx.step(f"configuring subnet {sid}"):
                    ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
            ctx.ensure("rt_association", f"{kind}-{i}", f"association of {sid} with {rt}",
                       lambda sid=sid: ec2.associate_route_table(RouteTableId=rt, SubnetId=sid)["AssociationId"])
            ids.append(sid)
        return ids

    def _wait_nodegroup(self, ctx, pool, desired=None):
        eks = ctx.api("eks")

        def check(r):
            ng = r["nodegroup"]
            if desired is not None and ng["scalingConfig"]["desiredSize"] != desired:
                return ng["status"]
            return _status(ng, "ACTIVE", ("CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED"))

        ctx.wait(f"EKS nodegroup {pool} is ACTIVE",
                 lambda: eks.describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=pool), check)

    @staticmethod
    def _tags(s):
        return {**s.tags, TAG: s.name}

    def _tag_list(self, s):
        return [{"Key": k, "Value": v} for k, v in self._tags(s).items()]

    # -- what an interrupted create made, and what failed in the cloud -----
    @staticmethod
    def _taken(s):
        return (f"an EKS cluster named {s.name} already exists in {s.region} and kubeinit has no record of "
                "creating it: choose another --name (nothing was created)")

    def _by_tag(self, ctx, method, key, role):
        """EC2 resources by kubeinit's tag and their Name tag (kubeinit-CLUSTER-ROLE), not deleted."""
        s = ctx.spec
        flt = [{"Name": f"tag:{TAG}", "Values": [s.name]}, {"Name": "tag:Name", "Values": [f"kubeinit-{s.name}-{role}"]}]
        kw = {"Filter": flt} if method == "describe_nat_gateways" else {"Filters": flt}
        items = getattr(ctx.api("ec2"), method)(**kw)[key]
        return [i for i in items if i.get("State") not in ("deleted", "deleting", "failed")]

    def _rid(self, ctx, kind, name):
        e = ctx.record.get(kind, name)
        return None if e is None or e.get("pending") else e["id"]

    def find_iam_role(self, ctx, e):
        role = f"kubeinit-{ctx.spec.name}-{e['name']}"
        try:
            r = ctx.api("iam").get_role(RoleName=role)["Role"]
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        tags = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
        return (role, {"arn": r["Arn"]}) if tags.get(TAG) == ctx.spec.name else None

    def find_vpc(self, ctx, e):
        found = self._by_tag(ctx, "describe_vpcs", "Vpcs", "vpc")
        return found[0]["VpcId"] if found else None

    def find_internet_gateway(self, ctx, e):
        found = self._by_tag(ctx, "describe_internet_gateways", "InternetGateways", "igw")
        return found[0]["InternetGatewayId"] if found else None

    def find_igw_attachment(self, ctx, e):
        igw, vpc = self._rid(ctx, "internet_gateway", "igw"), self._rid(ctx, "vpc", "vpc")
        if not (igw and vpc):
            return None
        gw = ctx.api("ec2").describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]
        return (igw, {"vpc": vpc}) if any(a["VpcId"] == vpc for a in gw.get("Attachments", [])) else None

    def find_route_table(self, ctx, e):
        found = self._by_tag(ctx, "describe_route_tables", "RouteTables", e["name"])
        return found[0]["RouteTableId"] if found else None

    def find_route(self, ctx, e):
        rt = self._rid(ctx, "route_table", e["name"])
        if not rt:
            return None
        table = ctx.api("ec2").describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
        return (rt, {"destination": "0.0.0.0/0"}) if any(
            r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", [])) else None

    def find_subnet(self, ctx, e):
        found = self._by_tag(ctx, "describe_subnets", "Subnets", e["name"])
        return found[0]["SubnetId"] if found else None

    def find_rt_association(self, ctx, e):
        rt, sid = self._rid(ctx, "route_table", e["name"].split("-")[0]), self._rid(ctx, "subnet", e["name"])
        if not (rt and sid):
            return None
        table = ctx.api("ec2").describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
        return next((a["RouteTableAssociationId"] for a in table.get("Associations", []) if a.get("SubnetId") == sid), None)

    def find_elastic_ip(self, ctx, e):
        found = self._by_tag(ctx, "describe_addresses", "Addresses", "nat")
        return found[0]["AllocationId"] if found else None

    def find_nat_gateway(self, ctx, e):
        found = self._by_tag(ctx, "describe_nat_gateways", "NatGateways", "nat")
        return found[0]["NatGatewayId"] if found else None

    def find_cluster(self, ctx, e):
        try:
            c = ctx.api("eks").describe_cluster(name=e["name"])["cluster"]
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        if (c.get("tags") or {}).get(TAG) != ctx.spec.name:
            raise UserError(self._taken(ctx.spec))
        return c["name"]

    def find_nodegroup(self, ctx, e):
        try:
            ng = ctx.api("eks").describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["name"])["nodegroup"]
        except CloudError as err:
            if err.fault.kind == "not_found":
                return None
            raise
        return ng["nodegroupName"]

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
        user = {"exec": {"apiVersion": kcfg.EXEC_API, "command": "aws",
                         "args": ["--region", s.region, "eks", "get-token", "--cluster-name", s.name, "--output", "json"],
                         "interactiveMode": "IfAvailable"}}
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
                rows.append({"name": name, "location": ctx.spec.region, "version": c.get("version", ""),
                             "status": c.get("status", ""), "endpoint": c.get("endpoint", "")})
        return rows

    def scale(self, ctx, pool, nodes, min_, max_):
        # EKS refuses a desiredSize outside [minSize, maxSize]: send all three, the range widened if it must be
        with ctx.step(f"reading EKS nodegroup {pool}"):
            cur = ctx.api("eks").describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=pool)["nodegroup"]
        cfg = ctx.decide(lambda: self._range(ctx, pool, cur["scalingConfig"], nodes, min_, max_),
                         f"minSize/maxSize: the nodegroup's (or the flags'), widened to hold {nodes} nodes if needed")
        with ctx.step(f"scaling EKS nodegroup {pool} to {nodes} nodes"):
            ctx.api("eks").update_nodegroup_config(clusterName=ctx.spec.name, nodegroupName=pool, scalingConfig=cfg)
        self._wait_nodegroup(ctx, pool, desired=nodes)

    @staticmethod
    def _range(ctx, pool, cur, nodes, min_, max_):
        lo = cur["minSize"] if min_ is None else min_
        hi = cur["maxSize"] if max_ is None else max_
        new_lo, new_hi = min(lo, nodes), max(hi, nodes, 1)
        if (new_lo, new_hi) != (lo, hi):
            ctx.note(f"widening EKS nodegroup {pool}'s size range from [{lo}, {hi}] to [{new_lo}, {new_hi}] "
                     f"to hold {nodes} nodes (EKS refuses a desired size outside it)")
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
        names = {"cluster": "EKS cluster", "nodegroup": "EKS nodegroup", "iam_role": "IAM role",
                 "vpc": "VPC", "internet_gateway": "internet gateway", "route_table": "route table",
                 "subnet": "subnet", "elastic_ip": "elastic IP", "nat_gateway": "NAT gateway"}
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
        ctx.wait(f"EKS nodegroup {e['id']} is deleted",
                 lambda: eks.describe_nodegroup(clusterName=ctx.spec.name, nodegroupName=e["id"]),
                 lambda r: _status(r["nodegroup"], None, ("DELETE_FAILED",)), gone=True)

    def delete_cluster(self, ctx, e):
        eks = ctx.api("eks")
        eks.delete_cluster(name=e["id"])
        ctx.wait(f"EKS cluster {e['id']} is deleted", lambda: eks.describe_cluster(name=e["id"]),
                 lambda r: _status(r["cluster"], None, ("FAILED",)), gone=True)

    def delete_iam_role(self, ctx, e):
        iam = ctx.api("iam")
        for p in iam.list_attached_role_policies(RoleName=e["id"])["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=e["id"], PolicyArn=p["PolicyArn"])
        iam.delete_role(RoleName=e["id"])

    def delete_nat_gateway(self, ctx, e):
        ec2 = ctx.api("ec2")
        ec2.delete_nat_gateway(NatGatewayId=e["id"])
        ctx.wait(f"NAT gateway {e['id']} is deleted", lambda: ec2.describe_nat_gateways(NatGatewayIds=[e["id"]]),
                 lambda r: _status(r["NatGateways"][0], "deleted", ("failed",), key="State"))

    def delete_elastic_ip(self, ctx, e):
        ctx.api("ec2").release_address(AllocationId=e["id"])

    def delete_subnet(self, ctx, e):
        ctx.api("ec2").delete_subnet(SubnetId=e["id"])

    def delete_rt_association(self, ctx, e):
        ctx.api("ec2").disassociate_route_table(AssociationId=e["id"])

    def delete_route(self, ctx, e):
        ctx.api("ec2").delete_route(RouteTableId=e["id"], DestinationCidrBlock=e["data"]["destination"])

    def delete_route_table(self, ctx, e):
        ctx.api("ec2").delete_route_table(RouteTableId=e["id"])

    def delete_igw_attachment(self, ctx, e):
        ctx.api("ec2").detach_internet_gateway(InternetGatewayId=e["id"], VpcId=e["data"]["vpc"])

    def delete_internet_gateway(self, ctx, e):
        ctx.api("ec2").delete_internet_gateway(InternetGatewayId=e["id"])

    def delete_vpc(self, ctx, e):
        ctx.api("ec2").delete_vpc(VpcId=e["id"])


def _kubeinit_exec(cluster: str, region: str) -> dict:
    """`kubeinit token eks` as the exec plugin: this kubeinit, by its PATH name if that is this one."""
    args = ["token", "eks", "--cluster", cluster, "--region", region]
    found = shutil.which("kubeinit")
    if found and os.path.dirname(os.path.realpath(found)) == os.path.dirname(os.path.realpath(sys.executable)):
        return {"command": "kubeinit", "args": args}
    return {"command": sys.executable, "args": ["-m", "kubeinit", *args]}


def _cidrs(n: int) -> tuple[list[str], list[str]]:
    """/19s of the VPC's /16: the public subnets first, then the private ones (two zones: PUBLIC_CIDRS, PRIVATE_CIDRS)."""
    blocks = [f"192.168.{32 * i}.0/19" for i in range(2 * n)]
    return blocks[:n], blocks[n:]


@functools.lru_cache(maxsize=1)
def _loader():
    from botocore.loaders import create_loader

    return create_loader()


def _status(obj, ready, failed, key="status"):
    """Wait check: True when obj[key] == ready, a Fault when it is one of `failed`, else the status."""
    state = obj[key]
    if state in failed:
        issues = (obj.get("health") or {}).get("issues") or []
        detail = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues) or obj.get("FailureMessage", "")
        code = issues[0].get("code", "") if issues else obj.get("FailureCode", "")
        kind = kind_from_code(code, detail)
        return Fault("failed" if kind == "invalid" else kind, state, detail)
    return True if state == ready else state
