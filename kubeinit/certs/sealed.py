"""The kubeadm-certs Secret's encryption, as kubeadm's cryptoutil (util/crypto/crypto.go): AES-256-GCM
under the certificate key, a random 12-byte nonce stored in front (Go's gcm.Seal(nonce, nonce, data, nil)).

    encrypt(data, key_hex) -> bytes     nonce || ciphertext || tag
    decrypt(blob, key_hex) -> bytes     WrongKey when the key (or the blob) does not fit
    key_of(text) -> Secret              --certificate-key checked: 64 hex characters
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubeinit.errors import KubeinitError, UserError
from kubeinit.redact import Secret

NONCE_SIZE = 12  # Go's gcm.NonceSize()
_KEY = re.compile(r"[0-9a-fA-F]{64}")


class WrongKey(KubeinitError):
    """The certificate key does not open the Secret's data."""


def _aead(key_hex: str) -> AESGCM:
    return AESGCM(bytes.fromhex(key_hex))


def encrypt(data: bytes, key_hex: str) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _aead(key_hex).encrypt(nonce, data, None)


def decrypt(blob: bytes, key_hex: str) -> bytes:
    if len(blob) < NONCE_SIZE:
        raise WrongKey("an entry of the kubeadm-certs Secret is shorter than its nonce")
    try:
        return _aead(key_hex).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], None)
    except InvalidTag:
        raise WrongKey(
            "the certificate key does not decrypt the kubeadm-certs Secret: use the --certificate-key "
            "printed with it, or upload them again (`kubeinit init phase upload-certs --upload-certs`)"
        ) from None


def key_of(text: str) -> Secret:
    """--certificate-key, checked: 32 bytes in hex (AES-256)."""
    key = Secret(text.strip().lower())
    if not _KEY.fullmatch(str(key.value)):
        raise UserError("--certificate-key must be 64 hex characters (32 bytes; `kubeinit certs certificate-key`)")
    return key
