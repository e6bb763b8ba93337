"""Key algorithms and PEM forms (reference §2, key algorithm and key files)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kubeinit.certs import keys
from kubeinit.errors import UserError


@pytest.mark.parametrize(
    "algorithm,kind,size",
    [("ECDSA-P256", "EC", 256), ("ECDSA-P384", "EC", 384), ("RSA-3072", "RSA", 3072), ("", "RSA", 2048)],
)
def test_algorithms_and_pem_types(algorithm, kind, size):
    key = keys.generate_private_key(algorithm)
    assert key.key_size == size
    pem = keys.private_key_to_pem(key)
    assert pem.startswith(f"-----BEGIN {kind} PRIVATE KEY-----\n".encode())
    assert keys.public_key_to_pem(key).startswith(b"-----BEGIN PUBLIC KEY-----\n")
    again = keys.load_private_key(pem)
    assert keys.same_public_key(again, key)
    assert isinstance(again, rsa.RSAPrivateKey if kind == "RSA" else ec.EllipticCurvePrivateKey)


def test_unknown_algorithm_lists_allowed_values():
    with pytest.raises(UserError) as e:
        keys.generate_private_key("RSA-1024")
    assert str(e.value) == (
        "unknown key algorithm 'RSA-1024': must be one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384"
    )


def test_load_rejects_other_keys_and_garbage():
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(UserError, match="sa.key: the private key is neither RSA nor ECDSA"):
        keys.load_private_key(ed, "sa.key")
    with pytest.raises(UserError, match="ca.key: not a readable"):
        keys.load_private_key(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "ca.key")


def test_p384_certs_use_sha384(make_cfg, now):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from kubeinit.certs.pki import plan_pki

    plan = plan_pki(make_cfg(algorithm="ECDSA-P384"), {}, only=["front-proxy-ca", "front-proxy-client"], now=now)
    cert = x509.load_pem_x509_certificate(plan.writes()["front-proxy-client.crt"][0])
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    assert cert.public_key().curve.name == "secp384r1"
