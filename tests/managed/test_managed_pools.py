"""get/create/delete nodepool on the three clouds' doubles; pools kubeinit made are recorded and
removed by `delete cluster`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from managed_testlib import DOUBLE, FAST, FIRST_POOL, WHERE, create_cmd, delete_cmd, succeeds

SUB = "00000000-0000-0000-0000-000000000001"


def _record_file(provider: str) -> Path:
    return Path(os.environ["KUBEINIT_HOME"]) / "managed" / f"{provider}-demo.json"


def _cloud_pools(provider: str, double) -> list[str]:
    if provider == "eks":
        eks = boto3.client("eks", endpoint_url=double.url, region_name="eu-west-1")
        return eks.list_nodegroups(clusterName="demo")["nodegroups"] if eks.list_clusters()["clusters"] else []
    if provider == "gke":
        c = double.clusters.get(("proj-1", "europe-west1-b", "demo"))
    else:
        c = double.clusters.get((SUB, "kubeinit-demo", "demo"))
        return [p["name"] for p in c["properties"]["agentPoolProfiles"]] if c else []
    return [p["name"] for p in c["nodePools"]] if c else []


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
def test_create_get_delete_nodepool_and_delete_cluster_takes_the_rest(provider, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    succeeds(cli, *create_cmd(provider, *WHERE[provider], "--nodes", "1"))
    on = ["--provider", provider, "--cluster", "demo"]

    bounds = ["--nodes", "2", "--min", "1", "--max", "3"]
    succeeds(cli, "create", "nodepool", "extra", *on, *bounds, "--spot", "--labels", "role=batch", *FAST)
    assert sorted(_cloud_pools(provider, double)) == sorted([FIRST_POOL[provider], "extra"])
    rec = json.loads(_record_file(provider).read_text())
    kind = {"eks": "nodegroup", "gke": "node_pool", "aks": "agent_pool"}[provider]
    assert (kind, "extra") in [(e["kind"], e["name"]) for e in rec["resources"]]

    r = cli("get", "nodepools", *on, "-o", "json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["extra"]["nodes"] == 2 and rows["extra"]["min"] == 1 and rows["extra"]["max"] == 3
    assert rows["extra"]["spot"] is True and rows[FIRST_POOL[provider]]["spot"] is False
    assert rows["extra"]["recorded"] and rows[FIRST_POOL[provider]]["recorded"]
    r = cli("get", "nodepools", *on)
    assert r.exit_code == 0 and "extra" in r.output and "NAME" in r.output

    r = cli("delete", "nodepool", "extra", *on)  # no terminal to ask on
    assert r.exit_code == 2 and "--yes" in r.output
    r = cli("delete", "nodepool", "extra", *on, "--yes", *FAST)
    assert r.exit_code == 0, r.output
    assert _cloud_pools(provider, double) == [FIRST_POOL[provider]]
    rec = json.loads(_record_file(provider).read_text())
    assert (kind, "extra") not in [(e["kind"], e["name"]) for e in rec["resources"]]

    # a pool made after the cluster goes with `delete cluster`: nothing is left
    assert cli("create", "nodepool", "late", *on, "--nodes", "1", *FAST).exit_code == 0
    succeeds(cli, *delete_cmd(provider))
    assert _cloud_pools(provider, double) == [] and not _record_file(provider).exists()


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
def test_nodepool_dry_runs_send_nothing_and_bad_input_is_refused_first(provider, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    on = ["--provider", provider, "--cluster", "demo", *WHERE[provider]]
    for args in (
        ["create", "nodepool", "extra", *on, "--nodes", "1", "--spot", "--labels", "a=b"],
        ["delete", "nodepool", "extra", *on],
    ):
        r = cli(*args, "--dry-run")
        assert r.exit_code == 0, (args, r.output)
    for args, message in (
        (["create", "nodepool", "Bad_Name!", *on, "--nodes", "1"], "NAME: must be"),
        (["create", "nodepool", "extra", *on, "--nodes", "1", "--max", "0"], "--nodes-max: must be"),
        (["create", "nodepool", "extra", *on, "--nodes", "5000"], "--nodes: must be ≤"),
        (["create", "nodepool", "extra", *on, "--nodes", "1", "--labels", "x"], "--labels:"),
    ):
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output, (args, r.output)
    assert double.requests == []


def test_eks_nodepool_on_a_cluster_kubeinit_did_not_make(aws, cli):
    """Role and subnets come from the cluster's nodegroup; no record is written."""
    eks = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1")
    role = "arn:aws:iam::123456789012:role/theirs"
    eks.create_cluster(name="demo", roleArn=role, resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]})
    eks.create_nodegroup(clusterName="demo", nodegroupName="theirs", nodeRole=role, subnets=["subnet-1", "subnet-2"])
    r = cli("create", "nodepool", "mine", "--provider", "eks", "--cluster", "demo", "--nodes", "1", *FAST)
    assert r.exit_code == 0, r.output
    ng = eks.describe_nodegroup(clusterName="demo", nodegroupName="mine")["nodegroup"]
    assert ng["nodeRole"] == role and ng["subnets"] == ["subnet-1", "subnet-2"]
    assert not _record_file("eks").exists()
    r = cli("get", "nodepools", "--provider", "eks", "--cluster", "demo", "-o", "json")
    assert {row["name"]: row["recorded"] for row in json.loads(r.output)} == {"theirs": False, "mine": False}


def test_aks_system_pool_is_not_deleted_alone(aks, cli):
    succeeds(cli, *create_cmd("aks", *WHERE["aks"], "--nodes", "1"))
    aks.requests.clear()
    r = cli("delete", "nodepool", "nodepool1", "--provider", "aks", "--cluster", "demo", "--yes", *FAST)
    assert r.exit_code == 2 and "system pool" in r.output
    assert aks.requests == []


def test_gke_name_taken_is_one_line(gke, cli):
    succeeds(cli, *create_cmd("gke", *WHERE["gke"], "--nodes", "1"))
    r = cli("create", "nodepool", "default-pool", "--provider", "gke", "--cluster", "demo", "--nodes", "1", *FAST)
    assert r.exit_code == 2
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "the name is already taken" in errors[0]
