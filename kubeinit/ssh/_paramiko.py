"""paramiko, imported here only (kubeinit.ssh is its one user), without what a run never uses."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING


def _import_paramiko() -> types.ModuleType:
    """Import paramiko without two costs a run never uses, both on the path to the first
    login: Invoke (~65 ms), which paramiko loads only for ssh_config's `Match exec`, and
    importlib.metadata (~25 ms), which it loads only to read its own version for the SSH
    banner: that comes from its dist-info directory's name instead. Anyone else who asks
    for importlib.metadata meanwhile (another thread) gets the real module."""
    import importlib.util

    stubs: dict[str, types.ModuleType | None] = {}
    if "invoke" not in sys.modules:
        stubs["invoke"] = None
    if "importlib.metadata" not in sys.modules:
        meta = types.ModuleType("importlib.metadata")

        def real() -> types.ModuleType:
            if sys.modules.get("importlib.metadata") is meta:
                del sys.modules["importlib.metadata"]
            return importlib.import_module("importlib.metadata")

        def version(name: str) -> str:
            spec = importlib.util.find_spec(name)
            site = Path(spec.origin).parent.parent if spec and spec.origin else None
            found = sorted(site.glob(f"{name}-*.dist-info")) if site else []
            return found[0].name[len(name) + 1 : -len(".dist-info")] if len(found) == 1 else real().version(name)

        setattr(meta, "version", version)  # noqa: B010 (a module attribute the stub module type lacks)
        setattr(meta, "__getattr__", lambda attr: getattr(real(), attr))  # noqa: B010
        stubs["importlib.metadata"] = meta
    sys.modules.update(stubs)  # type: ignore[arg-type]  # a None entry makes `import invoke` fail, as meant
    try:
        import paramiko
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name, 0) is stub:
                del sys.modules[name]
    return paramiko


if TYPE_CHECKING:  # the real module for the checker (paramiko ships no stubs: its names are Any)
    import paramiko
else:
    paramiko = sys.modules.get("paramiko") or _import_paramiko()

# paramiko logs a dropped connection ("Socket exception: Connection reset by peer") from its own
# thread; without a handler Python would print that on stderr, beside kubeinit's one clear line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
