"""EKS's own VPC: a public and a private subnet in each zone, an internet and a NAT gateway; found and deleted."""

from __future__ import annotations

from kubeinit.providers.base import TAG, Fault, kind_from_code

VPC_CIDR = "192.168.0.0/16"
PUBLIC_CIDRS = ("192.168.0.0/19", "192.168.32.0/19")
PRIVATE_CIDRS = ("192.168.64.0/19", "192.168.96.0/19")


class EKSNetwork:
    """The network part of the EKS provider (a mixin: ctx.ensure finds find_<kind>/delete_<kind> on the provider)."""

    def _network(self, ctx):
        """A VPC with a public and a private subnet in each of two AZs; nodes go in the private ones."""
        s, ec2 = ctx.spec, ctx.api("ec2")

        def tagged(rtype, role):
            return [
                {
                    "ResourceType": rtype,
                    "Tags": self._tag_list(s) + [{"Key": "Name", "Value": f"kubeinit-{s.name}-{role}"}],
                }
            ]

        vpc = ctx.ensure(
            "vpc",
            "vpc",
            "VPC",
            lambda: ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=tagged("vpc", "vpc"))["Vpc"]["VpcId"],
        )["id"]
        with ctx.step(f"configuring VPC {vpc}"):
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        igw = ctx.ensure(
            "internet_gateway",
            "igw",
            "internet gateway",
            lambda: ec2.create_internet_gateway(TagSpecifications=tagged("internet-gateway", "igw"))["InternetGateway"][
                "InternetGatewayId"
            ],
        )["id"]

        def attach():
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            return igw, {"vpc": vpc}

        ctx.ensure("igw_attachment", "igw", f"attachment of {igw} to {vpc}", attach)
        with ctx.step("looking up availability zones"):
            if s.zones:  # --zones: asking for them by name makes a wrong one fail here, before any subnet
                ec2.describe_availability_zones(ZoneNames=list(s.zones))
                zone_names = tuple(s.zones)
            else:
                zones = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])[
                    "AvailabilityZones"
                ]
                zone_names = (zones[0]["ZoneName"], zones[1]["ZoneName"])
        public_cidrs, private_cidrs = _cidrs(len(zone_names))
        public = self._subnets(ctx, "public", vpc, zone_names, public_cidrs, ("0.0.0.0/0", "GatewayId", igw), tagged)
        eip = ctx.ensure(
            "elastic_ip",
            "nat",
            "elastic IP for the NAT gateway",
            lambda: ec2.allocate_address(Domain="vpc", TagSpecifications=tagged("elastic-ip", "nat"))["AllocationId"],
        )["id"]
        nat = ctx.ensure(
            "nat_gateway",
            "nat",
            "NAT gateway",
            lambda: ec2.create_nat_gateway(
                SubnetId=public[0],
                AllocationId=eip,
                ClientToken=ctx.record.token("nat_gateway", "nat"),
                TagSpecifications=tagged("natgateway", "nat"),
            )["NatGateway"]["NatGatewayId"],
        )["id"]
        ctx.wait(
            f"NAT gateway {nat} is available",
            lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat]),
            lambda r: status_check(r["NatGateways"][0], "available", ("failed", "deleted"), key="State"),
        )
        private = self._subnets(
            ctx, "private", vpc, zone_names, private_cidrs, ("0.0.0.0/0", "NatGatewayId", nat), tagged
        )
        return public + private, private

    def _subnets(self, ctx, kind, vpc, zones, cidrs, route, tagged):
        ec2 = ctx.api("ec2")
        rt = ctx.ensure(
            "route_table",
            kind,
            f"{kind} route table",
            lambda: ec2.create_route_table(
                VpcId=vpc,
                ClientToken=ctx.record.token("route_table", kind),
                TagSpecifications=tagged("route-table", kind),
            )["RouteTable"]["RouteTableId"],
        )["id"]
        dest, target, target_id = route

        def add_route():
            ec2.create_route(RouteTableId=rt, DestinationCidrBlock=dest, **{target: target_id})
            return rt, {"destination": dest}

        ctx.ensure("route", kind, f"{kind} default route", add_route)
        lb_role = "kubernetes.io/role/elb" if kind == "public" else "kubernetes.io/role/internal-elb"
        ids = []
        for i, (zone, cidr) in enumerate(zip(zones, cidrs, strict=False)):
            spec = tagged("subnet", f"{kind}-{i}")
            spec[0]["Tags"].append({"Key": lb_role, "Value": "1"})
            sid = ctx.ensure(
                "subnet",
                f"{kind}-{i}",
                f"{kind} subnet {cidr}",
                lambda zone=zone, cidr=cidr, spec=spec: ec2.create_subnet(
                    VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=spec
                )["Subnet"]["SubnetId"],
            )["id"]
            if kind == "public":
                with ctx.step(f"configuring subnet {sid}"):
                    ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
            ctx.ensure(
                "rt_association",
                f"{kind}-{i}",
                f"association of {sid} with {rt}",
                lambda sid=sid: ec2.associate_route_table(RouteTableId=rt, SubnetId=sid)["AssociationId"],
            )
            ids.append(sid)
        return ids

    def _by_tag(self, ctx, method, key, role, id_key):
        """The id of the EC2 resource with kubeinit's tag and Name tag kubeinit-CLUSTER-ROLE, not deleted, or None."""
        s = ctx.spec
        flt = [
            {"Name": f"tag:{TAG}", "Values": [s.name]},
            {"Name": "tag:Name", "Values": [f"kubeinit-{s.name}-{role}"]},
        ]
        kw = {"Filter": flt} if method == "describe_nat_gateways" else {"Filters": flt}
        items = getattr(ctx.api("ec2"), method)(**kw)[key]
        live = [i for i in items if i.get("State") not in ("deleted", "deleting", "failed")]
        return live[0][id_key] if live else None

    def _rid(self, ctx, kind, name):
        e = ctx.record.get(kind, name)
        return None if e is None or e.get("pending") else e["id"]

    def find_vpc(self, ctx, e):
        return self._by_tag(ctx, "describe_vpcs", "Vpcs", "vpc", "VpcId")

    def find_internet_gateway(self, ctx, e):
        return self._by_tag(ctx, "describe_internet_gateways", "InternetGateways", "igw", "InternetGatewayId")

    def find_igw_attachment(self, ctx, e):
        igw, vpc = self._rid(ctx, "internet_gateway", "igw"), self._rid(ctx, "vpc", "vpc")
        if not (igw and vpc):
            return None
        gw = ctx.api("ec2").describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]
        return (igw, {"vpc": vpc}) if any(a["VpcId"] == vpc for a in gw.get("Attachments", [])) else None

    def find_route_table(self, ctx, e):
        return self._by_tag(ctx, "describe_route_tables", "RouteTables", e["name"], "RouteTableId")

    def find_route(self, ctx, e):
        rt = self._rid(ctx, "route_table", e["name"])
        if not rt:
            return None
        table = ctx.api("ec2").describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
        return (
            (rt, {"destination": "0.0.0.0/0"})
            if any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", []))
            else None
        )

    def find_subnet(self, ctx, e):
        return self._by_tag(ctx, "describe_subnets", "Subnets", e["name"], "SubnetId")

    def find_rt_association(self, ctx, e):
        rt, sid = self._rid(ctx, "route_table", e["name"].split("-")[0]), self._rid(ctx, "subnet", e["name"])
        if not (rt and sid):
            return None
        table = ctx.api("ec2").describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
        return next(
            (a["RouteTableAssociationId"] for a in table.get("Associations", []) if a.get("SubnetId") == sid), None
        )

    def find_elastic_ip(self, ctx, e):
        return self._by_tag(ctx, "describe_addresses", "Addresses", "nat", "AllocationId")

    def find_nat_gateway(self, ctx, e):
        return self._by_tag(ctx, "describe_nat_gateways", "NatGateways", "nat", "NatGatewayId")

    def delete_nat_gateway(self, ctx, e):
        ec2 = ctx.api("ec2")
        ec2.delete_nat_gateway(NatGatewayId=e["id"])
        ctx.wait(
            f"NAT gateway {e['id']} is deleted",
            lambda: ec2.describe_nat_gateways(NatGatewayIds=[e["id"]]),
            lambda r: status_check(r["NatGateways"][0], "deleted", ("failed",), key="State"),
        )

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


def _cidrs(n: int) -> tuple[list[str], list[str]]:
    """/19s of the VPC's /16: the public subnets first, then the private ones (two zones: PUBLIC_, PRIVATE_CIDRS)."""
    blocks = [f"192.168.{32 * i}.0/19" for i in range(2 * n)]
    return blocks[:n], blocks[n:]


def status_check(obj, ready, failed, key="status"):
    """Wait check: True when obj[key] == ready, a Fault when it is one of `failed`, else the status."""
    state = obj[key]
    if state in failed:
        issues = (obj.get("health") or {}).get("issues") or []
        detail = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues) or obj.get("FailureMessage", "")
        code = issues[0].get("code", "") if issues else obj.get("FailureCode", "")
        kind = kind_from_code(code, detail)
        return Fault("failed" if kind == "invalid" else kind, state, detail)
    return True if state == ready else state
