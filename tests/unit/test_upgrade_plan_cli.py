"""`kubeinit upgrade plan -f cluster.yaml` as a user meets it: the first control plane reached over SSH
(the SSH test double), the cluster read through its admin.conf (the API-server test double), a table
of versions now and after, one verdict line; a refusal exits 2 in one line; nothing is written."""

from __future__ import annotations

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)
from sshserver import client_key, server  # noqa: F401 (fixtures)
from test_upgrade_check import put_config, put_node

WORKERS = ("w-1", "w-2")


def plan(kubeinit_cli, tmp_path, cluster, server, client_key, version: str):
    f = tmp_path / "cluster.yaml"
    ssh = {"user": "root", "port": server.port, "key": client_key[1]}
    f.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeinit.dev/v1alpha1",
                "kind": "Cluster",
                "name": "lab",
                "kubernetesVersion": version,
                "bindPort": cluster.api.port,
                "kubeconfigDir": str(cluster.root),
                "hosts": [
                    {"name": "cp-1", "address": "127.0.0.1", "role": "control-plane", "ssh": ssh},
                    *({"name": w, "address": f"192.0.2.{i + 1}", "role": "worker"} for i, w in enumerate(WORKERS)),
                ],
            }
        )
    )
    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    return f, kubeinit_cli("upgrade", "plan", "-f", str(f), "--known-hosts", str(kh))


def running(cluster, version: str, kubelets: str | None = None) -> None:
    put_config(cluster, version)
    for name in ("cp-1", *WORKERS):
        put_node(cluster, name, kubelets or version)


def table(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("─"))
    return [line.split() for line in lines[start + 1 : start + 5]]


def test_plan_shows_the_versions_now_and_after_and_the_command_to_run(
    kubeinit_cli, tmp_path, cluster, server, client_key
):
    running(cluster, "v1.33.1")
    put_node(cluster, "w-2", "v1.33.1", unschedulable=True)
    f, r = plan(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.33.2")
    assert r.returncode == 0, r.stderr
    assert table(r.stdout) == [
        ["control", "plane", "v1.33.1", "v1.33.2"],
        ["kubelet", "on", "cp-1", "Ready", "v1.33.1", "v1.33.2"],
        ["kubelet", "on", "w-1", "Ready", "v1.33.1", "v1.33.2"],
        ["kubelet", "on", "w-2", "Ready,SchedulingDisabled", "v1.33.1", "v1.33.2"],
    ]
    assert f"upgrade v1.33.1 -> v1.33.2: run `kubeinit upgrade apply -f {f}`" in r.stdout
    assert {m for m, _, _ in cluster.api.requests} == {"GET"}, "plan changes nothing"
    assert r.stderr == ""


def test_plan_of_a_cluster_at_the_files_version(kubeinit_cli, tmp_path, cluster, server, client_key):
    running(cluster, "v1.33.2")
    _, r = plan(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.33.2")
    assert r.returncode == 0, r.stderr
    assert "nothing to upgrade: the cluster runs v1.33.2, as the file says" in r.stdout
    put_node(cluster, "w-1", "v1.33.1")  # a run killed before it reached w-1
    f, r = plan(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.33.2")
    assert (
        f"the cluster runs v1.33.2, as the file says, but w-1 is not upgraded (or still cordoned): "
        f"`kubeinit upgrade apply -f {f}` finishes the job"
    ) in " ".join(r.stdout.split())


def test_plan_refuses_two_minors_at_once_in_one_line_after_the_table(
    kubeinit_cli, tmp_path, cluster, server, client_key
):
    running(cluster, "v1.33.1")
    _, r = plan(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.35.0")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "error: cp-1: phase preflight failed at 'plan': the cluster runs v1.33.1 and the file says v1.35.0: "
        "upgrade one minor at a time: first to v1.34.x."
    ]
    assert table(r.stdout)[0] == ["control", "plane", "v1.33.1", "v1.35.0"]


def test_plan_warns_of_a_kubelet_kubeadm_would_call_too_old(kubeinit_cli, tmp_path, cluster, server, client_key):
    running(cluster, "v1.33.4")
    put_node(cluster, "w-1", "v1.32.0")
    _, r = plan(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.34.1")
    assert r.returncode == 0, r.stderr
    assert "node w-1's kubelet v1.32.0 is more than 1 minor behind v1.34.1" in " ".join((r.stdout + r.stderr).split())


def apply(kubeinit_cli, tmp_path, cluster, server, client_key, version: str, *flags: str):
    f, _ = plan(kubeinit_cli, tmp_path, cluster, server, client_key, version)
    doc = yaml.safe_load(f.read_text())
    doc["hosts"] = doc["hosts"][:1]  # the control plane alone: the workers' addresses answer nothing
    f.write_text(yaml.safe_dump(doc))
    kh = tmp_path / "known_hosts"
    cluster.api.requests.clear()  # what plan (which wrote the file) asked
    return kubeinit_cli("upgrade", "apply", "-f", str(f), "--known-hosts", str(kh), *flags)


def test_apply_asks_first_and_without_a_terminal_refuses_before_any_host(
    kubeinit_cli, tmp_path, cluster, server, client_key
):
    running(cluster, "v1.33.1")
    r = apply(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.33.2")
    assert r.returncode == 2
    assert "not upgrading cluster 'lab' without confirmation: there is no terminal to ask on; pass --yes" in r.stderr
    assert cluster.api.requests == [], "no host or API was asked"


@pytest.mark.skip(
    reason="open bug: through the SSH test double, apply's login fails about half the time with "
    "'Channel closed.' (seen in CI; not yet understood); the same refusal over real SSH is "
    "tests/machines/test_upgrade.py::test_a_version_two_minors_up_or_older_is_refused_before_anything_changes"
)
def test_apply_refuses_two_minors_at_once_before_anything_changes(kubeinit_cli, tmp_path, cluster, server, client_key):
    running(cluster, "v1.33.1")
    r = apply(kubeinit_cli, tmp_path, cluster, server, client_key, "v1.35.0", "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    assert (
        "error: cp-1: phase preflight failed at 'plan': the cluster runs v1.33.1 and the file says v1.35.0: "
        "upgrade one minor at a time: first to v1.34.x." in r.stderr
    )
    assert {m for m, _, _ in cluster.api.requests} == {"GET"}, "refused before any change"
