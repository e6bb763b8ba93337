"""Helpers shared by the managed-cluster tests (a module name no other test directory uses)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Recognisable fake credentials: tests check that none reaches the output or the logs.
SECRETS = {
    "aws_secret": "FAKE-AWS-SECRET-KEY-8f3a61c0d2",
    "aws_session": "FAKE-AWS-SESSION-TOKEN-77e1b9",
    "gcp_token": "FAKE-GCP-ACCESS-TOKEN-4c2d9e",
    "azure_identity_header": "FAKE-AZURE-IDENTITY-HEADER-5b0f",
    "azure_token": "FAKE-AZURE-ARM-TOKEN-a91e3d",
    "aks_user_token": "FAKE-AKS-USER-TOKEN-0d4c7b",
    "aks_user_key": "FAKE-AKS-CLIENT-KEY-PEM-6e2f90ab",
}


FAST = ("--poll-interval", "0")  # the doubles answer at once: no wait between status checks
# where each provider's double holds the tests' clusters
WHERE = {
    "eks": ("--region", "eu-west-1"),
    "gke": ("--zone", "europe-west1-b", "--project", "proj-1"),
    "aks": ("--location", "westeurope"),
}
FIRST_POOL = {"eks": "ng-1", "gke": "default-pool", "aks": "nodepool1"}  # the pool `create cluster` makes
DOUBLE = {"eks": "aws", "gke": "gke", "aks": "aks"}  # the fixture of each provider's double


def create_cmd(provider: str, *args: str) -> list[str]:
    """`create cluster` of the tests' cluster, demo, with these flags."""
    return ["create", "cluster", "--provider", provider, "--name", "demo", *args, *FAST]


def delete_cmd(provider: str, *args: str) -> list[str]:
    """`delete cluster` of demo, without asking."""
    return ["delete", "cluster", "--provider", provider, "--name", "demo", "--yes", *args, *FAST]


def scale_cmd(provider: str, pool: str, *args: str) -> list[str]:
    """`scale nodepool` of one of demo's pools."""
    return ["scale", "nodepool", pool, "--provider", provider, "--cluster", "demo", *args, *FAST]


def succeeds(cli, *args: str):
    """The result of a command that must succeed (its output in the failure)."""
    r = cli(*args)
    assert r.exit_code == 0, r.output
    return r


def fails_then_resumes(cli, *args: str):
    """A create the cloud fails (exit 1), then the same command run again succeeding: that run's result."""
    assert cli(*args).exit_code == 1
    return succeeds(cli, *args)


def kubectl_view(path: Path) -> dict:
    """Parse a kubeconfig with the real kubectl."""
    out = subprocess.run(
        ["kubectl", "config", "view", "--kubeconfig", str(path), "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)
