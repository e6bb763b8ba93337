"""`kubeinit kubeconfig -f cluster.yaml`: admin.conf read from the control plane over SSH (the
SSH test double) and merged into a kubeconfig that works against the API-server test double."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)
from sshserver import client_key, server  # noqa: F401 (fixtures)

from kubeinit.kube.client import Client


def cluster_file(tmp_path, cluster, server, client_key) -> str:
    f = tmp_path / "cluster.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeinit.dev/v1alpha1",
                "kind": "Cluster",
                "name": "lab",
                "bindPort": cluster.api.port,
                "kubeconfigDir": str(cluster.root),
                "hosts": [
                    {
                        "name": "cp-1",
                        "address": "127.0.0.1",
                        "role": "control-plane",
                        "ssh": {"user": "root", "port": server.port, "key": client_key[1]},
                    }
                ],
            }
        )
    )
    return str(f)


def _write_admin(kubeinit_cli, tmp_path, cluster, server, client_key, out):
    """`kubeinit kubeconfig -f` of the test cluster into `out`, the SSH double's key known."""
    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    f = cluster_file(tmp_path, cluster, server, client_key)
    return kubeinit_cli("kubeconfig", "-f", f, "--known-hosts", str(kh), "--kubeconfig", str(out))


def test_the_admin_entry_is_merged_0600_current_and_works(kubeinit_cli, tmp_path, cluster, server, client_key):
    out = tmp_path / "kube" / "config"
    out.parent.mkdir()
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "other",
                "clusters": [{"name": "other", "cluster": {"server": "https://x:6443"}}],
                "users": [],
                "contexts": [{"name": "other", "context": {"cluster": "other"}}],
            }
        )
    )
    r = _write_admin(kubeinit_cli, tmp_path, cluster, server, client_key, out)
    assert r.returncode == 0, r.stderr
    assert "wrote context lab" in r.stdout and str(out) in r.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    conf = yaml.safe_load(out.read_text())
    assert conf["current-context"] == "lab" and [c["name"] for c in conf["clusters"]] == ["other", "lab"]
    key = yaml.safe_load(cluster.admin_conf.read_text())["users"][0]["user"]["client-key-data"]
    assert key not in r.stdout + r.stderr, "the admin's key is never printed"
    assert Client.from_kubeconfig(out).get_text("/readyz") == "ok"
    if shutil.which("kubectl"):  # the real client reads the merged file the same way
        got = subprocess.run(
            ["kubectl", "--kubeconfig", str(out), "-n", "kube-public", "get", "configmaps", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert got.returncode == 0 and '"items"' in got.stdout, got.stderr


def test_no_admin_conf_yet_says_which_phase_makes_it(kubeinit_cli, tmp_path, cluster, server, client_key):
    (cluster.root / "admin.conf").unlink()
    r = _write_admin(kubeinit_cli, tmp_path, cluster, server, client_key, tmp_path / "k")
    assert r.returncode == 1 and "cp-1 has no" in r.stderr and "--only kubeconfig" in r.stderr, r.stderr
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("args", [["-f", "c.yaml", "-p", "eks", "-n", "x"], ["-p", "eks"], []])
def test_either_a_cluster_file_or_a_managed_cluster(kubeinit_cli, args):
    r = kubeinit_cli("kubeconfig", *args)
    assert r.returncode == 2 and r.stderr.startswith("error: give ")


@pytest.mark.parametrize(
    "existing,field",
    [
        ("clusters: {lab: {server: 'https://x'}}\n", "clusters: must be a list, not a mapping"),
        ("clusters: [lab]\n", "clusters[0]: must be a mapping with name and cluster, not text"),
        ("contexts: [{name: a, context: [x]}]\n", "contexts[0].context: must be a mapping, not a list"),
        ("users: [{user: {token: t}}]\n", "users[0].name: must be a non-empty name, not empty"),
    ],
)
def test_a_kubeconfig_of_the_wrong_shape_is_named_and_left_alone(
    kubeinit_cli, tmp_path, cluster, server, client_key, existing, field
):
    out = tmp_path / "config"
    out.write_text(existing)
    r = _write_admin(kubeinit_cli, tmp_path, cluster, server, client_key, out)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: the kubeconfig {out} is not a kubeconfig ({field}); fix it or pass --kubeconfig"
    ]
    assert out.read_text() == existing


def test_a_symlinked_kubeconfig_is_written_through_the_link(kubeinit_cli, tmp_path, cluster, server, client_key):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "kubeconfig"
    real.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}))
    real.chmod(0o644)
    link = tmp_path / "kube" / "config"
    link.parent.mkdir()
    link.symlink_to("../dotfiles/kubeconfig")  # relative, as dotfile managers make them
    r = _write_admin(kubeinit_cli, tmp_path, cluster, server, client_key, link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and link.resolve() == real, "the link stays a link"
    assert yaml.safe_load(real.read_text())["current-context"] == "lab"
    assert real.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in dotfiles.iterdir()) == ["kubeconfig"] and sorted(
        p.name for p in link.parent.iterdir()
    ) == ["config"], "no temp file left on either side"
