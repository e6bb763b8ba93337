"""AKS through the CLI against the local HTTPS ARM double (Azure-AsyncOperation LROs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from managed_testlib import SECRETS, create_cmd, delete_cmd, kubectl_view, scale_cmd

SUB = "00000000-0000-0000-0000-000000000001"
CREATE = create_cmd(
    "aks", "--location", "westeurope", "--version", "1.30", "--nodes", "2", "--node-type", "Standard_D4s_v5"
)
DELETE = delete_cmd("aks")
KEY = (SUB, "kubeinit-demo", "demo")


def record_file() -> Path:
    return Path(os.environ["KUBEINIT_HOME"]) / "managed" / "aks-demo.json"


def test_create_kubeconfig_scale_delete(aks, cli):
    r = cli(*CREATE)
    assert r.exit_code == 0, r.output
    cluster = aks.clusters[KEY]
    props = cluster["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert props["agentPoolProfiles"][0] | {} == {
        **props["agentPoolProfiles"][0],
        "name": "nodepool1",
        "count": 2,
        "vmSize": "Standard_D4s_v5",
        "mode": "System",
    }
    assert cluster["tags"] == {"kubeinit.dev-cluster": "demo"}
    assert aks.groups[(SUB, "kubeinit-demo")]["tags"] == {"kubeinit.dev-cluster": "demo"}
    assert any("/operations/" in p for _, p in aks.requests)  # the LRO was followed

    kc = Path(os.environ["KUBECONFIG"])
    view = kubectl_view(kc)
    assert view["current-context"] == "demo"
    assert view["users"][0]["name"] == "clusterUser_kubeinit-demo_demo"
    assert view["clusters"][0]["cluster"]["server"] == aks.api_server  # as listClusterUserCredential gave it
    assert SECRETS["aks_user_token"] in kc.read_text()  # the user's own credentials, in their 0600 file
    assert SECRETS["aks_user_token"] not in r.output

    r = cli("get", "clusters", "--provider", "aks")
    assert r.exit_code == 0, r.output
    assert "demo" in r.output and "Succeeded" in r.output

    r = cli(*scale_cmd("aks", "nodepool1", "--nodes", "4"))
    assert r.exit_code == 0, r.output
    assert aks.clusters[KEY]["properties"]["agentPoolProfiles"][0]["count"] == 4
    assert aks.clusters[KEY]["properties"]["agentPoolProfiles"][0]["vmSize"] == "Standard_D4s_v5"

    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert KEY not in aks.clusters and (SUB, "kubeinit-demo") not in aks.groups
    assert not record_file().exists()


def test_failed_operation_is_recorded_then_deleted_exactly(aks, cli):
    aks.fail_operation(
        "create_cluster",
        "QuotaExceeded",
        "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota.",
    )
    r = cli(*CREATE)
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.output
    assert errors[0].startswith(
        "error: waiting until AKS cluster demo is created failed: quota exceeded (QuotaExceeded: "
    )
    rec = json.loads(record_file().read_text())
    assert [(e["kind"], e["id"]) for e in rec["resources"]] == [
        ("resource_group", "kubeinit-demo"),
        ("cluster", "demo"),
    ]
    assert aks.clusters[KEY]["properties"]["provisioningState"] == "Failed"

    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert KEY not in aks.clusters and (SUB, "kubeinit-demo") not in aks.groups


def test_existing_resource_group_is_reused_and_kept(aks, cli):
    aks.groups[(SUB, "shared")] = {"name": "shared", "location": "westeurope", "tags": {"owner": "team"}}
    aks.fail_operation("create_cluster", "InternalServerError", "Something went wrong.")
    r = cli(*CREATE, "--resource-group", "shared", "--cleanup-on-failure")
    assert r.exit_code == 1
    assert "cleaned up: removed 1 resources" in r.output
    assert aks.groups[(SUB, "shared")]["tags"] == {"owner": "team"}  # neither changed nor deleted
    assert (SUB, "shared", "demo") not in aks.clusters
    assert ("PUT", f"/subscriptions/{SUB}/resourcegroups/shared") not in aks.requests


def test_permission_error_is_one_line(aks, cli):
    from doubles.arm import error

    aks.fail(
        "PUT",
        r"/resourcegroups/kubeinit-demo$",
        error(
            403,
            "AuthorizationFailed",
            "The client does not have authorization to perform action "
            "'Microsoft.Resources/subscriptions/resourcegroups/write'.",
        ),
    )
    r = cli(*CREATE)
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: creating resource group failed: permission denied (AuthorizationFailed: The client does not "
        "have authorization to perform action 'Microsoft.Resources/subscriptions/resourcegroups/write'.)"
    ]


def test_resume_after_failure_reuses_the_group(aks, cli):
    aks.fail_operation("create_cluster", "QuotaExceeded", "Cores quota.")
    assert cli(*CREATE).exit_code == 1
    aks.clusters[KEY]["properties"]["provisioningState"] = "Succeeded"  # e.g. fixed by support
    aks.requests.clear()
    r = cli(*CREATE)
    assert r.exit_code == 0, r.output
    assert not any(m == "PUT" or m == "HEAD" for m, _ in aks.requests)  # nothing created again
    assert cli(*DELETE).exit_code == 0


def test_dry_run_sends_nothing(aks, cli):
    for args in (
        CREATE,
        DELETE,
        scale_cmd("aks", "nodepool1", "--nodes", "3"),
    ):
        r = cli(*args, "--dry-run")
        assert r.exit_code == 0, r.output
    assert aks.requests == []
    r = cli(*CREATE, "--dry-run")
    assert "resources.resource_groups.check_existence('kubeinit-demo')" in r.output
    assert "containerservice.managed_clusters.begin_create_or_update('kubeinit-demo', 'demo', {" in r.output
