"""upgrade cluster: control plane first (waited for), then each node pool (each waited for);
a skipped minor version or a downgrade is refused before any change; --dry-run sends nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from managed_testlib import DOUBLE, FAST, WHERE, create_cmd, succeeds

SUB = "00000000-0000-0000-0000-000000000001"
SUBNETS = {"eks": ("--subnets", "subnet-a,subnet-b")}


def _create(cli, provider):
    where = [*WHERE[provider], *SUBNETS.get(provider, ())]
    succeeds(cli, *create_cmd(provider, *where, "--version", "1.30", "--nodes", "1"))


def _upgrade(cli, provider, version, *extra):
    return cli("upgrade", "cluster", "--provider", provider, "--name", "demo", "--version", version, *extra, *FAST)


def _eks_on_130(aws):
    from moto.eks.models import eks_backends

    cluster = eks_backends["123456789012"]["eu-west-1"].clusters["demo"]
    for ng in cluster.nodegroups.values():
        ng.version = "1.30"  # as EKS reports a nodegroup made with its 1.30 cluster (moto says 1.19)


def test_eks_control_plane_then_nodegroups(aws, cli):
    _create(cli, "eks")
    _eks_on_130(aws)
    succeeds(cli, "create", "nodepool", "extra", "--provider", "eks", "--cluster", "demo", "--nodes", "1", *FAST)
    _eks_on_130(aws)
    aws.requests.clear()
    r = _upgrade(cli, "eks", "1.31")
    assert r.exit_code == 0, r.output
    eks = boto3.client("eks", endpoint_url=aws.url, region_name="eu-west-1")
    assert eks.describe_cluster(name="demo")["cluster"]["version"] == "1.31"
    for ng in ("ng-1", "extra"):
        assert eks.describe_nodegroup(clusterName="demo", nodegroupName=ng)["nodegroup"]["version"] == "1.31"
    calls = [(m, p) for m, p, _ in aws.requests]
    plane = calls.index(("POST", "/clusters/demo/updates"))
    first_pool = next(i for i, (m, p) in enumerate(calls) if p.endswith("/update-version"))
    waited = [i for i, (m, p) in enumerate(calls) if m == "GET" and p.startswith("/clusters/demo/updates/")]
    assert plane < waited[0] < first_pool  # the control plane was waited for before any nodegroup moved
    pools = [i for i, (m, p) in enumerate(calls) if p.endswith("/update-version")]
    assert len(pools) == 2 and any(pools[0] < w < pools[1] for w in waited)  # each nodegroup waited for
    rec = json.loads((Path(os.environ["KUBEINIT_HOME"]) / "managed" / "eks-demo.json").read_text())
    assert rec["spec"]["version"] == "1.31"


@pytest.mark.parametrize(
    "version, message",
    [
        ("1.32", "upgrade one minor version at a time (1.31 first)"),
        ("1.29", "1.29 is older"),
        ("v1", "is not a Kubernetes version"),
    ],
)
def test_eks_refuses_a_skip_or_a_downgrade_before_any_change(aws, cli, version, message):
    _create(cli, "eks")
    aws.requests.clear()
    r = _upgrade(cli, "eks", version)
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert all(m == "GET" for m, _, _ in aws.requests)  # at most the cluster was read


def test_gke_master_then_node_pools(gke, cli):
    _create(cli, "gke")
    gke.requests.clear()
    r = _upgrade(cli, "gke", "1.31")
    assert r.exit_code == 0, r.output
    c = gke.clusters[("proj-1", "europe-west1-b", "demo")]
    assert c["currentMasterVersion"].startswith("1.31.") and c["nodePools"][0]["version"].startswith("1.31.")
    paths = [p for _, p in gke.requests]
    master = next(i for i, p in enumerate(paths) if p.endswith(":updateMaster"))
    pool = next(i for i, (m, p) in enumerate(gke.requests) if m == "PUT" and "/nodePools/" in p)
    assert any(master < i < pool for i, p in enumerate(paths) if "/operations/" in p)
    assert _upgrade(cli, "gke", "1.33").exit_code == 2


def test_aks_control_plane_then_pools(aks, cli):
    _create(cli, "aks")
    aks.requests.clear()
    r = _upgrade(cli, "aks", "1.31")
    assert r.exit_code == 0, r.output
    props = aks.clusters[(SUB, "kubeinit-demo", "demo")]["properties"]
    assert props["currentKubernetesVersion"].startswith("1.31") and props["provisioningState"] == "Succeeded"
    assert props["agentPoolProfiles"][0]["orchestratorVersion"] == "1.31"
    puts = [p for m, p in aks.requests if m == "PUT"]
    assert puts[0].endswith("/managedClusters/demo") and puts[1].endswith("/agentPools/nodepool1")


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
def test_upgrade_dry_run_sends_nothing(provider, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    r = _upgrade(cli, provider, "1.31", *WHERE[provider], "--dry-run")
    assert r.exit_code == 0, r.output
    assert double.requests == []
    want = {
        "eks": ("eks.update_cluster_version(name='demo', version='1.31')", "eks.update_nodegroup_version("),
        "gke": ("container.update_master(", "container.update_node_pool("),
        "aks": ("managed_clusters.begin_create_or_update(", "agent_pools.begin_create_or_update("),
    }[provider]
    assert r.output.index(want[0]) < r.output.index(want[1])
