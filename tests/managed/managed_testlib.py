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


def fails_then_resumes(cli, *args: str):
    """A create the cloud fails (exit 1), then the same command run again succeeding: that run's result."""
    assert cli(*args).exit_code == 1
    r = cli(*args)
    assert r.exit_code == 0, r.output
    return r


def kubectl_view(path: Path) -> dict:
    """Parse a kubeconfig with the real kubectl."""
    out = subprocess.run(
        ["kubectl", "config", "view", "--kubeconfig", str(path), "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)
