"""Detached JWS of the cluster-info kubeconfig (k8s.io/cluster-bootstrap/token/jws).

    sign_detached(content, token_id, token_secret) -> "<b64 header>..<b64 signature>"
    verify_detached(detached, content, token_id, token_secret) -> bool

HS256 keyed with the token secret; the payload is left out (RFC 7515 appendix F).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bytes(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def sign_detached(content: str | bytes, token_id: str, token_secret: str | bytes) -> str:
    # the exact header bytes go-jose produces: alg then kid, no spaces
    header = _b64(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{_b64(_bytes(content))}".encode()
    sig = hmac.new(_bytes(token_secret), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64(sig)}"


def verify_detached(detached: str, content: str | bytes, token_id: str, token_secret: str | bytes) -> bool:
    expected = sign_detached(content, token_id, token_secret)
    return hmac.compare_digest(expected.encode(), _bytes(detached))
