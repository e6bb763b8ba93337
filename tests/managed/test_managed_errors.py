"""Cloud errors in kubeinit's words (issue 11, finding 7): auth vs permission, internal errors,
durations, exit codes of credential/profile problems, azure-identity's noise, -v detail, a failed delete."""

from __future__ import annotations

import pytest
from managed_testlib import create_cmd, fails_then_resumes

from kubeinit.managed.run import duration

EKS = create_cmd("eks", "--region", "eu-west-1")
SUB = "00000000-0000-0000-0000-000000000001"
AKS = create_cmd("aks", "--location", "westeurope")


def errors(output: str) -> list[str]:
    assert "Traceback" not in output
    return [ln for ln in output.splitlines() if ln.startswith("error:")]


@pytest.mark.parametrize(
    "action, xml, code",
    [
        ("CreateRole", "iam", "InvalidClientTokenId"),
        ("CreateRole", "iam", "ExpiredToken"),
        ("CreateVpc", "ec2", "AuthFailure"),
    ],
)
def test_bad_aws_credentials_are_an_auth_error(aws, cli, action, xml, code):
    aws.fail_query(action, code, "The security token included in the request is invalid.", status=403, xml=xml)
    r = cli(*EKS)
    assert r.exit_code == 2, r.output
    [line] = errors(r.output)
    assert "failed: no valid credentials (" + code in line and "permission denied" not in line


def test_unrecognized_client_on_eks_is_an_auth_error(aws, cli):
    aws.fail_rest("POST", r"^/clusters$", "UnrecognizedClientException", "The security token is invalid.", 403)
    r = cli(*EKS, "--subnets", "subnet-a,subnet-b")
    assert r.exit_code == 2, r.output
    assert "no valid credentials (UnrecognizedClientException" in errors(r.output)[0]


def test_http_500_is_an_internal_error_not_unreachable(aws, cli):
    for _ in range(5):  # botocore's standard mode retries a 500 before giving up
        aws.fail_query("CreateVpc", "InternalError", "An internal error has occurred", status=500)
    r = cli(*EKS)
    assert r.exit_code == 1
    [line] = errors(r.output)
    assert "creating VPC failed: the cloud answered with an internal error (InternalError" in line
    assert "could not be reached" not in line


def test_gke_http_500_is_an_internal_error(gke, cli):
    from doubles.gke import error

    gke.fail("POST", r"/clusters$", error(500, "INTERNAL", "Internal error encountered."), times=10)
    r = cli(*create_cmd("gke", "--zone", "europe-west1-b"))
    assert r.exit_code == 1
    assert "the cloud answered with an internal error" in errors(r.output)[0]


def test_durations_read_as_a_person_would():
    assert [duration(s) for s in (0.004, 9.96, 12, 200, 2400, 3900)] == [
        "0.0 s",
        "10.0 s",
        "12 s",
        "3 min 20 s",
        "40 min",
        "1 h 5 min",
    ]


def test_a_reused_role_is_named_once(aws, cli):
    aws.fail_query("CreateVpc", "VpcLimitExceeded", "The maximum number of VPCs has been reached.")
    r = fails_then_resumes(cli, *EKS)
    assert "reusing IAM role kubeinit-demo-cluster (recorded)" in r.output
    assert "kubeinit-demo-cluster kubeinit-demo-cluster" not in r.output


def test_missing_aws_credentials_exit_2(aws, cli, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    r = cli(*EKS)
    assert r.exit_code == 2, r.output
    assert "no valid credentials (no AWS credentials found" in errors(r.output)[0]


def test_unknown_aws_profile_exit_2(aws, cli, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nope")
    r = cli(*EKS)
    assert r.exit_code == 2, r.output
    [line] = errors(r.output)
    assert "ProfileNotFound" in line and "nope" in line


def test_no_azure_credential_is_one_line_without_azure_identity_warnings(tmp_path):
    """Through `python -m kubeinit` (logging as a user gets it): azure-identity's per-credential warnings
    (a dozen lines) are not printed before kubeinit's own line."""
    import subprocess
    import sys

    from managed_testlib import ROOT

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBEINIT_HOME": str(tmp_path / "k"),
        "PYTHONPATH": str(ROOT),
        "AZURE_SUBSCRIPTION_ID": SUB,
        "NO_COLOR": "1",
        "COLUMNS": "300",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9",  # the managed-identity probe stays on loopback
        "KUBEINIT_AZURE_ARM_ENDPOINT": "https://127.0.0.1:9",
    }
    r = subprocess.run([sys.executable, "-m", "kubeinit", *AKS], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no valid credentials" in lines[0], lines


def test_verbose_adds_the_clouds_detail(aws, cli):
    aws.fail_query("CreateVpc", "VpcLimitExceeded", "The maximum number of VPCs has been reached.")
    plain = errors(cli(*EKS).output)[0]
    assert "request id" not in plain
    aws.fail_query("CreateVpc", "VpcLimitExceeded", "The maximum number of VPCs has been reached.")
    line = errors(cli("--verbose", *EKS).output)[0]
    assert line.startswith(plain) and "[request id test-double, HTTP 400, VpcLimitExceeded, CreateVpc]" in line


def test_failed_aks_delete_says_what_is_left(aks, cli):
    assert cli(*AKS).exit_code == 0
    aks.fail_operation("delete_cluster", "InternalServerError", "Something went wrong.")
    r = cli("delete", "cluster", "--provider", "aks", "--name", "demo", "--yes", "--poll-interval", "0")
    assert r.exit_code == 1
    assert len(errors(r.output)) == 1
    assert "still in the cloud: AKS cluster demo, resource group kubeinit-demo" in r.output
    assert "run `kubeinit delete cluster --provider aks --name demo` again" in r.output
