"""CA public-key pins for `--discovery-token-ca-cert-hash` (kubeadm util/pubkeypin), and the
upload-certs certificate key.

    ca_pin(cert_pem) -> "sha256:<hex>"      SHA-256 of the first certificate's DER SubjectPublicKeyInfo
    parse_pin(pin) -> str                   normalised "sha256:<lower hex>", UserError if malformed
    verify_pin(pins, ca_pem) -> bool        any certificate in ca_pem matches any pin
    certificate_key() -> str                32 random bytes as 64 hex characters
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization

from kubeinit import redact
from kubeinit.certs import certutil as cu
from kubeinit.errors import UserError

_PIN_RE = re.compile(r"sha256:([0-9a-fA-F]{64})")


def _spki_sha256(cert) -> str:
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def ca_pin(cert_pem: bytes) -> str:
    return "sha256:" + _spki_sha256(cu.load_cert(cert_pem, "CA certificate"))


def parse_pin(pin: str) -> str:
    m = _PIN_RE.fullmatch(pin.strip())
    if not m:
        raise UserError(f"CA cert hash {pin!r} must be sha256:<64 hex characters>")
    return "sha256:" + m.group(1).lower()


def verify_pin(pins: str | Iterable[str], ca_pem: bytes) -> bool:
    wanted = {parse_pin(p) for p in ([pins] if isinstance(pins, str) else pins)}
    return any("sha256:" + _spki_sha256(c) in wanted for c in cu.load_certs(ca_pem, "CA certificate"))


def certificate_key() -> str:
    key = secrets.token_hex(32)
    redact.register(key)
    return key
