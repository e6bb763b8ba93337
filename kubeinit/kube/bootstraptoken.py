"""Bootstrap tokens in a cluster: kubeadm's Secret (reference §4.2) and the record read back from it.

    secret_manifest(token, ttl, usages, groups, description, now) -> dict
                                     kube-system/bootstrap-token-<id>
    secret_name(token_id) / token_id_of(id_or_token) -> str
    parse_duration("24h0m0s") -> timedelta      Go's time.ParseDuration, as kubeadm's --ttl
    TokenRecord.from_secret(obj) -> TokenRecord  NotAToken if the Secret holds no well-formed token

A record never keeps the token secret: nothing that lists tokens can print one by mistake.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from kubeinit import redact
from kubeinit.certs import tokens
from kubeinit.durations import short_duration
from kubeinit.errors import UserError

NAMESPACE = "kube-system"
NAME_PREFIX = "bootstrap-token-"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
FIELD_SELECTOR = f"type={SECRET_TYPE}"
MASKED = "<redacted>"


def secret_name(token_id: str) -> str:
    return NAME_PREFIX + token_id


def token_id_of(text: str) -> str:
    """kubeadm token delete takes an ID or a whole token; only the ID is needed."""
    if tokens.is_valid_token_id(text):
        return text
    if tokens.is_valid_token(text):
        return tokens.parse_token(text)[0]  # registers the secret half with redact
    raise UserError(
        f"{_shown(text)!r} is neither a token ID ([a-z0-9]{{6}}) nor a token "
        r"([a-z0-9]{6}\.[a-z0-9]{16})"
    )


def _shown(text: str) -> str:
    # a near-miss token is still mostly secret: show no more than an ID's worth of it
    return text if len(text) <= 8 else text[:6] + "…"


def secret_manifest(
    token,
    ttl: timedelta | None = tokens.DEFAULT_TTL,
    usages: Sequence[str] = tokens.USAGES,
    groups: Sequence[str] = tokens.DEFAULT_GROUPS,
    description: str | None = None,
    now: datetime | None = None,
) -> dict:
    """kube-system/bootstrap-token-<id>; ttl None or 0 means the token never expires. Usages
    (signing, authentication) and groups (§1.4's regex) are checked first."""
    token_id, secret = tokens.parse_token(token)
    bad = [u for u in usages if u not in tokens.USAGES]
    if bad:
        raise UserError(f"unknown bootstrap token usage {bad[0]!r}: must be one of {', '.join(tokens.USAGES)}")
    tokens.validate_groups(groups, usages)
    if ttl is not None and ttl < timedelta(0):
        raise UserError("the bootstrap token TTL must not be negative")
    data = {"token-id": token_id, "token-secret": secret}
    if description:
        data["description"] = description
    if ttl:
        expires = (now or datetime.now(UTC)) + ttl
        data["expiration"] = expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for u in usages:
        data[f"usage-bootstrap-{u}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    redact.register(encoded["token-secret"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(token_id), "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "data": encoded,
    }


# --- durations --------------------------------------------------------------------------

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, flag: str = "--ttl") -> timedelta:
    """Go's time.ParseDuration ("24h0m0s", "1h30m", "90s", "0"); negative durations are refused."""
    bad = UserError(f"{flag} {text!r} is not a duration such as 24h0m0s, 1h30m or 0 (never expires)")
    s = text.strip()
    sign = s[:1] if s[:1] in ("+", "-") else ""
    s = s[len(sign) :]
    if s == "0":
        return timedelta(0)
    if not s:
        raise bad
    total, pos = Decimal(0), 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise bad
        try:
            total += Decimal(m.group(1)) * _UNITS_NS[m.group(2)]
        except InvalidOperation:
            raise bad from None
        pos = m.end()
    if sign == "-":
        raise UserError(f"{flag} {text!r} must not be negative")
    try:
        return timedelta(microseconds=int(total / 1000))
    except OverflowError:
        raise bad from None


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_rfc3339(text: str) -> datetime | None:
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


# --- reading a Secret back ---------------------------------------------------------------


class NotAToken(ValueError):
    """A Secret of the bootstrap-token type that holds no well-formed token."""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    description: str = ""
    expires: datetime | None = None
    expiration_text: str = ""  # as stored, for an expiration that cannot be parsed
    usages: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def masked(self) -> str:
        return f"{self.id}.{MASKED}"

    @property
    def unparseable(self) -> bool:
        return bool(self.expiration_text) and self.expires is None

    def valid(self, now: datetime | None = None) -> bool:
        """§4.2: an expired or unparseable expiration makes the token invalid."""
        if self.unparseable:
            return False
        return self.expires is None or self.expires > (now or datetime.now(UTC))

    def ttl(self, now: datetime | None = None) -> str:
        if self.unparseable:
            return "<invalid>"
        if self.expires is None:
            return "<forever>"
        return short_duration(self.expires - (now or datetime.now(UTC)))

    def expires_text(self) -> str:
        if self.unparseable:
            return "<invalid>"
        return self.expires.strftime("%Y-%m-%dT%H:%M:%SZ") if self.expires else "<never>"

    @classmethod
    def from_secret(cls, obj: dict) -> TokenRecord:
        name = (obj.get("metadata") or {}).get("name", "")
        data = {}
        for k, v in (obj.get("data") or {}).items():
            try:
                data[k] = base64.b64decode(v, validate=True).decode()
            except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
                raise NotAToken(f"Secret {name}: data[{k}] is not base64 text") from None
        token_id, secret = data.get("token-id", ""), data.get("token-secret", "")
        redact.register(secret)  # never printed, but should it slip into a message it is masked
        if not tokens.is_valid_token(f"{token_id}.{secret}"):
            raise NotAToken(f"Secret {name} does not hold a well-formed token-id and token-secret")
        if name != secret_name(token_id):
            raise NotAToken(f"Secret {name} holds token-id {token_id!r}; its name should be {secret_name(token_id)}")
        exp = data.get("expiration", "")
        return cls(
            id=token_id,
            description=data.get("description", ""),
            expires=parse_rfc3339(exp) if exp else None,
            expiration_text=exp,
            usages=tuple(
                sorted(
                    k.removeprefix("usage-bootstrap-")
                    for k, v in data.items()
                    if k.startswith("usage-bootstrap-") and v == "true"
                )
            ),
            groups=tuple(g.strip() for g in data.get("auth-extra-groups", "").split(",") if g.strip()),
        )
