"""Bad input is refused before the first request (issue 11, finding 5): exit 2, one line, empty request log."""

from __future__ import annotations

import pytest
from managed_testlib import DOUBLE, FIRST_POOL, WHERE, create_cmd, scale_cmd

BAD_CREATE = [
    ("eks", ["--region", "EU_WEST_1"], "is not an AWS region"),
    ("eks", ["--region", "eu-west"], "is not an AWS region"),
    ("eks", ["--region", "eu-west-1", "--nodes", "10000"], "must be ≤ 450"),
    ("eks", ["--region", "eu-west-1", "--nodes", "3", "--nodes-max", "451"], "must be ≤ 450"),
    ("gke", ["--location", "europe west1"], "is not a GCP region"),
    ("gke", ["--zone", "europe-west1-b", "--nodes", "10000"], "must be ≤ 1000"),
    ("gke", ["--zone", "europe-west1-b", "--project", "Bad Project"], "is not a GCP project id"),
    ("aks", ["--location", "eu-west-1"], "is not an Azure location"),
    ("aks", ["--location", "West Europe"], "is not an Azure location"),
    ("aks", ["--location", "westeurope", "--nodes", "10000"], "must be ≤ 1000"),
    ("aks", ["--location", "westeurope", "--nodes", "0"], "AKS needs a system pool with nodes"),
    ("aks", ["--location", "westeurope", "--subscription", "not-a-guid"], "is not an Azure subscription id"),
    ("aks", ["--location", "westeurope", "--resource-group", "bad group!"], "is not an Azure resource group"),
]


def _one_error(output: str) -> str:
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return errors[0]


@pytest.mark.parametrize("dry", [False, True], ids=["live", "dry-run"])
@pytest.mark.parametrize("provider, args, says", BAD_CREATE)
def test_bad_create_input_is_refused_before_any_request(provider, args, says, dry, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    r = cli(*create_cmd(provider, *args), *(["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert says in _one_error(r.output)
    assert double.requests == []


def test_region_from_the_environment_is_checked_too(aws, cli, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu_west_1")
    r = cli("create", "cluster", "--provider", "eks", "--name", "demo")
    assert r.exit_code == 2 and "'eu_west_1' is not an AWS region" in _one_error(r.output)
    assert aws.requests == []


BAD_SCALE = [
    ("eks", ["--nodes", "451"], "more than EKS allows in one node pool (450)"),
    ("eks", ["--nodes", "3", "--nodes-min", "4"], "--nodes 3 is outside"),
    ("eks", ["--nodes", "3", "--nodes-min", "4", "--nodes-max", "2"], "--nodes-min 4 is more than --nodes-max 2"),
    ("gke", ["--nodes", "2", "--nodes-max", "3"], "needs both --nodes-min and --nodes-max"),
    ("gke", ["--nodes", "1001"], "per zone (1000)"),
    ("aks", ["--nodes", "2", "--nodes-min", "1"], "needs both --nodes-min and --nodes-max"),
    ("aks", ["--nodes", "5", "--nodes-min", "1", "--nodes-max", "4"], "--nodes 5 is outside"),
    ("aks", ["--nodes", "1001"], "(1000)"),
]


@pytest.mark.parametrize("provider, args, says", BAD_SCALE)
def test_bad_scale_input_is_refused_before_any_request(provider, args, says, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    r = cli(*scale_cmd(provider, FIRST_POOL[provider], *WHERE[provider], *args))
    assert r.exit_code == 2, r.output
    assert says in _one_error(r.output)
    assert double.requests == []


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
def test_bad_location_on_delete_and_kubeconfig_is_refused(provider, request, cli):
    double = request.getfixturevalue(DOUBLE[provider])
    bad = {"eks": ["--region", "eu-west"], "gke": ["--location", "europe west1"], "aks": ["--location", "eu-west-1"]}
    for args in (["delete", "cluster", "--yes"], ["kubeconfig"]):
        r = cli(*args, "--provider", provider, "--name", "demo", *bad[provider])
        assert r.exit_code == 2, r.output
        _one_error(r.output)
    assert double.requests == []
