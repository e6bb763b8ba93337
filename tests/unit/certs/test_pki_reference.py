"""Generated certificates against kubeadm's table (reference §2), for RSA-2048 and ECDSA-P256.

The expected values are written out here by hand from the reference, not taken from the library.
"""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID

from kubeinit.certs.catalogue import BY_NAME, alt_names, template
from kubeinit.certs.pki import plan_pki

SERVER, CLIENT = EKU.SERVER_AUTH, EKU.CLIENT_AUTH
ip = ipaddress.ip_address

# make_cfg(): node cp-1, advertise 192.168.10.11, services 10.100.0.0/16 first, domain corp.internal,
# controlPlaneEndpoint k8s-api.example.com:8443, extra SANs incl. a duplicate IP, a duplicate DNS,
# a wildcard and an invalid name.
RULE_A_DNS = [
    "*.apps.example.com",
    "api.example.com",
    "cp-1",
    "k8s-api.example.com",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.corp.internal",
]
RULE_A_IPS = [ip("10.100.0.1"), ip("192.168.10.11"), ip("203.0.113.7")]
RULE_B = [ip("192.168.10.11"), ip("127.0.0.1"), ip("::1")]

EXPECTED = {
    # name: (file base, CN, O, signer, EKU, DNS SANs, IP SANs)
    "ca": ("ca", "kubernetes", [], None, [], ["kubernetes"], []),
    "apiserver": ("apiserver", "kube-apiserver", [], "ca", [SERVER], RULE_A_DNS, RULE_A_IPS),
    "apiserver-kubelet-client": (
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        ["kubeadm:cluster-admins"],
        "ca",
        [CLIENT],
        [],
        [],
    ),
    "front-proxy-ca": ("front-proxy-ca", "front-proxy-ca", [], None, [], ["front-proxy-ca"], []),
    "front-proxy-client": ("front-proxy-client", "front-proxy-client", [], "front-proxy-ca", [CLIENT], [], []),
    "etcd-ca": ("etcd/ca", "etcd-ca", [], None, [], ["etcd-ca"], []),
    "etcd-server": (
        "etcd/server",
        "cp-1",
        [],
        "etcd-ca",
        [SERVER, CLIENT],
        ["cp-1", "etcd.example.com", "localhost"],
        RULE_B + [ip("10.1.1.1")],
    ),
    "etcd-peer": (
        "etcd/peer",
        "cp-1",
        [],
        "etcd-ca",
        [SERVER, CLIENT],
        ["cp-1", "localhost", "peer.example.com"],
        RULE_B,
    ),
    "etcd-healthcheck-client": (
        "etcd/healthcheck-client",
        "kube-etcd-healthcheck-client",
        [],
        "etcd-ca",
        [CLIENT],
        [],
        [],
    ),
    "apiserver-etcd-client": ("apiserver-etcd-client", "kube-apiserver-etcd-client", [], "etcd-ca", [CLIENT], [], []),
}
CA_BASE = {"ca": "ca", "front-proxy-ca": "front-proxy-ca", "etcd-ca": "etcd/ca"}


def _cert(gen, base) -> x509.Certificate:
    return x509.load_pem_x509_certificate(gen.files[base + ".crt"])


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_cert_matches_reference_table(gen, name):
    base, cn, orgs, signer, eku, dns, ips = EXPECTED[name]
    cert = _cert(gen, base)
    is_ca = signer is None

    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [cn]
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == orgs
    assert len(cert.subject) == 1 + len(orgs)  # nothing else in the subject
    issuer = _cert(gen, CA_BASE[signer]) if signer else cert
    assert cert.issuer == issuer.subject

    if dns or ips:
        san = _ext(cert, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == dns  # sorted set
        assert san.get_values_for_type(x509.IPAddress) == ips  # order kept, duplicates dropped
    else:
        with pytest.raises(x509.ExtensionNotFound):
            _ext(cert, x509.SubjectAlternativeName)

    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.key_encipherment, ku.value.key_cert_sign) == (True, True, is_ca)
    assert not (
        ku.value.content_commitment or ku.value.data_encipherment or ku.value.key_agreement or ku.value.crl_sign
    )

    if eku:
        assert list(_ext(cert, x509.ExtendedKeyUsage).value) == eku
    else:
        with pytest.raises(x509.ExtensionNotFound):
            _ext(cert, x509.ExtendedKeyUsage)

    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is is_ca and bc.value.path_length is None


@pytest.mark.parametrize("name", list(EXPECTED))
def test_serial_validity_backdate_and_key(gen, name, now):
    base, *_, signer, _eku, _dns, _ips = EXPECTED[name]
    cert = _cert(gen, base)
    assert 1 <= cert.serial_number < 2**63 - 1
    assert cert.not_valid_before_utc == now - timedelta(minutes=5)
    validity = timedelta(days=1000) if signer is None else timedelta(days=100)  # make_cfg's values
    assert cert.not_valid_after_utc == now + validity

    key_pem = gen.files[base + ".key"]
    if gen.cfg.algorithm == "RSA-2048":
        assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
        assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    else:
        assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
        assert isinstance(cert.public_key().curve, ec.SECP256R1)


def test_serials_differ(gen):
    serials = {_cert(gen, e[0]).serial_number for e in EXPECTED.values()}
    assert len(serials) == len(EXPECTED)


@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if e[3]])
def test_openssl_verifies_leaf_against_its_ca(gen, name, tmp_path, write_tree, openssl_verify):
    write_tree(tmp_path, gen.files)
    base, signer = EXPECTED[name][0], EXPECTED[name][3]
    ok = openssl_verify(tmp_path / (CA_BASE[signer] + ".crt"), tmp_path / (base + ".crt"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # and not against another CA: the check can fail
    other = "front-proxy-ca" if signer != "front-proxy-ca" else "ca"
    bad = openssl_verify(tmp_path / (CA_BASE[other] + ".crt"), tmp_path / (base + ".crt"))
    assert bad.returncode != 0


def test_openssl_matches_key_and_cert(gen, tmp_path, write_tree):
    write_tree(tmp_path, gen.files)
    for base in [e[0] for e in EXPECTED.values()]:
        pub_of_cert = subprocess.run(
            ["openssl", "x509", "-noout", "-pubkey", "-in", tmp_path / f"{base}.crt"], capture_output=True, check=True
        ).stdout
        pub_of_key = subprocess.run(
            ["openssl", "pkey", "-pubout", "-in", tmp_path / f"{base}.key"], capture_output=True, check=True
        ).stdout
        assert pub_of_cert == pub_of_key, base


def test_sa_key_pair(gen):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(gen.files["sa.key"], None)
    assert gen.files["sa.pub"].startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert serialization.load_pem_public_key(gen.files["sa.pub"]).public_numbers() == key.public_key().public_numbers()
    wanted = rsa.RSAPrivateKey if gen.cfg.algorithm.startswith("RSA") else ec.EllipticCurvePrivateKey
    assert isinstance(key, wanted)  # sa follows encryptionAlgorithm (v1beta4)


def test_file_modes_and_order(gen):
    modes = {f.path: f.mode for f in gen.pki.files}
    expected = {}
    for base, *_ in EXPECTED.values():
        expected[base + ".key"] = 0o600
        expected[base + ".crt"] = 0o644
    # sa.pub too: kubeadm writes it with keyutil.WriteKey (0600), certs with certutil.WriteCert (0644)
    expected.update({"sa.key": 0o600, "sa.pub": 0o600})
    assert modes == expected
    paths = [f.path for f in gen.pki.files]
    assert paths[:4] == ["ca.key", "ca.crt", "apiserver.key", "apiserver.crt"]  # kubeadm's order
    assert paths[-2:] == ["sa.key", "sa.pub"]
    assert "PRIVATE KEY" not in repr(gen.pki)  # a plan can be printed without leaking keys


def test_invalid_extra_san_is_skipped_with_warning(gen):
    assert any("Not_Valid!" in w and "apiserver" in w for w in gen.pki.warnings)


def test_rule_a_with_ip_endpoint_and_ipv6(make_cfg):
    cfg = make_cfg(
        advertise_address="fd00::11",
        service_subnet="fd00:10::/108,10.100.0.0/16",
        control_plane_endpoint="[fd00::5]:6443",
        dns_domain="cluster.local",
        apiserver_cert_sans=["010.0.0.1", "fd00::11"],
    )
    dns, ips, warnings = alt_names(BY_NAME["apiserver"], cfg)
    assert ips == (ip("fd00:10::1"), ip("fd00::11"), ip("fd00::5"), ip("10.0.0.1"))
    assert "kubernetes.default.svc.cluster.local" in dns and warnings == []
    # a bare IP endpoint without port, and no endpoint at all
    assert alt_names(BY_NAME["apiserver"], make_cfg(control_plane_endpoint="10.0.0.5", apiserver_cert_sans=[]))[1][
        -1
    ] == ip("10.0.0.5")
    tmpl, _ = template(BY_NAME["apiserver"], make_cfg(control_plane_endpoint=None, apiserver_cert_sans=[]))
    assert tmpl.dns == (
        "cp-1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.corp.internal",
    )
    assert tmpl.ips == (ip("10.100.0.1"), ip("192.168.10.11"))


def test_defaults_service_vip_and_validity():
    from kubeinit.certs.catalogue import PKIConfig

    cfg = PKIConfig(node_name="n", advertise_address="10.0.0.2")
    assert (cfg.algorithm, cfg.validity, cfg.ca_validity) == ("RSA-2048", timedelta(days=365), timedelta(days=3650))
    assert template(BY_NAME["apiserver"], cfg)[0].ips[0] == ip("10.96.0.1")


@pytest.mark.parametrize(
    "bad",
    [
        dict(advertise_address="node-a"),
        dict(service_subnet="nope"),
        dict(control_plane_endpoint="api:99999"),
        dict(algorithm="DSA-1024"),
        dict(control_plane_endpoint="Bad_Host"),
    ],
)
def test_bad_config_is_user_error(make_cfg, bad):
    from kubeinit.errors import UserError

    with pytest.raises(UserError):
        make_cfg(**bad)


def test_external_etcd_drops_etcd_certs(make_cfg, now):
    cfg = make_cfg(algorithm="ECDSA-P256", external_etcd=True)
    paths = {f.path for f in plan_pki(cfg, {}, now=now).files}
    assert not any(p.startswith("etcd/") or p.startswith("apiserver-etcd-client") for p in paths)
    assert {"ca.crt", "apiserver.crt", "front-proxy-client.crt", "sa.key"} <= paths


def test_only_selects_in_kubeadm_order(make_cfg, now):
    cfg = make_cfg(algorithm="ECDSA-P256")
    plan = plan_pki(cfg, {}, only=["etcd-server", "etcd-ca", "front-proxy-ca"], now=now)
    assert [f.path for f in plan.files] == [
        "front-proxy-ca.key",
        "front-proxy-ca.crt",
        "etcd/ca.key",
        "etcd/ca.crt",
        "etcd/server.key",
        "etcd/server.crt",
    ]
