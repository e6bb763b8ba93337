"""Watching a systemd unit while kubeinit waits on something that unit must do.

The API server is a static pod the kubelet runs: if the kubelet exits while wait-control-plane
polls /readyz, no answer will ever come, and a 4-minute timeout hides the kubelet's own error.
A kubelet 1.20 with a missing /dev/kmsg exits 5-6 s after starting, after kubelet-start's check.
So the executor, between polls, asks systemd about the unit (one `systemctl show`, at most once
a `every` seconds) and stops at once when it is no longer the running process the wait began
with: not active (exited, restarting, failed, stopped), or another invocation (restarted). The
error carries the unit's own last fatal or error line (klog's `F…`/`E…`).
"""

from __future__ import annotations

import re
import time

from kubeinit.connection import Connection
from kubeinit.errors import KubeinitError

PROPERTIES = ("LoadState", "ActiveState", "SubState", "NRestarts", "InvocationID")
KLOG = re.compile(r"^([FE])\d{4} ")


class UnitStopped(KubeinitError):
    """The watched unit exited or restarted while kubeinit waited on it."""


class UnitWatch:
    """Call it between polls: raises UnitStopped once `unit` is not the process it first saw.
    It watches nothing where there is no systemd or no such unit (a kubelet run some other way)."""

    def __init__(self, conn: Connection, unit: str, every: float = 1.0):
        self.conn, self.unit, self.every = conn, unit, every
        self._first: dict[str, str] | None = None
        self._asked = float("-inf")
        self.off = False

    def __call__(self) -> None:
        if self.off or time.monotonic() - self._asked < self.every:
            return
        self._asked = time.monotonic()
        state = self._show()
        if state is None:
            self.off = True
            return
        first = self._first = self._first or state
        if (
            state["ActiveState"] == "active"
            and state["InvocationID"] == first["InvocationID"]
            and state["NRestarts"] == first["NRestarts"]
        ):
            return
        raise UnitStopped(self._sentence(state, first))

    def _show(self) -> dict[str, str] | None:
        r = self.conn.run(["systemctl", "show", self.unit, *(f"-p{p}" for p in PROPERTIES)], timeout=30)
        state = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
        if r.rc != 0 or state.get("LoadState") != "loaded" or "ActiveState" not in state:
            return None
        return {p: state.get(p, "") for p in PROPERTIES}

    def _sentence(self, state: dict[str, str], first: dict[str, str]) -> str:
        active, sub = state["ActiveState"], state["SubState"]
        if active == "active":
            what = "was restarted"
        elif sub == "auto-restart" or active == "activating":
            what = "exited (systemd restarts it, and it will exit again)"
        elif active == "failed":
            what = "failed"
        else:
            what = f"stopped ({active})"
        line = self._error_line(first["InvocationID"])
        said = f": {line} (" if line else ", with no error line of its own ("
        return (
            f"the {self.unit} {what} while kubeinit waited for it{said}`journalctl -u {self.unit}` on the host "
            "shows its whole log)"
        )

    def _error_line(self, invocation: str) -> str:
        """The unit's last klog fatal line, else its last error line, from the invocation that
        ended (a fatal kubelet prints every goroutine's stack after its F line: hundreds of
        lines, so the host greps them). journald may write an exited process's last lines a
        moment after systemd saw it exit: asked twice."""
        where = (
            f'_SYSTEMD_INVOCATION_ID="{invocation}"'
            if re.fullmatch(r"[0-9a-f]{32}", invocation)
            else f"-u {self.unit} -n 5000"
        )
        script = f"journalctl {where} --no-pager -o cat | grep -E '^[FE][0-9]{{4}} ' | tail -n 20"
        for attempt in range(2):
            r = self.conn.run(["sh", "-c", script], timeout=30)
            lines = [ln.strip() for ln in r.out.splitlines() if KLOG.match(ln.strip())]
            fatal = [ln for ln in lines if ln.startswith("F")]
            if fatal or lines:
                return (fatal or lines)[-1][:400]
            if attempt == 0:
                time.sleep(0.5)
        return ""
