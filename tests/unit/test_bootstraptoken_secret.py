"""The bootstrap token Secret (reference §4.2)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kubeinit.errors import UserError
from kubeinit.kube.bootstraptoken import secret_manifest
from kubeinit.redact import mask

TOKEN = "abcdef.0123456789abcdef"
NOW = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _decoded(secret: dict) -> dict:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_defaults_exactly():
    s = secret_manifest(TOKEN, now=NOW)
    assert {k: v for k, v in s.items() if k != "data"} == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
    }
    assert _decoded(s) == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "expiration": "2024-01-03T03:04:05Z",  # RFC3339 UTC, whole seconds, now + 24h
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }


def test_options():
    s = secret_manifest(
        TOKEN,
        ttl=timedelta(0),
        usages=["authentication"],
        groups=["system:bootstrappers:a", "system:bootstrappers:b"],
        description="proxy for kubeadm-certs",
        now=NOW,
    )
    assert _decoded(s) == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "description": "proxy for kubeadm-certs",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:a,system:bootstrappers:b",
    }
    local = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert (
        _decoded(secret_manifest(TOKEN, ttl=timedelta(hours=2), groups=[], now=local))["expiration"]
        == "2024-01-02T05:04:05Z"
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(usages=["signing", "bogus"]), "unknown bootstrap token usage 'bogus'"),
        (dict(usages=["signing"]), "need the authentication usage"),
        (dict(groups=["system:nodes"]), "group 'system:nodes' must match"),
        (dict(ttl=timedelta(seconds=-1)), "must not be negative"),
    ],
)
def test_rejects(kwargs, match):
    with pytest.raises(UserError, match=match):
        secret_manifest(TOKEN, now=NOW, **kwargs)


def test_secret_is_masked():
    s = secret_manifest(TOKEN, now=NOW)
    assert "0123456789abcdef" not in mask(f"token {TOKEN}")
    assert s["data"]["token-secret"] not in mask(str(s))
