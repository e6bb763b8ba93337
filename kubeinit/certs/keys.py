"""Private keys, as kubeadm makes and stores them.

    ALGORITHMS                      the accepted `encryptionAlgorithm` values
    normalize_algorithm(a) -> str   "" / None -> "RSA-2048"; unknown -> UserError
    generate_private_key(a="RSA-2048") -> key
    private_key_to_pem(key) -> bytes   PKCS#1 "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY"
    public_key_to_pem(key) -> bytes    PKIX "PUBLIC KEY"
    load_private_key(pem, what="key", signing=True) -> key   RSA or ECDSA only, else UserError
    same_public_key(a, b) -> bool

Every private key PEM produced or loaded here is registered with kubeinit.redact.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeinit import redact
from kubeinit.errors import UserError

DEFAULT_ALGORITHM = "RSA-2048"
_RSA_BITS = {"RSA-2048": 2048, "RSA-3072": 3072, "RSA-4096": 4096}
_CURVES = {"ECDSA-P256": ec.SECP256R1, "ECDSA-P384": ec.SECP384R1}
ALGORITHMS = (*_RSA_BITS, *_CURVES)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def normalize_algorithm(algorithm: str | None) -> str:
    # kubeadm treats an empty encryptionAlgorithm as RSA-2048
    if not algorithm:
        return DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise UserError(f"unknown key algorithm {algorithm!r}: must be one of {', '.join(ALGORITHMS)}")
    return algorithm


def generate_private_key(algorithm: str | None = DEFAULT_ALGORITHM) -> PrivateKey:
    algorithm = normalize_algorithm(algorithm)
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[algorithm])


def private_key_to_pem(key: PrivateKey) -> bytes:
    # TraditionalOpenSSL is PKCS#1 for RSA and SEC1 for EC, like client-go's keyutil
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    redact.register(pem)
    return pem


def public_key_to_pem(key) -> bytes:
    if hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes, what: str = "key", signing: bool = True) -> PrivateKey:
    """Parse a PEM private key (PKCS#1, SEC1 or PKCS#8); `what` names it in errors.

    signing=False skips OpenSSL's RSA consistency check (~50 ms a key): fine for a key that is
    only compared with a certificate, never for one that will sign.
    """
    redact.register(pem)
    # Each certs/<name> phase loads the CA keys again: parse (and check) each key once a process.
    digest = hashlib.sha256(pem).digest()
    known = _loaded.get((digest, True)) or (None if signing else _loaded.get((digest, False)))
    if known is not None:
        return known
    try:
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=not signing)
    except (ValueError, TypeError) as e:
        raise UserError(f"{what}: not a readable unencrypted PEM private key ({e})") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise UserError(f"{what}: the private key is neither RSA nor ECDSA")
    _loaded[(digest, signing)] = key
    return key


_loaded: dict[tuple[bytes, bool], PrivateKey] = {}  # (sha256 of the PEM, checked) -> key


def same_public_key(a, b) -> bool:
    """True when two keys (private or public) share the same public key."""
    return public_key_to_pem(a) == public_key_to_pem(b)
