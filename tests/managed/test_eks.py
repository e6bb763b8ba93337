"""EKS through the CLI against moto (the AWS test double)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import boto3
from managed_testlib import create_cmd, delete_cmd, kubectl_view, scale_cmd

CREATE = create_cmd("eks", "--region", "eu-west-1", "--version", "1.30", "--nodes", "2", "--node-type", "t3.medium")
DELETE = delete_cmd("eks")


def client(aws, service):
    return boto3.client(service, endpoint_url=aws.url, region_name="eu-west-1")


def tagged(aws) -> dict[str, list[str]]:
    """Everything in the double that carries kubeinit's tag."""
    ec2, iam = client(aws, "ec2"), client(aws, "iam")
    flt = [{"Name": "tag:kubeinit.dev/cluster", "Values": ["demo"]}]
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]],
        "igws": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]],
        "nats": [
            n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filter=flt)["NatGateways"] if n["State"] != "deleted"
        ],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("kubeinit-demo-")],
        "clusters": client(aws, "eks").list_clusters()["clusters"],
    }


def record(env) -> dict:
    return json.loads((Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").read_text())


def test_create_kubeconfig_scale_delete(aws, cli, clean_env):
    r = cli(*CREATE)
    assert r.exit_code == 0, r.output
    assert "EKS cluster demo is ready" in r.output

    eks = client(aws, "eks")
    cluster = eks.describe_cluster(name="demo")["cluster"]
    assert cluster["tags"]["kubeinit.dev/cluster"] == "demo"
    ng = eks.describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]
    assert ng["scalingConfig"]["desiredSize"] == 2 and ng["instanceTypes"] == ["t3.medium"]
    made = tagged(aws)
    assert len(made["vpcs"]) == 1 and len(made["subnets"]) == 4 and len(made["nats"]) == 1
    assert sorted(made["roles"]) == ["kubeinit-demo-cluster", "kubeinit-demo-node"]
    policies = client(aws, "iam").list_attached_role_policies(RoleName="kubeinit-demo-node")["AttachedPolicies"]
    assert {p["PolicyName"] for p in policies} >= {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"}
    assert record(clean_env)["status"] == "ready"

    # the kubeconfig is one real kubectl reads, with the aws exec plugin
    kc = Path(os.environ["KUBECONFIG"])
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    view = kubectl_view(kc)
    assert view["current-context"] == cluster["arn"]
    user = view["users"][0]["user"]["exec"]
    assert user["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    if shutil.which("aws"):  # the AWS CLI where there is one, else kubeinit's own token
        assert user["command"] == "aws"
        assert user["args"] == [
            "--region",
            "eu-west-1",
            "eks",
            "get-token",
            "--cluster-name",
            "demo",
            "--output",
            "json",
        ]
    else:
        i = user["args"].index("token")
        assert user["args"][i : i + 4] == ["token", "eks", "--cluster", "demo"], user
    assert view["clusters"][0]["cluster"]["server"] == cluster["endpoint"]

    # `kubeinit kubeconfig` merges into another file, keeping what was there
    other = clean_env / "other-config"
    other.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: keep\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
        "users: []\ncontexts: []\n"
    )
    r = cli("kubeconfig", "--provider", "eks", "--name", "demo", "--kubeconfig", other)
    assert r.exit_code == 0, r.output
    names = [c["name"] for c in kubectl_view(other)["clusters"]]
    assert sorted(names) == sorted(["keep", cluster["arn"]])

    r = cli("get", "clusters", "--provider", "eks", "-o", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows[0]["name"] == "demo" and rows[0]["recorded"] is True

    r = cli(*scale_cmd("eks", "ng-1", "--nodes", "4", "--nodes-max", "5"))
    assert r.exit_code == 0, r.output
    cfg = eks.describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]["scalingConfig"]
    assert cfg["desiredSize"] == 4 and cfg["maxSize"] == 5

    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert tagged(aws) == {k: [] for k in made}
    assert not (Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").exists()
    assert not kubectl_view(kc).get("contexts")  # delete also removed the context it wrote


def test_failure_half_way_is_recorded_then_deleted_exactly(aws, cli, clean_env):
    aws.fail_rest(
        "POST",
        r"^/clusters/demo/node-groups$",
        "ResourceLimitExceededException",
        "Nodegroup limit exceeded for cluster demo.",
    )
    r = cli(*CREATE)
    assert r.exit_code == 1
    line = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert line == [
        "error: creating EKS nodegroup ng-1 failed: quota exceeded "
        "(ResourceLimitExceededException: Nodegroup limit exceeded for cluster demo.)"
    ]
    assert "Traceback" not in r.output

    rec = record(clean_env)
    assert rec["status"] == "failed"
    kinds = [e["kind"] for e in rec["resources"]]
    assert "nodegroup" not in kinds and kinds[-1] == "cluster"
    made = tagged(aws)
    ids = {e["id"] for e in rec["resources"]}
    for key in ("vpcs", "subnets", "igws", "nats", "roles", "clusters"):
        assert set(made[key]) <= ids and made[key], key  # the record lists exactly what exists
    assert kinds.count("subnet") == 4 and kinds.count("iam_role") == 2

    # something kubeinit did not create stays
    ec2 = client(aws, "ec2")
    foreign = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    aws.requests.clear()
    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert tagged(aws) == {k: [] for k in made}
    assert foreign in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    deleting = [a for _, _, a in aws.requests if a.startswith(("Delete", "Release", "Detach", "Disassociate"))]
    assert deleting.count("DeleteSubnet") == 4 and deleting.count("DeleteVpc") == 1
    assert ("DELETE", "/clusters/demo", "") in aws.requests
    assert not any(p.startswith("/clusters/demo/node-groups/") and m == "DELETE" for m, p, _ in aws.requests)


def test_resume_after_failure_reuses_the_record(aws, cli, clean_env):
    aws.fail_rest("POST", r"^/clusters/demo/node-groups$", "InvalidParameterException", "bad instance type")
    assert cli(*CREATE).exit_code == 2
    first = record(clean_env)["resources"]
    aws.requests.clear()
    r = cli(*CREATE)
    assert r.exit_code == 0, r.output
    assert "resuming from" in r.output
    actions = [a for _, _, a in aws.requests]
    assert "CreateVpc" not in actions and "CreateRole" not in actions and "CreateSubnet" not in actions
    assert ("POST", "/clusters", "") not in aws.requests  # no second create_cluster
    assert record(clean_env)["resources"][: len(first)] == first
    assert cli(*DELETE).exit_code == 0


def test_cleanup_on_failure_removes_everything_at_once(aws, cli, clean_env):
    aws.fail_rest(
        "POST", r"^/clusters/demo/node-groups$", "AccessDeniedException", "not authorized to eks:CreateNodegroup"
    )
    r = cli(*CREATE, "--cleanup-on-failure")
    assert r.exit_code == 1
    assert "permission denied" in r.output and "cleaned up: removed" in r.output
    assert all(v == [] for v in tagged(aws).values())
    assert not (Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").exists()


def test_quota_error_is_one_line(aws, cli, clean_env):
    aws.fail_query("CreateVpc", "VpcLimitExceeded", "The maximum number of VPCs has been reached.")
    r = cli(*CREATE)
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: creating VPC failed: quota exceeded (VpcLimitExceeded: The maximum number of VPCs has been reached.)"
    ]
    assert "Traceback" not in r.output


def test_permission_error_on_iam(aws, cli):
    aws.fail_query(
        "CreateRole", "AccessDenied", "User is not authorized to perform: iam:CreateRole", status=403, xml="iam"
    )
    r = cli(*CREATE)
    assert r.exit_code == 1
    assert "error: creating IAM role kubeinit-demo-cluster failed: permission denied (AccessDenied:" in r.output


def test_given_subnets_create_no_network(aws, cli):
    ec2 = client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    r = cli(*CREATE, "--subnets", ",".join(subnets))
    assert r.exit_code == 0, r.output
    assert client(aws, "eks").describe_cluster(name="demo")["cluster"]["resourcesVpcConfig"]["subnetIds"] == subnets
    assert cli(*DELETE).exit_code == 0
    assert [s["SubnetId"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]] == subnets


def test_dry_run_sends_nothing(aws, cli):
    for args in (
        CREATE,
        DELETE,
        scale_cmd("eks", "ng-1", "--nodes", "3"),
    ):
        r = cli(*args, "--dry-run")
        assert r.exit_code == 0, r.output
    assert aws.requests == []
    r = cli(*CREATE, "--dry-run")
    assert "1. eks.describe_cluster(name='demo')" in r.output  # is the name free? before anything is made
    assert (
        "eks.create_cluster(name='demo', roleArn=<Role.Arn from #2 iam.create_role>, clientRequestToken='" in r.output
    )
    assert "ec2.create_vpc(CidrBlock='192.168.0.0/16'" in r.output


def test_delete_without_yes_and_without_a_terminal_refuses(aws, cli):
    r = cli("delete", "cluster", "--provider", "eks", "--name", "demo")
    assert r.exit_code == 2
    assert "without confirmation" in r.output and "--yes" in r.output
    assert aws.requests == []


def test_delete_of_an_unknown_cluster_says_so(aws, cli):
    r = cli(*DELETE)
    assert r.exit_code == 2
    assert "EKS cluster demo was not found" in r.output


def test_dry_run_prints_the_calls_a_live_run_sends(aws, cli):
    import re

    r = cli(*CREATE, "--dry-run")
    printed = re.findall(r"^\s*\d+\.\s+(?:repeat )?(iam|ec2)\.(\w+)\(", r.output, re.M)
    dry = ["".join(w.title() for w in method.split("_")) for _, method in printed]
    assert cli(*CREATE).exit_code == 0
    live = [action for _, _, action in aws.requests if action]  # IAM and EC2 requests, in order
    assert live == dry
