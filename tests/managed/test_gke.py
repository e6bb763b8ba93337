"""GKE through the CLI against the local container v1 REST double."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from managed_testlib import create_cmd, delete_cmd, kubectl_view, scale_cmd

WHERE = ["--zone", "europe-west1-b", "--project", "proj-1"]
CREATE = create_cmd("gke", *WHERE, "--version", "1.30", "--nodes", "2", "--node-type", "e2-standard-4")
DELETE = delete_cmd("gke")
KEY = ("proj-1", "europe-west1-b", "demo")


def record_file() -> Path:
    return Path(os.environ["KUBEINIT_HOME"]) / "managed" / "gke-demo.json"


def test_create_kubeconfig_scale_delete(gke, cli):
    r = cli(*CREATE)
    assert r.exit_code == 0, r.output
    cluster = gke.clusters[KEY]
    assert cluster["status"] == "RUNNING"
    assert cluster["resourceLabels"] == {"kubeinit-dev-cluster": "demo"}
    pool = cluster["nodePools"][0]
    assert (pool["name"], pool["initialNodeCount"], pool["config"]["machineType"]) == (
        "default-pool",
        2,
        "e2-standard-4",
    )
    assert ("GET", "/v1/projects/proj-1/locations/europe-west1-b/operations/operation-1") in gke.requests

    view = kubectl_view(Path(os.environ["KUBECONFIG"]))
    name = "gke_proj-1_europe-west1-b_demo"
    assert view["current-context"] == name
    assert view["clusters"][0]["cluster"]["server"] == "https://127.0.0.1"
    exec_ = view["users"][0]["user"]["exec"]
    assert exec_["command"] == "gke-gcloud-auth-plugin"
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1" and exec_["provideClusterInfo"] is True

    r = cli("get", "clusters", "--provider", "gke", "--project", "proj-1")
    assert r.exit_code == 0, r.output
    assert "demo" in r.output and "RUNNING" in r.output and "europe-west1-b" in r.output

    r = cli(*scale_cmd("gke", "default-pool", "--nodes", "5", "--nodes-min", "1", "--nodes-max", "6"))
    assert r.exit_code == 0, r.output  # location and project come from the record
    pool = gke.clusters[KEY]["nodePools"][0]
    assert pool["initialNodeCount"] == 5
    assert pool["autoscaling"] == {"enabled": True, "minNodeCount": 1, "maxNodeCount": 6}

    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert KEY not in gke.clusters and not record_file().exists()


def test_operation_failure_is_recorded_then_deleted(gke, cli):
    gke.fail_operation("CREATE_CLUSTER", 8, 'Insufficient regional quota to satisfy request: resource "CPUS".')
    r = cli(*CREATE)
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: waiting until GKE cluster demo is created failed: quota exceeded (operation operation-1: "
        'Insufficient regional quota to satisfy request: resource "CPUS".)'
    ]
    rec = json.loads(record_file().read_text())
    assert [(e["kind"], e["id"]) for e in rec["resources"]] == [("cluster", "demo")]
    assert gke.clusters[KEY]["status"] == "ERROR"

    r = cli(*DELETE)
    assert r.exit_code == 0, r.output
    assert KEY not in gke.clusters


def test_cleanup_on_failure(gke, cli):
    gke.fail_operation("CREATE_CLUSTER", 3, "Node pool machine type e2-nope is not valid.")
    r = cli(*CREATE, "--cleanup-on-failure")
    assert r.exit_code == 2  # invalid input: the user can fix it
    assert "rejected as invalid" in r.output
    assert "cleaned up: removed 1 resources" in r.output
    assert KEY not in gke.clusters and not record_file().exists()


def test_permission_error_is_one_line(gke, cli):
    from doubles.gke import error

    gke.fail(
        "POST",
        r"/clusters$",
        error(403, "PERMISSION_DENIED", "Required 'container.clusters.create' permission for 'projects/proj-1'."),
    )
    r = cli(*CREATE)
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: creating GKE cluster demo failed: permission denied "
        "(403: Required 'container.clusters.create' permission for 'projects/proj-1'.)"
    ]
    assert not record_file().exists()  # nothing was created


def test_name_taken_is_a_user_error(gke, cli):
    gke.clusters[KEY] = {"name": "demo", "location": "europe-west1-b", "status": "RUNNING"}
    r = cli(*CREATE)
    assert r.exit_code == 2
    assert (
        "a GKE cluster named demo already exists in proj-1/europe-west1-b and kubeinit has no record of creating "
        "it: choose another --name (nothing was created)"
    ) in r.output
    assert not any(m == "POST" for m, _ in gke.requests)


def test_ctrl_c_while_waiting_keeps_everything(gke, cli, monkeypatch):
    import kubeinit.managed.run as run

    gke.op_polls = 10**6  # the operation never finishes

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(run.time, "sleep", interrupt)
    try:
        r = cli(*CREATE)
    finally:
        gke.op_polls = 1
    assert r.exit_code == 130
    assert "interrupted while waiting until GKE cluster demo is created; nothing was deleted" in r.output
    assert "run the same create command again to resume" in r.output
    assert "kubeinit delete cluster --provider gke --name demo" in r.output
    assert KEY in gke.clusters and record_file().exists()
    assert not any(m == "DELETE" for m, _ in gke.requests)


def test_dry_run_sends_nothing(gke, cli):
    for args in (
        CREATE,
        [*DELETE, *WHERE],
        scale_cmd("gke", "default-pool", "--nodes", "1", *WHERE),
    ):
        r = cli(*args, "--dry-run")
        assert r.exit_code == 0, r.output
    assert gke.requests == []


def test_through_python_m_kubeinit(gke, tmp_path):
    """The real entry point, in a subprocess (its network is the double's loopback only)."""
    import subprocess
    import sys

    from managed_testlib import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}

    def kubeinit(*args):
        return subprocess.run(
            [sys.executable, "-m", "kubeinit", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
        )

    top = kubeinit("--help")
    assert all(word in top.stdout for word in ("create", "get", "scale", "delete", "kubeconfig"))
    r = kubeinit(*CREATE)
    assert r.returncode == 0, r.stderr
    assert gke.clusters[KEY]["status"] == "RUNNING"
    r = kubeinit("delete", "cluster", "--provider", "gke", "--name", "demo")
    assert r.returncode == 2 and "pass --yes" in r.stderr  # no terminal to ask on
    assert kubeinit(*DELETE).returncode == 0
    assert KEY not in gke.clusters


def test_timeout_says_how_to_go_on(gke, cli):
    gke.op_polls = 10**6
    try:
        r = cli(*CREATE, "--timeout", "0")
    finally:
        gke.op_polls = 1
    assert r.exit_code == 1
    assert re.search(
        r"error: timed out after \d+\.\d s waiting until GKE cluster demo is created; it may still finish", r.output
    ), r.output
    assert record_file().exists()
