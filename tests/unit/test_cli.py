"""The CLI as a user meets it: dry-run plans, unavailable phases, exit codes, --help cost."""

from __future__ import annotations

import subprocess
import sys

from kubeinit import workflow

FLAGS = ["--apiserver-advertise-address", "10.20.30.40", "--node-name", "node-a"]


def dirs(tmp_path) -> list[str]:
    """Certificates and kubeconfigs in the test's directory."""
    return ["--cert-dir", str(tmp_path / "pki"), "--kubeconfig-dir", str(tmp_path)]


def one_node_config(tmp_path, artifacts: str):
    """A cluster file of node-a with this `artifacts:` (a flow mapping)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\nhosts:\n"
        "- {name: node-a, address: 10.20.30.40, role: control-plane}\n"
        f"artifacts: {artifacts}\n"
    )
    return cfg


def test_dry_run_with_no_file_prints_the_full_single_node_plan(kubeinit_cli, tmp_path):
    r = kubeinit_cli("init", "--dry-run", *dirs(tmp_path), *FLAGS)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    leaves = [leaf for p in workflow.init_phases() for leaf in p.leaves()]
    for leaf in leaves:
        assert f"[{leaf.path}]" in out, leaf.path
        if leaf.plan is None:
            assert f"[{leaf.path}] (not available yet)" in out
    # certs and kubeconfigs are planned for real: keys masked, certs with digests, nothing written
    assert f"upload {tmp_path}/pki/ca.key (mode 0600, <secret>)" in out
    assert f"upload {tmp_path}/pki/apiserver.crt (mode 0644, " in out
    assert f"upload {tmp_path}/admin.conf (mode 0600, <secret>)" in out
    assert "BEGIN" not in out and "PRIVATE" not in out
    assert not (tmp_path / "pki").exists() and not (tmp_path / "admin.conf").exists()
    # the order of the printed phases is the tree's order
    positions = [out.index(f"[{leaf.path}]") for leaf in leaves]
    assert positions == sorted(positions)


def test_dry_run_embedded_default_needs_no_flags(kubeinit_cli, tmp_path):
    r = kubeinit_cli("init", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "nothing will be changed" in r.stdout and "[certs/ca]" in r.stdout


def test_dry_run_plans_on_even_when_a_checksum_cannot_be_fetched(kubeinit_cli, tmp_path):
    """No network (or an empty mirror) must not stop --dry-run: the download shows, with a note
    that a real run would stop there and how to avoid it."""
    mirror = tmp_path / "empty-mirror"  # etcd 3.5.16 is outside kubeinit's table: its published checksum is needed
    cfg = one_node_config(tmp_path, f"{{mirror: {mirror}, allowUnlistedVersions: true, etcd: {{version: 3.5.16}}}}")
    r = kubeinit_cli("init", "--dry-run", "--config", str(cfg), *dirs(tmp_path))
    assert r.returncode == 0, r.stderr
    etcd = r.stdout[r.stdout.index("[etcd/local]") :]
    assert "cannot download the checksum file" in etcd and "a real run would stop here" in etcd
    assert "download etcd" in etcd and "verify the published sha256" in etcd
    assert not (tmp_path / "pki").exists()


def test_an_unlisted_version_without_a_pin_stops_even_a_dry_run_with_one_sentence(kubeinit_cli, tmp_path):
    cfg = one_node_config(tmp_path, f"{{mirror: {tmp_path / 'empty-mirror'}, etcd: {{version: 3.5.16}}}}")
    r = kubeinit_cli("init", "--dry-run", "--config", str(cfg), *dirs(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "phase etcd/local failed" in err[0], r.stderr
    assert "etcd 3.5.16 (linux/" in err[0] and "is not in kubeinit's checksum table" in err[0]
    assert "artifacts.etcd.sha256" in err[0] and "artifacts.allowUnlistedVersions: true" in err[0]
    # a listed version needs no checksum file at all: the plan shows the table's digest
    cfg.write_text(cfg.read_text().replace("3.5.16", "3.5.17"))
    r = kubeinit_cli("init", "--dry-run", "--config", str(cfg), *dirs(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "download etcd 3.5.17" in r.stdout and "cannot download the checksum file" not in r.stdout


def test_upload_certs_without_the_flag_only_says_it_skipped_as_kubeadm(kubeinit_cli, tmp_path):
    r = kubeinit_cli("init", "phase", "upload-certs", *dirs(tmp_path), *FLAGS)
    assert r.returncode == 0, r.stderr
    assert "upload-certs: 0 changed, 1 unchanged" in r.stdout, r.stdout
    plan = kubeinit_cli("init", "--dry-run", *dirs(tmp_path), *FLAGS)
    assert plan.returncode == 0, plan.stderr
    assert "[upload-certs]\n  node-a:\n    skip: Skipping phase. Please see --upload-certs" in plan.stdout
    assert not (tmp_path / "pki").exists()


def test_a_malformed_certificate_key_is_refused_in_one_line_before_anything(kubeinit_cli, tmp_path):
    for cmd in (["init"], ["init", "phase", "upload-certs"]):
        r = kubeinit_cli(*cmd, "--upload-certs", "--certificate-key", "0123abcd", *dirs(tmp_path), *FLAGS)
        err = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(err) == 1 and "--certificate-key must be 64 hex characters" in err[0], err
        assert "0123abcd" not in r.stderr + r.stdout
    assert not (tmp_path / "pki").exists()


def test_certs_then_kubeconfig_phases_write_and_rerun_changes_nothing(kubeinit_cli, tmp_path):
    args = [*dirs(tmp_path), *FLAGS]
    assert kubeinit_cli("init", "phase", "certs", "all", *args).returncode == 0
    assert kubeinit_cli("init", "phase", "kubeconfig", "all", *args).returncode == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert len(before) == 22 + 5
    again = kubeinit_cli("init", "phase", "certs", "all", *args)
    assert "(0 changed)" in again.stdout, again.stdout
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after
    # a new SAN is reported, not silently kept
    r = kubeinit_cli("init", "phase", "certs", "apiserver", "--apiserver-cert-extra-sans", "api.example.com", *args)
    assert r.returncode == 2 and "apiserver" in r.stderr and "api.example.com" in r.stderr, r.stderr


def test_skip_phases_runs_only_what_is_built(kubeinit_cli, tmp_path):
    skip = (
        "preflight,etcd,control-plane,kubelet-start,wait-control-plane,upload-config,upload-certs,"
        "mark-control-plane,bootstrap-token,kubelet-finalize,addon,cni,show-join-command"
    )
    r = kubeinit_cli("init", "--skip-phases", skip, *dirs(tmp_path), *FLAGS)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "admin.conf").stat().st_mode & 0o777 == 0o600


def test_help_imports_no_ssh_or_cloud_sdk():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubeinit", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    modules = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert "typer" in modules  # the measurement itself works
    for heavy in (
        "paramiko",
        "boto3",
        "botocore",
        "google",
        "azure",
        "cryptography",
        "jinja2",
        "yaml",
        "pydantic",
        "markdown_it",
        "unittest",
    ):
        assert heavy not in modules, heavy


def test_token_generate_format(kubeinit_cli):
    r = kubeinit_cli("token", "generate")
    import re

    assert r.returncode == 0 and re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}\n", r.stdout)


def test_config_print_init_defaults_round_trips(kubeinit_cli, tmp_path):
    r = kubeinit_cli("config", "print", "init-defaults")
    assert r.returncode == 0
    f = tmp_path / "c.yaml"
    f.write_text(r.stdout)
    v = kubeinit_cli("config", "validate", "--config", str(f))
    assert v.returncode == 0, v.stderr
