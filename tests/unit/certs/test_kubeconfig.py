"""kubeconfig files read by the real kubectl, and their client certs checked with openssl (reference §3)."""

from __future__ import annotations

import base64
import os
import subprocess
from datetime import timedelta

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeinit import kubeconfig
from kubeinit.certs import keys
from kubeinit.certs.kubeconfig import plan_kubeconfigs
from kubeinit.errors import UserError

CPE = "https://k8s-api.example.com:8443"  # make_cfg's controlPlaneEndpoint
LOCAL = "https://192.168.10.11:6443"
TABLE = {  # file: (CN = user, O, server)
    "admin.conf": ("kubernetes-admin", ["kubeadm:cluster-admins"], CPE),
    "super-admin.conf": ("kubernetes-super-admin", ["system:masters"], CPE),
    "kubelet.conf": ("system:node:cp-1", ["system:nodes"], CPE),
    "controller-manager.conf": ("system:kube-controller-manager", [], LOCAL),
    "scheduler.conf": ("system:kube-scheduler", [], LOCAL),
}


def kubectl(*args, kubeconfig):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(kubeconfig.parent)}
    res = subprocess.run(
        ["kubectl", "config", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def contexts(kubeconfig) -> list[list[str]]:
    """`kubectl config get-contexts` rows as [current, name, cluster, authinfo]."""
    rows = kubectl("get-contexts", kubeconfig=kubeconfig).splitlines()
    assert rows[0].split() == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    out = []
    for line in rows[1:]:
        cur, rest = line[:1], line[1:].split()
        out.append([cur.strip(), *rest])
    return out


@pytest.mark.parametrize("name", list(TABLE))
def test_kubectl_reads_kubeconfig_and_cert_chains_to_ca(gen, name, tmp_path, write_tree, openssl_verify, now):
    cn, orgs, server = TABLE[name]
    write_tree(tmp_path, {**gen.files, name: gen.kc_files[name]})
    path = tmp_path / name

    view = yaml.safe_load(kubectl("view", "--raw", kubeconfig=path))
    ctx = f"{cn}@prod"
    assert view["current-context"] == ctx
    assert view["contexts"] == [{"name": ctx, "context": {"cluster": "prod", "user": cn}}]
    [cluster] = view["clusters"]
    assert cluster["name"] == "prod" and cluster["cluster"]["server"] == server
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == gen.files["ca.crt"]
    [user] = view["users"]
    assert user["name"] == cn
    assert contexts(path) == [["*", ctx, "prod", cn]]

    cert_pem = base64.b64decode(user["user"]["client-certificate-data"])
    key_pem = base64.b64decode(user["user"]["client-key-data"])
    (tmp_path / "client.crt").write_bytes(cert_pem)
    ok = openssl_verify(tmp_path / "ca.crt", tmp_path / "client.crt")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert openssl_verify(tmp_path / "front-proxy-ca.crt", tmp_path / "client.crt").returncode != 0

    cert = x509.load_pem_x509_certificate(cert_pem)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [cn]
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == orgs
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert cert.not_valid_after_utc == now + timedelta(days=100)
    assert cert.not_valid_before_utc == now - timedelta(minutes=5)
    assert keys.same_public_key(cert.public_key(), keys.load_private_key(key_pem))
    kind = b"RSA PRIVATE KEY" if gen.cfg.algorithm.startswith("RSA") else b"EC PRIVATE KEY"
    assert key_pem.startswith(b"-----BEGIN " + kind)


def test_files_are_0600_in_kubeadm_order(gen):
    assert [(f.path, f.mode) for f in gen.kubeconfigs.files] == [(n, 0o600) for n in TABLE]


def test_existing_kubeconfigs_are_reused(gen, now):
    plan = plan_kubeconfigs(gen.cfg, gen.files["ca.crt"], gen.files["ca.key"], gen.kc_files, now=now)
    assert plan.files == () and plan.reused == tuple(TABLE) and plan.warnings == ()


def test_server_mismatch_is_only_a_warning(ec, make_cfg, now):
    cfg = make_cfg(algorithm="ECDSA-P256", control_plane_endpoint="new-lb.example.com")
    plan = plan_kubeconfigs(cfg, ec.files["ca.crt"], ec.files["ca.key"], ec.kc_files, now=now)
    assert plan.files == ()
    assert plan.warnings[0] == (
        "admin.conf is kept but its API server URL is https://k8s-api.example.com:8443, "
        "expected https://new-lb.example.com:6443"
    )
    assert len(plan.warnings) == 3  # admin, super-admin, kubelet; the local ones did not move


def test_wrong_ca_names_the_file(rsa, ec, now):
    existing = {**rsa.kc_files, "scheduler.conf": ec.kc_files["scheduler.conf"]}
    with pytest.raises(UserError, match=r"^scheduler.conf exists but trusts another CA than ca.crt"):
        plan_kubeconfigs(rsa.cfg, rsa.files["ca.crt"], rsa.files["ca.key"], existing, now=now)


def test_external_ca_needs_every_file(ec, now):
    plan = plan_kubeconfigs(ec.cfg, ec.files["ca.crt"], None, ec.kc_files, now=now)
    assert plan.files == () and len(plan.reused) == 5
    existing = {k: v for k, v in ec.kc_files.items() if k != "kubelet.conf"}
    with pytest.raises(UserError, match=r"^kubelet.conf is missing and ca.key is absent \(external CA mode\)"):
        plan_kubeconfigs(ec.cfg, ec.files["ca.crt"], None, existing, now=now)


def test_endpoint_rules(ec, make_cfg, now):
    def servers(**over):
        cfg = make_cfg(algorithm="ECDSA-P256", **over)
        plan = plan_kubeconfigs(
            cfg, ec.files["ca.crt"], ec.files["ca.key"], {}, only=["admin", "scheduler.conf", "kubelet"], now=now
        )
        return {f.path: yaml.safe_load(f.content)["clusters"][0]["cluster"]["server"] for f in plan.files}

    assert servers(control_plane_endpoint=None) == {"admin.conf": LOCAL, "kubelet.conf": LOCAL, "scheduler.conf": LOCAL}
    assert servers(control_plane_endpoint="10.0.0.5", bind_port=7443)["admin.conf"] == "https://10.0.0.5:7443"
    got = servers(advertise_address="fd00::11", control_plane_endpoint="[fd00::5]:443", kubelet_local_mode=True)
    assert got == {
        "admin.conf": "https://[fd00::5]:443",
        "kubelet.conf": "https://[fd00::11]:6443",
        "scheduler.conf": "https://[fd00::11]:6443",
    }


def test_unknown_kubeconfig_name(ec, now):
    with pytest.raises(UserError, match="unknown kubeconfig 'kube-proxy'"):
        plan_kubeconfigs(ec.cfg, ec.files["ca.crt"], ec.files["ca.key"], {}, only=["kube-proxy"], now=now)


def test_bootstrap_kubeconfig_read_by_kubectl(ec, tmp_path):
    path = tmp_path / "bootstrap-kubelet.conf"
    path.write_text(
        kubeconfig.bootstrap("https://10.0.0.10:6443", kubeconfig.b64(ec.files["ca.crt"]), "abcdef.0123456789abcdef")
    )
    view = yaml.safe_load(kubectl("view", "--raw", kubeconfig=path))
    assert view["users"] == [{"name": "tls-bootstrap-token-user", "user": {"token": "abcdef.0123456789abcdef"}}]
    assert contexts(path) == [["*", "tls-bootstrap-token-user@kubernetes", "kubernetes", "tls-bootstrap-token-user"]]


def test_cluster_info_is_serialised_like_client_go():
    # reference §4.4, the derived JWS vector's content
    want = (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAAA\n"
        '    server: https://10.0.0.10:6443\n  name: ""\ncontexts: null\ncurrent-context: ""\n'
        "kind: Config\npreferences: {}\nusers: null\n"
    )
    assert kubeconfig.cluster_info("https://10.0.0.10:6443", b"\0\0\0") == want


def test_cluster_info_read_by_kubectl(ec, tmp_path):
    path = tmp_path / "cluster-info"
    path.write_text(kubeconfig.cluster_info("https://10.0.0.10:6443", ec.files["ca.crt"]))
    view = yaml.safe_load(kubectl("view", "--raw", kubeconfig=path))
    assert view["clusters"][0]["cluster"]["server"] == "https://10.0.0.10:6443"
    assert view["users"] is None and view["contexts"] is None


def test_exec_plugin_kubeconfig_and_merge(ec, tmp_path):
    # an absent command: gcloud's kubectl dispatcher runs the exec plugin even for `config view`
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "kubeinit-test-absent-plugin",
            "args": ["eks", "get-token", "--cluster-name", "demo"],
            "interactiveMode": "Never",
        }
    }
    eks = kubeconfig.config(
        "arn:aws:eks:eu-west-1:1:cluster/demo",
        "https://demo.eks.amazonaws.com",
        base64.b64encode(ec.files["ca.crt"]).decode(),
        "demo-user",
        exec_user,
        "demo",
    )
    path = tmp_path / "config"
    path.write_bytes(ec.kc_files["admin.conf"])
    assert kubeconfig.merge(path, eks) == "demo"
    assert sorted(contexts(path)) == [
        ["", "kubernetes-admin@prod", "prod", "kubernetes-admin"],
        ["*", "demo", "arn:aws:eks:eu-west-1:1:cluster/demo", "demo-user"],
    ]
    view = yaml.safe_load(kubectl("view", "--raw", kubeconfig=path))
    users = {u["name"]: u["user"] for u in view["users"]}
    assert users["demo-user"]["exec"]["args"] == ["eks", "get-token", "--cluster-name", "demo"]
    assert "client-certificate-data" in users["kubernetes-admin"]

    # merging again with a changed server replaces the same-named cluster where it stands
    eks2 = yaml.safe_load(
        kubeconfig.dump(eks).replace("https://demo.eks.amazonaws.com", "https://demo2.eks.amazonaws.com")
    )
    kubeconfig.merge(path, eks2)
    again = yaml.safe_load(path.read_text())
    assert [c["cluster"]["server"] for c in again["clusters"]] == [CPE, "https://demo2.eks.amazonaws.com"]
    assert len(again["users"]) == 2 and again["current-context"] == "demo"
    # and into nothing
    kubeconfig.merge(tmp_path / "new" / "config", eks)
    assert yaml.safe_load((tmp_path / "new" / "config").read_text()) == eks


def test_client_keys_are_masked(ec):
    from kubeinit.redact import mask

    data = yaml.safe_load(ec.kc_files["admin.conf"])["users"][0]["user"]["client-key-data"]
    assert data not in mask(f"{{client-key-data: {data}}}")
