"""What kubeinit created in a cloud, kept in `$KUBEINIT_HOME/managed/<provider>-<name>.json`.

Written after every resource so that an interrupted or failed create can be
resumed (existing entries are reused) or removed exactly (`delete cluster`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from kubeinit.errors import KubeinitError
from kubeinit.managed.spec import ManagedSpec


def home() -> Path:
    return Path(os.environ.get("KUBEINIT_HOME") or Path.home() / ".kubeinit")


def record_path(provider: str, name: str) -> Path:
    return home() / "managed" / f"{provider}-{name}.json"


class Record:
    """Ordered list of created resources: {kind, name, id, data}."""

    def __init__(
        self,
        path: Path,
        spec: ManagedSpec,
        resources: list[dict[str, Any]] | None = None,
        status: str = "creating",
        extra: dict[str, Any] | None = None,
        persist: bool = True,
    ):
        self.path, self.spec, self.status = path, spec, status
        self.resources = resources or []
        self.extra = extra or {}  # e.g. where the kubeconfig was written
        self.persist = persist

    @classmethod
    def load(cls, provider: str, name: str) -> Record | None:
        path = record_path(provider, name)
        try:
            doc = json.loads(path.read_text())
            return cls(
                path, ManagedSpec.from_dict(doc["spec"]), doc["resources"], doc.get("status", "?"), doc.get("extra")
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise KubeinitError(f"the record {path} is unreadable ({e}); fix or remove it") from None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((r for r in self.resources if r["kind"] == kind and r["name"] == name), None)

    def add(self, kind: str, name: str, id: Any, **data: Any) -> dict[str, Any]:
        entry = {"kind": kind, "name": name, "id": id, "data": data}
        self.resources.append(entry)
        self.save()
        return entry

    def intend(self, kind: str, name: str, **data: Any) -> dict[str, Any]:
        """Record a resource before the call that makes it: if that call is interrupted, the
        entry (pending) tells a re-run or `delete` to look the resource up before anything else."""
        entry = self.add(kind, name, None, **data)
        entry["pending"] = True
        self.save()
        return entry

    def settle(self, entry: dict[str, Any], id: Any, **data: Any) -> None:
        entry.pop("pending", None)
        entry["id"] = id
        entry["data"] = {**entry.get("data", {}), **data}
        self.save()

    def token(self, kind: str, name: str) -> str:
        """The idempotency token of one resource's create call (EKS clientRequestToken, EC2 ClientToken):
        the same on a re-run of this record, new for a new record or a resource made again."""
        seed = self.extra.setdefault("token_seed", uuid.uuid4().hex)
        attempt = self.extra.get("attempts", {}).get(f"{kind}/{name}", 0)
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubeinit:{seed}:{kind}/{name}:{attempt}"))

    def again(self, kind: str, name: str) -> None:
        """A resource is being made again (it failed in the cloud): its create call gets a new token."""
        attempts = self.extra.setdefault("attempts", {})
        attempts[f"{kind}/{name}"] = attempts.get(f"{kind}/{name}", 0) + 1
        self.save()

    def remove(self, entry: dict[str, Any]) -> None:
        if entry in self.resources:
            self.resources.remove(entry)
            self.save()

    def set(self, status: str | None = None, **extra: Any) -> None:
        if status:
            self.status = status
        self.extra.update(extra)
        self.save()

    def save(self) -> None:
        if not self.persist:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)  # names, ids and endpoints of a user's infrastructure
        doc = {
            "provider": self.spec.provider,
            "name": self.spec.name,
            "status": self.status,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "spec": self.spec.to_dict(),
            "resources": self.resources,
            "extra": self.extra,
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")
        os.replace(tmp, self.path)

    def discard(self) -> None:
        if self.persist:
            self.path.unlink(missing_ok=True)
