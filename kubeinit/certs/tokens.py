"""Bootstrap tokens, as k8s.io/cluster-bootstrap and kubeadm define them.

    generate_token() -> str                    "<6>.<16>" from [a-z0-9], secrets module
    parse_token(text) -> (token_id, secret)     UserError if malformed (never echoes the secret)
    is_valid_token(text) / is_valid_token_id(text) / is_valid_group(name) -> bool
    validate_groups(groups, usages)             UserError naming the bad group
    bootstrap_token_secret(token, ttl=24h, usages=(signing, authentication),
                           groups=(system:bootstrappers:kubeadm:default-node-token,),
                           description=None, now=None) -> dict   the kube-system Secret manifest

Tokens and their secret halves are registered with kubeinit.redact.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Sequence

from kubeinit import redact
from kubeinit.errors import UserError

# \Z is Go's \z: a trailing newline must not pass
TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
TOKEN_ID_RE = re.compile(r"\A([a-z0-9]{6})\Z")
GROUP_RE = re.compile(r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\Z")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

USAGES = ("signing", "authentication")
DEFAULT_TTL = timedelta(hours=24)
DEFAULT_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
SECRET_TYPE = "bootstrap.kubernetes.io/token"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def generate_token() -> str:
    secret = _random(16)
    token = f"{_random(6)}.{secret}"
    redact.register(secret)
    redact.register(token)
    return token


def is_valid_token(text: str) -> bool:
    return bool(TOKEN_RE.match(text))


def is_valid_token_id(text: str) -> bool:
    return bool(TOKEN_ID_RE.match(text))


def parse_token(text) -> tuple[str, str]:
    text = redact.reveal(text)
    m = TOKEN_RE.match(text)
    if not m:
        raise UserError(r"the bootstrap token must match [a-z0-9]{6}\.[a-z0-9]{16}")
    redact.register(m.group(2))
    return m.group(1), m.group(2)


def is_valid_group(name: str) -> bool:
    return bool(GROUP_RE.match(name))


def validate_groups(groups: Sequence[str], usages: Sequence[str] = USAGES) -> None:
    for g in groups:
        if not is_valid_group(g):
            raise UserError(f"bootstrap token group {g!r} must match {GROUP_RE.pattern[2:-2]}")
    if groups and "authentication" not in usages:
        raise UserError("bootstrap token groups need the authentication usage")


def bootstrap_token_secret(token, ttl: timedelta | None = DEFAULT_TTL, usages: Sequence[str] = USAGES,
                           groups: Sequence[str] = DEFAULT_GROUPS, description: str | None = None,
                           now: datetime | None = None) -> dict:
    """kube-system/bootstrap-token-<id>; ttl None or 0 means the token never expires."""
    token_id, secret = parse_token(token)
    bad = [u for u in usages if u not in USAGES]
    if bad:
        raise UserError(f"unknown bootstrap token usage {bad[0]!r}: must be one of {', '.join(USAGES)}")
    validate_groups(groups, usages)
    if ttl is not None and ttl < timedelta(0):
        raise UserError("the bootstrap token TTL must not be negative")
    data = {"token-id": token_id, "token-secret": secret}
    if description:
        data["description"] = description
    if ttl:
        expires = (now or datetime.now(timezone.utc)) + ttl
        data["expiration"] = expires.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for u in usages:
        data[f"usage-bootstrap-{u}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    redact.register(encoded["token-secret"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": SECRET_TYPE,
        "data": encoded,
    }
