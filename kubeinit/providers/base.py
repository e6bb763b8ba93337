"""What every provider shares: the Provider base, cloud faults, lazy SDK imports.

A provider's workflow (create/delete/scale/kubeconfig/list) only talks to the
clouds through `ctx.api(service)`; the context decides whether a call is sent
(LiveCtx) or printed (DryRunCtx). So the workflow has no dry-run branch.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubeinit.errors import KubeinitError, UserError

TAG = "kubeinit.dev/cluster"

_PHRASE = {
    "quota": "quota exceeded",
    "permission": "permission denied",
    "auth": "no valid credentials",
    "exists": "the name is already taken",
    "conflict": "conflict with existing resources",
    "invalid": "rejected as invalid",
    "not_found": "not found",
    "unavailable": "the API could not be reached",
    "internal": "the cloud answered with an internal error",
    "failed": "failed",
}
_USER_KINDS = {"exists", "invalid", "not_found", "auth"}  # fixable by changing the input or credentials: exit 2
_AUTH_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "AuthFailure",
    "UNAUTHENTICATED",
    "InvalidAuthenticationToken",
    "ExpiredAuthenticationToken",
    "AuthenticationFailed",
}
_INTERNAL_CODES = {"InternalFailure", "InternalError", "InternalServerError", "ServerException", "INTERNAL"}


def verbose() -> bool:
    """`kubeinit -v` (read from the CLI's state, if the CLI is what runs) or KUBEINIT_DEBUG."""
    cli = sys.modules.get("kubeinit.cli")
    return bool(getattr(cli, "_state", {}).get("verbose")) or bool(os.environ.get("KUBEINIT_DEBUG"))


@dataclass(frozen=True)
class Fault:
    """A cloud error in kubeinit's terms: kind (key of _PHRASE), the cloud's code, its message."""

    kind: str
    code: str = ""
    message: str = ""
    detail: str = ""  # request id, HTTP status, error type: shown with -v


class CloudError(KubeinitError):
    """One sentence: what kubeinit was doing, and the cloud's cause."""

    def __init__(self, label: str, fault: Fault):
        self.label, self.fault = label, fault
        self.exit_code = 2 if fault.kind in _USER_KINDS else 1
        detail = " ".join(f"{fault.code}: {fault.message}".strip(": ").split())
        if len(detail) > 400:
            detail = detail[:400] + "…"
        extra = f" [{fault.detail}]" if fault.detail and verbose() else ""
        super().__init__(
            f"{label} failed: {_PHRASE.get(fault.kind, fault.kind)}" + (f" ({detail})" if detail else "") + extra
        )


def unless_missing(call: Callable[[], Any]) -> Any:
    """call()'s result, or None when the cloud says NotFound: a look-up that may rightly find nothing."""
    try:
        return call()
    except CloudError as err:
        if err.fault.kind == "not_found":
            return None
        raise


def require(module: str, provider: Provider) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"the {provider.title} provider needs {provider.packages}: pip install 'kubeinit[{provider.extra}]'"
        ) from None


def kind_from_code(code: str, message: str = "", status: int | None = None) -> str:
    """Classify an error by its code/HTTP status; shared by the three providers."""
    low = f"{code} {message}".lower()
    if "quota" in low or re.search(r"limitexceeded|insufficient.*capacity", code.lower()):
        return "quota"
    if status == 401 or code in _AUTH_CODES:
        return "auth"
    if status == 403 or re.search(r"accessdenied|unauthorized|authorizationfailed|forbidden", code.lower()):
        return "permission"
    if status == 404 or code.endswith("NotFound") or code in ("NoSuchEntity", "ResourceNotFoundException"):
        return "not_found"
    if code in ("EntityAlreadyExists", "AlreadyExists", "ALREADY_EXISTS") or status == 409:
        return "exists" if "exist" in low else "conflict"
    if code in ("ResourceInUseException", "DependencyViolation"):
        return "exists" if "already exists" in low else "conflict"
    if status == 400 or code.startswith("Invalid") or code.startswith("Validation") or "Unsupported" in code:
        return "invalid"
    if status == 500 or code in _INTERNAL_CODES:
        return "internal"
    if status is not None and status >= 500:
        return "unavailable"
    return "failed"


class Provider:
    """Base for eks/gke/aks. Subclasses implement the workflow methods below."""

    name = title = extra = packages = ""
    poll_interval = 10.0
    services: tuple[str, ...] = ()

    def resolve(self, spec, action: str = "create"):
        """Fill what the environment supplies (region, project…) for an action (create, delete,
        scale, kubeconfig, list); raise UserError if something it needs is missing."""
        return spec

    def client(self, service: str, ctx) -> Any:
        raise NotImplementedError

    def classify(self, exc: BaseException) -> Fault | None:
        """Turn an SDK exception into a Fault, or None for a bug (re-raised as is)."""
        return None

    def create(self, ctx) -> None:
        raise NotImplementedError

    def kubeconfig(self, ctx) -> dict | bytes:
        raise NotImplementedError

    def discover(self, ctx) -> list[dict]:
        """Without a record: what `delete cluster` removes (the cluster and its pools)."""
        return [{"kind": "cluster", "name": ctx.spec.name, "id": ctx.spec.name, "data": {}}]

    def scale(self, ctx, pool: str, nodes: int, min_: int | None, max_: int | None) -> None:
        raise NotImplementedError

    def list(self, ctx) -> list[dict]:
        raise NotImplementedError

    def describe(self, entry: dict) -> str:
        return f"{entry['kind'].replace('_', ' ')} {entry['id']}"

    def find(self, ctx, entry: dict) -> Any:
        """Look up what an interrupted create call may have made (entry is its recorded intent):
        its id, (id, data), or None. Per kind: find_<kind>(ctx, entry)."""
        finder = getattr(self, f"find_{entry['kind']}", None)
        if finder is None:  # never guess "not made": that would orphan what the cloud did make
            raise KubeinitError(
                f"{entry['kind'].replace('_', ' ')} {entry['name']}: its create call was interrupted and "
                f"kubeinit cannot look it up on {self.title}; check the cloud, then remove its pending "
                "entry from the record"
            )
        return finder(ctx, entry)

    def delete(self, ctx, entries: Sequence[dict]) -> None:
        """Remove entries newest first; each is forgotten from the record once gone. An intent
        (pending: its create call was interrupted) is looked up first: deleted if found, else dropped."""
        for entry in reversed(list(entries)):
            if entry.get("pending"):
                what = f"{entry['kind'].replace('_', ' ')} {entry['name']}"
                with ctx.step(f"looking up {what}"):
                    found = ctx.lookup(entry, what)
                if found is None:
                    ctx.note(f"{what}: not made (its create call was interrupted before the cloud made it)")
                    ctx.record.remove(entry)
                    continue
                rid, data = found if isinstance(found, tuple) else (found, {})
                ctx.record.settle(entry, rid, **data)
            what = self.describe(entry)
            with ctx.step(f"deleting {what}", missing_ok=True):
                getattr(self, f"delete_{entry['kind']}")(ctx, entry)
                ctx.deleted(what)
            ctx.record.remove(entry)
