"""Scaling sends what the clouds accept (issue 11, finding 3); the doubles refuse what the clouds refuse."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from managed_testlib import create_cmd, delete_cmd, scale_cmd, succeeds

SUB = "00000000-0000-0000-0000-000000000001"


def eks(aws):
    return boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1")


def test_eks_scale_outside_the_range_widens_it_and_says_so(aws, cli):
    succeeds(cli, *create_cmd("eks", "--region", "eu-west-1", "--nodes", "2"))
    cfg = eks(aws).describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]["scalingConfig"]
    assert cfg == {"minSize": 2, "maxSize": 2, "desiredSize": 2}
    r = succeeds(cli, *scale_cmd("eks", "ng-1", "--nodes", "3"))
    assert "widening EKS nodegroup ng-1's size range from [2, 2] to [2, 3] to hold 3 nodes" in r.output
    cfg = eks(aws).describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]["scalingConfig"]
    assert cfg == {"minSize": 2, "maxSize": 3, "desiredSize": 3}
    succeeds(cli, *scale_cmd("eks", "ng-1", "--nodes", "0"))
    cfg = eks(aws).describe_nodegroup(clusterName="demo", nodegroupName="ng-1")["nodegroup"]["scalingConfig"]
    assert cfg == {"minSize": 0, "maxSize": 3, "desiredSize": 0}
    succeeds(cli, *delete_cmd("eks"))


def test_the_aws_double_refuses_a_desired_size_outside_the_range(aws, cli):
    succeeds(cli, *create_cmd("eks", "--region", "eu-west-1", "--nodes", "2", "--subnets", "subnet-a,subnet-b"))
    with pytest.raises(ClientError, match="desired capacity 3 can't be greater than max size 2"):
        eks(aws).update_nodegroup_config(clusterName="demo", nodegroupName="ng-1", scalingConfig={"desiredSize": 3})


def aks_pool(aks):
    return aks.clusters[(SUB, "kubeinit-demo", "demo")]["properties"]["agentPoolProfiles"][0]


def test_aks_min_max_turn_the_autoscaler_on(aks, cli):
    succeeds(cli, *create_cmd("aks", "--location", "westeurope", "--nodes", "2"))
    scale = scale_cmd("aks", "nodepool1")
    succeeds(cli, *scale, "--nodes", "3", "--nodes-min", "1", "--nodes-max", "5")
    pool = aks_pool(aks)
    assert (pool["enableAutoScaling"], pool["minCount"], pool["maxCount"], pool["count"]) == (True, 1, 5, 3)
    aks.requests.clear()
    r = cli(*scale, "--nodes", "4")  # AKS does not set the count of an autoscaled pool
    assert r.exit_code == 2, r.output
    assert "AKS node pool nodepool1 is autoscaled between 1 and 5: give --nodes-min and --nodes-max" in r.output
    assert not any(m == "PUT" for m, _ in aks.requests)


def test_aks_system_pool_to_zero_is_refused(aks, cli):
    succeeds(cli, *create_cmd("aks", "--location", "westeurope", "--nodes", "2"))
    aks.requests.clear()
    scale = scale_cmd("aks", "nodepool1", "--nodes", "0")
    r = cli(*scale)
    assert r.exit_code == 2, r.output
    assert "node pool nodepool1 is the AKS cluster's system pool: it needs at least 1 node" in r.output
    assert aks.requests == []  # known from the record: before any call
    (Path(os.environ["KUBEINIT_HOME"]) / "managed" / "aks-demo.json").unlink()
    r = cli(*scale, "--resource-group", "kubeinit-demo")  # no record: the pool's mode is read first
    assert r.exit_code == 2, r.output
    assert "is a System pool: it needs at least 1 node" in r.output
    assert not any(m == "PUT" for m, _ in aks.requests)
    assert aks_pool(aks)["count"] == 2


def test_gke_max_alone_does_not_set_min_to_zero(gke, cli):
    r = cli(*scale_cmd("gke", "default-pool", "--zone", "europe-west1-b", "--nodes", "2", "--nodes-max", "3"))
    assert r.exit_code == 2
    assert "GKE autoscaling needs both --nodes-min and --nodes-max" in r.output
    assert gke.requests == []
