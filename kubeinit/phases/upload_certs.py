"""init's upload-certs, as kubeadm's (phases/copycerts): only with `--upload-certs`, the shared
CAs and keys (kubeadm's list, cp_prepare.SHARED) go into the Secret kube-system/kubeadm-certs, each
encrypted under the certificate key (certs/sealed.py), so that `join --control-plane
--certificate-key` can fetch them. The Secret is owned by a bootstrap token that lives 2 h (no usage:
it only carries the TTL), so the garbage collector deletes both then; the Role and RoleBinding
kubeadm:kubeadm-certs let bootstrap tokens get it. The key is handed over once, at the end: as the
control-plane join line's --certificate-key when show-join-command runs, alone otherwise.
Without `--upload-certs` the phase only says it skipped, as kubeadm does. As kubeadm's, every run
uploads afresh (with a fresh key unless --certificate-key is given).
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from kubeinit.certs import sealed, tokens
from kubeinit.context import Context, Target
from kubeinit.errors import KubeinitError, UserError
from kubeinit.facts import Fact, files
from kubeinit.kube import bootstraptoken as bt
from kubeinit.kube import objects
from kubeinit.phases import PhaseImpl, cluster_api
from kubeinit.phases.cp_prepare import SHARED
from kubeinit.phases.join import CERT_KEY, CERT_KEY_LINES, HAND_OVER
from kubeinit.redact import Secret, reveal
from kubeinit.steps import ApiCall, Skip, Step

REQUEST = "upload-certs"  # ctx.shared: the Request of `init --upload-certs`
SECRET = "kubeadm-certs"
TTL = timedelta(hours=2)  # kubeadm's DefaultCertTokenDuration
DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
_EXTERNAL_CA_KEYS = ("ca.key", "front-proxy-ca.key")


@dataclass(frozen=True)
class Request:
    """`--upload-certs`, with the `--certificate-key` given (None: a fresh one is made)."""

    key: Secret | None = None


def request(upload: bool, certificate_key: str | None) -> Request | None:
    """What init's flags ask of this phase (None: skip it); a malformed key is refused up front."""
    key = sealed.key_of(certificate_key) if certificate_key else None
    return Request(key) if upload else None


def data_key(rel: str) -> str:
    """The Secret's key for a file under the cert dir ("etcd/ca.crt" -> "etcd-ca.crt")."""
    return rel.replace("/", "-")


def _paths(ctx: Context) -> dict[str, str]:
    return {rel: posixpath.join(ctx.cert_dir, rel) for rel in SHARED}


def sealed_data(have: dict[str, bytes | None], key_hex: str) -> dict[str, str]:
    """The Secret's data: each file encrypted, base64 as the API carries bytes; a missing one empty."""
    return {
        data_key(rel): base64.b64encode(sealed.encrypt(data, key_hex) if data is not None else b"").decode()
        for rel, data in have.items()
    }


def plan(ctx: Context, target: Target) -> Iterator[Step]:
    req: Request | None = ctx.shared.get(REQUEST)
    if req is None:
        yield Skip("Skipping phase. Please see --upload-certs")
        return
    paths = _paths(ctx)
    read = target.facts.read_many(paths.values())
    have = {rel: read[path] for rel, path in paths.items()}
    if have["ca.crt"] is None:
        raise KubeinitError(f"this host has no {paths['ca.crt']} to upload: run the certs phase first")
    if any(have[k] is None for k in _EXTERNAL_CA_KEYS):
        raise UserError(
            "--upload-certs cannot be used with an external CA or an external front-proxy CA (no "
            f"{' or '.join(paths[k] for k in _EXTERNAL_CA_KEYS if have[k] is None)} here): copy the shared "
            "certificates to the joining control planes yourself, or run init without --upload-certs"
        )
    yield from cluster_api.ensure(
        ctx,
        target,
        cluster_api.reader("kube-system", "kubeadm:kubeadm-certs", "secrets", SECRET, [cluster_api.BOOTSTRAPPERS]),
    )
    from kubeinit.certs.pin import certificate_key

    key = req.key or Secret(certificate_key())
    key_hex = str(reveal(key))
    token = tokens.generate_token()
    owner = bt.secret_manifest(token, ttl=TTL, usages=(), groups=(), description=DESCRIPTION)
    yield ApiCall(
        "apply",
        objects.collection(owner),
        owner,
        note=f"bootstrap token {tokens.parse_token(token)[0]} (2 h, no usage): the kubeadm-certs Secret's owner",
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": "kube-system"},
        "data": sealed_data(have, key_hex),
    }
    yield ApiCall(
        objects.OWNED,
        objects.collection(secret),
        secret,
        via=objects.item(owner),
        note="the shared CAs and keys, AES-256-GCM under the certificate key; deleted with its token in 2 h",
    )
    _hand_over_key(ctx, key, key_hex, given=req.key is not None)


def _hand_over_key(ctx: Context, key: Secret, key_hex: str, given: bool) -> None:
    """The key goes to show-join-command's control-plane line; these lines stand in for it when that
    phase does not run (it takes them out)."""
    ctx.shared[CERT_KEY] = key
    lines = (
        ["The certificates are stored under the --certificate-key given (for 2 h)."]
        if given
        else [
            "The certificates are stored for 2 h; to join control planes with them, add to the join line:",
            f"  --certificate-key {key_hex}",
            "Keep it secret: it decrypts the cluster's CA keys.",
        ]
    )
    ctx.shared[CERT_KEY_LINES] = lines
    ctx.shared.setdefault(HAND_OVER, []).extend(lines)


def _facts(ctx: Context, target: Target) -> list[Fact]:
    return files(_paths(ctx).values())


UPLOAD_CERTS = PhaseImpl(plan, _facts)
