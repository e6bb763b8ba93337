"""init's upload-certs, as kubeadm's (phases/copycerts): only with `--upload-certs`, the shared
CAs and keys go into the Secret kube-system/kubeadm-certs, each encrypted under the certificate
key, so that `join --control-plane --certificate-key` can fetch them. Without the flag the phase
only says it skipped, as kubeadm does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from kubeinit.context import Context, Target
from kubeinit.errors import NotAvailableYet, UserError
from kubeinit.phases import PhaseImpl
from kubeinit.redact import Secret
from kubeinit.steps import Skip, Step

REQUEST = "upload-certs"  # ctx.shared: the Request of `init --upload-certs`
_KEY = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Request:
    """`--upload-certs`, with the `--certificate-key` given (None: a fresh one is made)."""

    key: Secret | None = None


def request(upload: bool, certificate_key: str | None) -> Request | None:
    """What init's flags ask of this phase (None: skip it); a malformed key is refused up front."""
    key = Secret(certificate_key.strip().lower()) if certificate_key else None
    if key is not None and not _KEY.fullmatch(str(key.value)):
        raise UserError("--certificate-key must be 64 hex characters (32 bytes; `kubeinit certs certificate-key`)")
    return Request(key) if upload else None


def plan(ctx: Context, target: Target) -> Iterator[Step]:
    req: Request | None = ctx.shared.get(REQUEST)
    if req is None:
        yield Skip("Skipping phase. Please see --upload-certs")
        return
    raise NotAvailableYet("init phase upload-certs --upload-certs (the kubeadm-certs Secret)")


UPLOAD_CERTS = PhaseImpl(plan)
