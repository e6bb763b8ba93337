"""Nothing is orphaned and failed creates are made again (issue 11, findings 1, 2, 4 and 6).

Ctrl-C is simulated at each create call, before it is sent and after the cloud made the
resource but before kubeinit saw the answer (the worst case: the resource exists, its id
is unknown). The re-run must finish without making anything twice, and `delete` must
leave nothing behind in the double.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from managed_testlib import FAST, SECRETS, create_cmd, delete_cmd, fails_then_resumes

import kubeinit.managed.run as run

EKS = create_cmd("eks", "--region", "eu-west-1", "--nodes", "2")
EKS_DELETE = delete_cmd("eks")
GKE = create_cmd("gke", "--zone", "europe-west1-b", "--nodes", "2")
GKE_DELETE = delete_cmd("gke")
AKS = create_cmd("aks", "--location", "westeurope", "--nodes", "2")
AKS_DELETE = delete_cmd("aks")
SUB = "00000000-0000-0000-0000-000000000001"

EKS_CREATES = [
    "create_role",
    "create_vpc",
    "create_internet_gateway",
    "attach_internet_gateway",
    "create_route_table",
    "create_route",
    "create_subnet",
    "associate_route_table",
    "allocate_address",
    "create_nat_gateway",
    "create_cluster",
    "create_nodegroup",
]


def interrupt_at(monkeypatch, method: str, after: bool, nth: int = 1):
    """Ctrl-C at the nth call of `method`: before it is sent, or after the cloud answered."""
    real = run.LiveCtx.call
    seen = []

    def call(self, service, path, args, kwargs):
        if path[-1] == method:
            seen.append(1)
            if len(seen) == nth and not after:
                raise KeyboardInterrupt
            result = real(self, service, path, args, kwargs)
            if len(seen) == nth:
                raise KeyboardInterrupt
            return result
        return real(self, service, path, args, kwargs)

    monkeypatch.setattr(run.LiveCtx, "call", call)
    return lambda: monkeypatch.setattr(run.LiveCtx, "call", real)


def aws_left(aws) -> dict[str, list]:
    """Everything in the AWS double that kubeinit could have made (tagged or named)."""
    c = {s: boto3.client(s, endpoint_url=aws.url, region_name="eu-west-1") for s in ("ec2", "iam", "eks")}
    ec2 = c["ec2"]
    default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]}
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] not in default_vpcs],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] not in default_vpcs],
        "igws": [
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways()["InternetGateways"]
            if not any(a["VpcId"] in default_vpcs for a in g.get("Attachments", []))
        ],
        "route_tables": [
            t["RouteTableId"]
            for t in ec2.describe_route_tables()["RouteTables"]
            if t["VpcId"] not in default_vpcs and not any(a.get("Main") for a in t.get("Associations", []))
        ],
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]],
        "nats": [n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"],
        "roles": [r["RoleName"] for r in c["iam"].list_roles()["Roles"]],
        "clusters": c["eks"].list_clusters()["clusters"],
    }


def counts(left: dict) -> dict[str, int]:
    return {k: len(v) for k, v in left.items()}


FULL = {"vpcs": 1, "subnets": 4, "igws": 1, "route_tables": 2, "addresses": 1, "nats": 1, "roles": 2, "clusters": 1}
NONE = {k: 0 for k in FULL}


@pytest.mark.parametrize("after", [True, False], ids=["after-the-cloud-made-it", "before-it-was-sent"])
@pytest.mark.parametrize("method", EKS_CREATES)
def test_eks_interrupt_at_each_create_call_then_resume_and_delete(aws, cli, monkeypatch, method, after):
    restore = interrupt_at(monkeypatch, method, after)
    r = cli(*EKS)
    restore()
    assert r.exit_code == 130, r.output
    assert "run the same create command again to resume" in r.output
    interrupted = r.output
    r = cli(*EKS)
    assert r.exit_code == 0, r.output
    state = [p.read_text() for p in Path(os.environ["KUBEINIT_HOME"]).rglob("*") if p.is_file()]
    state.append(Path(os.environ["KUBECONFIG"]).read_text())
    for text in (interrupted, r.output, *state):  # no credential in any output, record or kubeconfig
        assert not any(secret in text for secret in SECRETS.values())
    assert counts(aws_left(aws)) == FULL  # made once each, nothing twice
    ngs = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1").list_nodegroups(clusterName="demo")
    assert ngs["nodegroups"] == ["ng-1"]
    if after and method not in ("attach_internet_gateway", "create_route", "associate_route_table"):
        assert "made by an interrupted run" in r.output
    r = cli(*EKS_DELETE)
    assert r.exit_code == 0, r.output
    assert counts(aws_left(aws)) == NONE


@pytest.mark.parametrize("method", ["create_vpc", "create_cluster"])
def test_eks_interrupted_create_then_delete_removes_it(aws, cli, monkeypatch, method):
    restore = interrupt_at(monkeypatch, method, after=True)
    assert cli(*EKS).exit_code == 130
    restore()
    rec = json.loads((Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").read_text())
    assert rec["resources"][-1]["pending"] is True  # the intent was recorded before the call
    r = cli(*EKS_DELETE)
    assert r.exit_code == 0, r.output
    assert counts(aws_left(aws)) == NONE


def test_eks_tokens_are_sent_and_stable_across_a_resume(aws, cli, monkeypatch):
    sent = []

    def recording():
        real = run.LiveCtx.call

        def call(self, service, path, args, kwargs):
            if path[-1] in ("create_cluster", "create_nodegroup", "create_nat_gateway", "create_route_table"):
                sent.append((path[-1], kwargs.get("clientRequestToken") or kwargs.get("ClientToken")))
            return real(self, service, path, args, kwargs)

        monkeypatch.setattr(run.LiveCtx, "call", call)

    restore = interrupt_at(monkeypatch, "create_cluster", after=True)  # the cloud made it; kubeinit never heard
    recording()
    assert cli(*EKS).exit_code == 130
    restore()
    recording()
    boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1").delete_cluster(name="demo")  # gone meanwhile
    assert cli(*EKS).exit_code == 0
    tokens = dict(sent)
    assert all(tokens.values()) and len(set(tokens.values())) == 4
    clusters = [t for m, t in sent if m == "create_cluster"]
    assert len(clusters) == 2 and clusters[0] == clusters[1]  # the re-run's create_cluster reuses its token
    assert cli(*EKS_DELETE).exit_code == 0


@pytest.mark.parametrize("after", [True, False], ids=["after-the-cloud-made-it", "before-it-was-sent"])
def test_gke_interrupt_at_create_cluster(gke, cli, monkeypatch, after):
    restore = interrupt_at(monkeypatch, "create_cluster", after)
    assert cli(*GKE).exit_code == 130
    restore()
    r = cli(*GKE)
    assert r.exit_code == 0, r.output
    assert len(gke.clusters) == 1 and next(iter(gke.clusters.values()))["status"] == "RUNNING"
    assert cli(*GKE_DELETE).exit_code == 0
    assert gke.clusters == {}


@pytest.mark.parametrize("method", ["create_or_update", "begin_create_or_update"])
@pytest.mark.parametrize("after", [True, False], ids=["after-the-cloud-made-it", "before-it-was-sent"])
def test_aks_interrupt_at_each_create_call(aks, cli, monkeypatch, method, after):
    restore = interrupt_at(monkeypatch, method, after)
    assert cli(*AKS).exit_code == 130
    restore()
    r = cli(*AKS)
    assert r.exit_code == 0, r.output
    assert list(aks.clusters) == [(SUB, "kubeinit-demo", "demo")] and list(aks.groups) == [(SUB, "kubeinit-demo")]
    assert cli(*AKS_DELETE).exit_code == 0
    assert aks.clusters == {} and aks.groups == {}


# -- finding 4: the name must be free -------------------------------------------------------
def test_eks_name_taken_is_refused_before_anything_is_made(aws, cli):
    eks = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1")
    eks.create_cluster(
        name="demo",
        roleArn="arn:aws:iam::123456789012:role/theirs",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    aws.requests.clear()
    r = cli(*EKS)
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: an EKS cluster named demo already exists in eu-west-1 and kubeinit has no record of "
        "creating it: choose another --name (nothing was created)"
    ]
    assert [
        p for m, p, a in aws.requests if m == "POST" and a.startswith("Create") or p == "/clusters" and m == "POST"
    ] == []
    assert not any(a.startswith(("Create", "Allocate")) for _, _, a in aws.requests)
    assert not (Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").exists()
    r = cli(*EKS_DELETE)  # and delete does not claim resources it did not make
    assert "(0 resources removed)" not in r.output or r.exit_code == 0


@pytest.mark.parametrize("provider", ["gke", "aks"])
def test_gke_aks_name_taken_is_refused_before_anything_is_made(provider, request, cli):
    if provider == "gke":
        double = request.getfixturevalue("gke")
        double.clusters[("proj-1", "europe-west1-b", "demo")] = {"name": "demo", "status": "RUNNING"}
        args = [*GKE, "--project", "proj-1"]
    else:
        double = request.getfixturevalue("aks")
        double.groups[(SUB, "kubeinit-demo")] = {"name": "kubeinit-demo", "location": "westeurope", "tags": {}}
        double.clusters[(SUB, "kubeinit-demo", "demo")] = {
            "name": "demo",
            "location": "westeurope",
            "tags": {},
            "properties": {"provisioningState": "Succeeded"},
        }
        args = AKS
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert "already exists" in r.output and "kubeinit has no record of creating it" in r.output
    assert not any(m in ("POST", "PUT") for m, _ in double.requests)


# -- finding 2: a create that failed in the cloud is made again on the re-run ---------------
def test_eks_create_failed_nodegroup_is_deleted_and_made_again(aws, cli, monkeypatch):
    from moto.eks.models import eks_backends

    real = run.LiveCtx.call

    def call(self, service, path, args, kwargs):
        result = real(self, service, path, args, kwargs)
        if path[-1] == "create_nodegroup":  # the cloud accepted it, then the nodes never joined
            ng = eks_backends["123456789012"]["eu-west-1"].clusters["demo"].nodegroups["ng-1"]
            ng.status = "CREATE_FAILED"
            ng.health = {"issues": [{"code": "NodeCreationFailure", "message": "Instances failed to join the cluster"}]}
        return result

    monkeypatch.setattr(run.LiveCtx, "call", call)
    r = cli(*EKS)
    monkeypatch.setattr(run.LiveCtx, "call", real)
    assert r.exit_code == 1 and "NodeCreationFailure" in r.output
    r = cli(*EKS)
    assert r.exit_code == 0, r.output
    assert (
        "EKS nodegroup ng-1 failed in the cloud (status CREATE_FAILED; NodeCreationFailure: Instances failed to join "
        "the cluster): deleting it and creating it again"
    ) in r.output
    ng = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1").describe_nodegroup(
        clusterName="demo", nodegroupName="ng-1"
    )["nodegroup"]
    assert ng["status"] == "ACTIVE"
    assert cli(*EKS_DELETE).exit_code == 0
    assert counts(aws_left(aws)) == NONE


def test_gke_cluster_in_error_is_deleted_and_made_again(gke, cli):
    gke.fail_operation("CREATE_CLUSTER", 13, "Google Compute Engine: internal error.")
    assert cli(*GKE).exit_code == 1
    assert next(iter(gke.clusters.values()))["status"] == "ERROR"
    r = cli(*GKE)
    assert r.exit_code == 0, r.output
    assert "GKE cluster demo failed in the cloud (status ERROR" in r.output
    assert "deleting it and creating it again" in r.output
    assert [c["status"] for c in gke.clusters.values()] == ["RUNNING"]
    assert cli(*GKE_DELETE).exit_code == 0 and gke.clusters == {}


def test_aks_failed_cluster_is_deleted_and_made_again(aks, cli):
    aks.fail_operation("create_cluster", "VMExtensionProvisioningError", "The node pool failed to provision.")
    r = fails_then_resumes(cli, *AKS)
    assert (
        "AKS cluster demo failed in the cloud (provisioning state Failed): deleting it and creating it again"
        in r.output
    )
    assert aks.clusters[(SUB, "kubeinit-demo", "demo")]["properties"]["provisioningState"] == "Succeeded"
    assert cli(*AKS_DELETE).exit_code == 0 and aks.clusters == {} and aks.groups == {}


# -- finding 6: changed flags on a ready cluster are shown, not silently recorded -------------
def test_changed_flags_on_a_ready_cluster_are_refused_with_the_command(aws, cli):
    assert cli(*EKS).exit_code == 0
    path = Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json"
    before = json.loads(path.read_text())["spec"]
    aws.requests.clear()
    r = cli(*EKS, "--nodes", "5")
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: EKS cluster demo is ready and was created with other settings (node pool ng-1: count 2 → 5): "
        "create does not change an existing cluster, and nothing was changed"
    ]
    assert "to change it: `kubeinit scale nodepool ng-1 --provider eks --cluster demo --nodes 5`" in r.output
    assert json.loads(path.read_text())["spec"] == before  # the record's spec is not rewritten
    assert aws.requests == []

    r = cli(*EKS, "--subnets", "subnet-a,subnet-b")
    assert r.exit_code == 2
    assert "subnets (none) → subnet-a,subnet-b" in r.output and "delete the cluster and create it again" in r.output

    r = cli(*EKS)  # the same command again is still fine
    assert r.exit_code == 0, r.output
    assert cli(*EKS_DELETE).exit_code == 0


# -- node pools made by `create nodepool` are found after an interrupt too -------------------------
@pytest.mark.parametrize("provider", ["gke", "aks"])
def test_interrupted_create_nodepool_is_found_by_the_rerun(provider, request, cli, monkeypatch):
    double = request.getfixturevalue(provider)
    create, delete = (GKE, GKE_DELETE) if provider == "gke" else (AKS, AKS_DELETE)
    assert cli(*create).exit_code == 0
    add = ["create", "nodepool", "extra", "--provider", provider, "--cluster", "demo", "--nodes", "1", *FAST]
    restore = interrupt_at(monkeypatch, "create_node_pool" if provider == "gke" else "begin_create_or_update", True)
    assert cli(*add).exit_code == 130
    restore()
    r = cli(*add)
    assert r.exit_code == 0, r.output
    assert "made by an interrupted run" in r.output
    pools = [
        p["name"]
        for c in double.clusters.values()
        for p in (c["nodePools"] if provider == "gke" else c["properties"]["agentPoolProfiles"])
    ]
    assert sorted(pools) == sorted(["default-pool" if provider == "gke" else "nodepool1", "extra"])
    assert cli(*delete).exit_code == 0 and double.clusters == {}
