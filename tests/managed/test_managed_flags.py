"""eksctl's everyday flags on the managed commands, against the three cloud doubles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import yaml
from managed_testlib import SECRETS, WHERE, create_cmd, delete_cmd, kubectl_view, succeeds

SUB = "00000000-0000-0000-0000-000000000001"
EKS = create_cmd("eks", *WHERE["eks"], "--nodes", "2")
GKE = create_cmd("gke", *WHERE["gke"], "--nodes", "1")
AKS = create_cmd("aks", *WHERE["aks"], "--nodes", "1")
GKE_KEY = ("proj-1", "europe-west1-b", "demo")
AKS_KEY = (SUB, "kubeinit-demo", "demo")


def _record(provider: str) -> dict:
    return json.loads((Path(os.environ["KUBEINIT_HOME"]) / "managed" / f"{provider}-demo.json").read_text())


def _keep_context(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "mine",
                "clusters": [{"name": "mine", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "mine", "user": {}}],
                "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "mine"}}],
            }
        )
    )


def test_eks_tags_labels_volume_zones_spot_and_set_context_false(aws, cli):
    kc = Path(os.environ["KUBECONFIG"])
    _keep_context(kc)
    r = cli(
        *EKS,
        "--tags",
        "team=web,env=dev",
        "--labels",
        "role=web",
        "--node-volume-size",
        "50",
        "--zones",
        "eu-west-1b,eu-west-1c",
        "--spot",
        "--set-context=false",
    )
    assert r.exit_code == 0, r.output
    eks = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1")
    ec2 = boto3.client("ec2", endpoint_url=aws.url, region_name="eu-west-1")
    cluster = eks.describe_cluster(name="demo")["cluster"]
    assert cluster["tags"] == {"team": "web", "env": "dev", "kubeinit.dev/cluster": "demo"}
    ng = eks.describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]
    assert ng["capacityType"] == "SPOT" and ng["diskSize"] == 50 and ng["labels"] == {"role": "web"}
    assert ng["tags"]["team"] == "web"
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:kubeinit.dev/cluster", "Values": ["demo"]}])["Vpcs"][0]
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]}["env"] == "dev"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["eu-west-1b", "eu-west-1b", "eu-west-1c", "eu-west-1c"]
    view = kubectl_view(kc)
    assert view["current-context"] == "mine"  # --set-context=false: merged, not made current
    assert cluster["arn"] in [c["name"] for c in view["contexts"]]
    assert "not made current" in r.output
    succeeds(cli, *delete_cmd("eks"))


def test_eks_three_zones_get_a_subnet_pair_each(aws, cli):
    r = cli(*EKS, "--zones", "eu-west-1a,eu-west-1b,eu-west-1c", "--write-kubeconfig=false")
    assert r.exit_code == 0, r.output
    assert not Path(os.environ["KUBECONFIG"]).exists() and "no kubeconfig written" in r.output
    ec2 = boto3.client("ec2", endpoint_url=aws.url, region_name="eu-west-1")
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:kubeinit.dev/cluster", "Values": ["demo"]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == sorted(f"192.168.{32 * i}.0/19" for i in range(6))
    succeeds(cli, *delete_cmd("eks"))
    assert ec2.describe_subnets(Filters=[{"Name": "tag:kubeinit.dev/cluster", "Values": ["demo"]}])["Subnets"] == []


def test_bad_flags_are_refused_before_any_request(aws, gke, aks, cli):
    cases = [
        ([*EKS, "--zones", "eu-west-1a,us-east-1b"], "not an availability zone of region eu-west-1"),
        ([*EKS, "--zones", "eu-west-1a"], "two to four availability zones"),
        ([*EKS, "--tags", "team"], "is not KEY=VALUE"),
        ([*EKS, "--labels", "a=1,a=2"], "a is given twice"),
        ([*GKE, "--zones", "europe-west1-c"], "must include the cluster's zone europe-west1-b"),
        ([*GKE, "--zones", "europe-west1-b,us-east1-b"], "not a zone of region europe-west1"),
        ([*AKS, "--zones", "1,4"], "AKS availability zones are 1, 2 or 3"),
        ([*AKS, "--spot"], "AKS system pools (the first) cannot be spot"),
        ([*GKE, "--profile", "dev"], "applies only to provider eks"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)
        errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (args, r.output)
    assert aws.requests == [] and gke.requests == [] and aks.requests == []


def test_gke_zones_spot_labels_and_tags(gke, cli):
    r = cli(*GKE, "--zones", "europe-west1-b,europe-west1-c", "--spot", "--labels", "role=batch", "--tags", "team=data")
    assert r.exit_code == 0, r.output
    c = gke.clusters[GKE_KEY]
    assert c["locations"] == ["europe-west1-b", "europe-west1-c"]
    assert c["resourceLabels"] == {"team": "data", "kubeinit-dev-cluster": "demo"}
    assert c["nodePools"][0]["config"]["spot"] is True and c["nodePools"][0]["config"]["labels"] == {"role": "batch"}


def test_aks_zones_tags_and_volume(aks, cli):
    r = cli(*AKS, "--zones", "1,2", "--node-volume-size", "64", "--tags", "team=ops")
    assert r.exit_code == 0, r.output
    prof = aks.clusters[AKS_KEY]["properties"]["agentPoolProfiles"][0]
    assert prof["availabilityZones"] == ["1", "2"] and prof["osDiskSizeGB"] == 64 and "scaleSetPriority" not in prof
    assert aks.clusters[AKS_KEY]["tags"] == {"team": "ops", "kubeinit.dev-cluster": "demo"}


def test_no_wait_create_then_resume_gke(gke, cli):
    r = cli(*GKE, "--no-wait")
    assert r.exit_code == 0, r.output
    assert "started:" in r.output and "run the same create command again" in r.output
    assert gke.clusters[GKE_KEY]["status"] == "PROVISIONING"
    assert not any("/operations/" in p for _, p in gke.requests)  # it did not wait
    assert not Path(os.environ["KUBECONFIG"]).exists()
    assert _record("gke")["status"] == "creating"
    r = cli(*GKE)
    assert r.exit_code == 0, r.output
    assert gke.clusters[GKE_KEY]["status"] == "RUNNING" and _record("gke")["status"] == "ready"
    assert [m for m, p in gke.requests if p.endswith("/clusters")].count("POST") == 1  # created once


def test_no_wait_delete_then_finish_gke(gke, cli):
    assert cli(*GKE).exit_code == 0
    delete = delete_cmd("gke")
    r = cli(*delete, "--no-wait")
    assert r.exit_code == 0, r.output
    assert "started: the cloud is deleting" in r.output
    assert gke.clusters[GKE_KEY]["status"] == "STOPPING" and _record("gke")["status"] == "deleting"
    r = cli(*delete)  # waits for the running deletion instead of asking GKE again (it would refuse)
    assert r.exit_code == 0, r.output
    assert GKE_KEY not in gke.clusters
    assert [m for m, _ in gke.requests].count("DELETE") == 1


def test_no_wait_create_and_delete_aks(aks, cli):
    r = cli(*AKS, "--no-wait")
    assert r.exit_code == 0, r.output
    assert aks.clusters[AKS_KEY]["properties"]["provisioningState"] == "Creating"
    assert cli(*AKS).exit_code == 0
    delete = delete_cmd("aks")
    r = cli(*delete, "--no-wait")
    assert r.exit_code == 0, r.output
    assert aks.clusters[AKS_KEY]["properties"]["provisioningState"] == "Deleting"
    r = cli(*delete)
    assert r.exit_code == 0, r.output
    assert AKS_KEY not in aks.clusters and (SUB, "kubeinit-demo") not in aks.groups


def test_no_wait_delete_is_refused_for_eks(aws, cli):
    r = cli("delete", "cluster", "--provider", "eks", "--name", "demo", "--yes", "--no-wait")
    assert r.exit_code == 2 and "--no-wait is not available for EKS" in r.output
    assert aws.requests == []


def test_kubeconfig_print_writes_stdout_only(aks, cli, caplog):
    import logging

    assert cli(*AKS, "--write-kubeconfig=false").exit_code == 0
    caplog.set_level(logging.DEBUG)
    r = cli("kubeconfig", "--provider", "aks", "--name", "demo", "--print")
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.output)
    assert doc["users"][0]["user"]["token"] == SECRETS["aks_user_token"]  # asked for: printed whole
    assert not Path(os.environ["KUBECONFIG"]).exists()
    assert not any(SECRETS["aks_user_token"] in rec.getMessage() for rec in caplog.records)
    r = cli("kubeconfig", "--provider", "aks", "--name", "demo")  # without --print: the file, not stdout
    assert r.exit_code == 0 and SECRETS["aks_user_token"] not in r.output


def test_get_clusters_yaml(gke, cli):
    assert cli(*GKE).exit_code == 0
    r = cli("get", "clusters", "--provider", "gke", "-o", "yaml")
    assert r.exit_code == 0, r.output
    rows = yaml.safe_load(r.output)
    assert rows[0]["name"] == "demo" and rows[0]["status"] == "RUNNING" and rows[0]["recorded"] is True


def test_profile_is_used_and_recorded(aws, cli, monkeypatch, clean_env):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[dev]\naws_access_key_id = AKIAFAKEPROFILEKEY01\naws_secret_access_key = {SECRETS['aws_secret']}\n"
    )
    r = succeeds(cli, *create_cmd("eks", "--subnets", "subnet-a,subnet-b", "--profile", "dev"))
    assert _record("eks")["spec"]["profile"] == "dev"
    user = kubectl_view(Path(os.environ["KUBECONFIG"]))["users"][0]["user"]["exec"]
    assert {"name": "AWS_PROFILE", "value": "dev"} in user["env"]
    assert SECRETS["aws_secret"] not in r.output
    # later commands take the profile from the record
    succeeds(cli, *delete_cmd("eks"))


def test_dry_run_of_the_new_flags_sends_nothing(aws, gke, aks, cli):
    for args in (
        [*EKS, "--zones", "eu-west-1a,eu-west-1b", "--spot", "--tags", "a=b", "--no-wait"],
        [*GKE, "--zones", "europe-west1-b", "--spot", "--no-wait", "--set-context=false"],
        [*AKS, "--zones", "1", "--no-wait", "--write-kubeconfig=false"],
        ["delete", "cluster", "--provider", "aks", "--name", "demo", "--no-wait", "--keep-load-balancers"],
    ):
        r = cli(*args, "--dry-run")
        assert r.exit_code == 0, (args, r.output)
    assert aws.requests == [] and gke.requests == [] and aks.requests == []
    r = cli(*EKS, "--zones", "eu-west-1a,eu-west-1b", "--dry-run", "--no-wait")
    assert "(--no-wait: kubeinit returns here instead of waiting until EKS cluster demo is ACTIVE)" in r.output
    assert "create_nodegroup" not in r.output  # after the cluster, as a live --no-wait run
    assert "ZoneNames=['eu-west-1a', 'eu-west-1b']" in r.output
