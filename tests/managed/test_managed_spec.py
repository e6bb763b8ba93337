"""The `managed:` section: parsing, YAML paths in errors, flags over the file."""

from __future__ import annotations

import pytest

from kubeinit.errors import SpecError
from kubeinit.managed.spec import ManagedSpec, NodePoolSpec, load_file, merge_flags, parse_managed

FILE = """\
apiVersion: kubeinit.dev/v1alpha1
kind: Cluster
name: prod
kubernetesVersion: "1.30.4"
managed:
  provider: eks
  region: eu-west-1
  version: "1.30"
  tags: {team: platform}
  nodePools:
    - {name: system, count: 2, instanceType: m5.large, min: 1, max: 3}
    - {name: batch, count: 0, instanceType: c5.xlarge, max: 10, labels: {workload: batch}}
"""


def test_cluster_file(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text(FILE)
    raw, name = load_file(str(f))
    spec = parse_managed(raw, name=name, source=str(f))
    assert spec == ManagedSpec(
        provider="eks",
        name="prod",
        region="eu-west-1",
        version="1.30",
        tags={"team": "platform"},
        node_pools=(
            NodePoolSpec("system", 2, "m5.large", 1, 3),
            NodePoolSpec("batch", 0, "c5.xlarge", None, 10, None, {"workload": "batch"}),
        ),
    )
    assert ManagedSpec.from_dict(spec.to_dict()) == spec


def test_defaults_per_provider():
    assert parse_managed({"provider": "gke", "zone": "europe-west1-b"}, name="x").node_pools == (
        NodePoolSpec("default-pool", 3, "e2-medium"),
    )
    assert parse_managed({"provider": "aks"}, name="x").node_pools[0].name == "nodepool1"


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"provider": "eks", "nodePools": [{"name": "a"}, {"name": "b", "count": -1}]},
            "managed.nodePools[1].count: must be an integer ≥ 0",
        ),
        (
            {"provider": "eks", "nodePools": [{"name": "a", "count": "2"}]},
            "managed.nodePools[0].count: must be an integer ≥ 0",
        ),
        (
            {"provider": "eks", "nodePools": [{"name": "a", "count": None, "min": 1}]},
            "managed.nodePools[0].count: must be an integer ≥ 0",
        ),
        (
            {"provider": "eks", "nodePools": [{"name": "a", "count": 3, "max": 2}]},
            "managed.nodePools[0].max: must be ≥ count and ≥ min",
        ),
        (
            {"provider": "eks", "nodePools": [{"name": "a"}, {"name": "a"}]},
            "managed.nodePools[1].name: duplicate node pool name 'a'",
        ),
        ({"provider": "eks", "nodePools": [{"name": "a", "size": 1}]}, "managed.nodePools[0].size: unknown field"),
        (
            {"provider": "aks", "nodePools": [{"name": "system-pool"}]},
            "managed.nodePools[0].name: must be lowercase letters and digits",
        ),
        ({"provider": "eks", "version": 1.3}, 'managed.version: must be a string such as "1.30" (quote it'),
        ({"provider": "eks", "version": "latest"}, "managed.version: must be a Kubernetes version"),
        ({"provider": "ecs"}, "managed.provider: must be one of eks, gke, aks"),
        ({"provider": "eks", "project": "p"}, "managed.project: applies only to provider gke"),
        ({"provider": "eks", "subnets": ["subnet-1"]}, "managed.subnets: EKS needs at least two subnets"),
        ({"provider": "gke", "region": "a", "zone": "b"}, "managed.zone: give only one of region, zone or location"),
        ({"provider": "eks", "regoin": "x"}, "managed.regoin: unknown field"),
        ({"provider": "eks", "tags": {"a": 1}}, "managed.tags: must be a mapping of strings to strings"),
    ],
)
def test_errors_carry_the_yaml_path(raw, message):
    with pytest.raises(SpecError) as e:
        parse_managed(raw, name="prod")
    assert str(e.value).startswith(message)
    assert e.value.exit_code == 2


def test_name_is_validated():
    with pytest.raises(SpecError, match=r"^managed.name: must be 1-40 lowercase"):
        parse_managed({"provider": "eks"}, name="Prod_1")


def test_flags_override_the_file_and_the_first_pool():
    raw = {"provider": "eks", "region": "eu-west-1", "nodePools": [{"name": "a", "count": 1}, {"name": "b"}]}
    merged = merge_flags(raw, {"region": "us-east-1", "nodes": 4, "node_type": "t3.large", "version": "1.31"})
    spec = parse_managed(merged, name="prod")
    assert (spec.region, spec.version) == ("us-east-1", "1.31")
    assert spec.node_pools[0] == NodePoolSpec("a", 4, "t3.large")
    assert spec.node_pools[1].name == "b"
    assert raw["nodePools"][0] == {"name": "a", "count": 1}  # the input is not modified


def test_file_errors(tmp_path, cli):
    f = tmp_path / "c.yaml"
    head = "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\nname: x\n"
    f.write_text(head + "managed:\n  provider: eks\n  nodePools:\n    - {name: a, count: -2}\n")
    r = cli("create", "cluster", "-f", f, "--dry-run")
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {f}: managed.nodePools[0].count: must be an integer ≥ 0"
    f.write_text(head)
    r = cli("create", "cluster", "-f", f)
    assert r.exit_code == 2 and "managed: missing" in r.output
    # the cluster-file loader's rules hold here too (config validate's): a Cluster document, no unknown fields
    f.write_text("name: x\nmanaged:\n  provider: eks\n")
    r = cli("create", "cluster", "-f", f, "--dry-run")
    assert r.exit_code == 2 and r.output.strip() == f"error: {f}: apiVersion: is missing; use kubeinit.dev/v1alpha1"


def test_file_through_the_cli_dry_run(tmp_path, cli, monkeypatch):
    f = tmp_path / "cluster.yaml"
    f.write_text(FILE)
    r = cli("create", "cluster", "-f", f, "--nodes", "3", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "nodegroupName='system'" in r.output and "'desiredSize': 3" in r.output
    assert "nodegroupName='batch'" in r.output and "labels={'workload': 'batch'}" in r.output
