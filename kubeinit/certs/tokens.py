"""Bootstrap tokens, as k8s.io/cluster-bootstrap and kubeadm define them.

    generate_token() -> str                    "<6>.<16>" from [a-z0-9], secrets module
    parse_token(text) -> (token_id, secret)     UserError if malformed (never echoes the secret)
    is_valid_token(text) / is_valid_token_id(text) / is_valid_group(name) -> bool
    validate_groups(groups, usages)             UserError naming the bad group
    USAGES / DEFAULT_GROUPS / DEFAULT_TTL       kubeadm's defaults (the Secret: kubeinit.kube.bootstraptoken)

Tokens and their secret halves are registered with kubeinit.redact.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import timedelta

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
