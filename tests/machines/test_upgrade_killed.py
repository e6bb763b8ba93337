"""`kubeinit upgrade apply` killed (SIGKILL) once the control plane's turn is over and the worker's
has begun (its drain), then run again: the re-run finishes the job (the worker's kubelet on the new
binary, both Nodes Ready and schedulable), and a further run only skips.

The cluster is test_upgrade.py's (1 control plane + 1 worker, the real v1.20.2 components standing
in for realk8s.STANDS_FOR and then UPGRADE_TO), on this module's own two fresh machines. The kill
lands while the worker is being drained: it may be cordoned by then, which the re-run must undo.
Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from test_up import ROOT, errors
from test_upgrade import (  # machines, work: this module's own fixtures (fresh machines, its workdir)
    FROM,
    TIMES,
    TO,
    UP_TIMEOUT,
    UpgradeWork,
    apply,
    cluster_version,
    get,
    machines,  # noqa: F401
    pods_of,
    running_on,
    state,
    until,
    up_with_a_pod_on_the_worker,
    wait_nodes_ready,
    work,  # noqa: F401
)

pytestmark = pytest.mark.machines


def killed_at(work: UpgradeWork, pattern: str, first: Callable[[], object]) -> tuple[int, str, str]:
    """`kubeinit upgrade apply --yes` of the upgraded file, SIGKILLed once a stdout line matches
    `pattern` and then first() has returned: (its exit status, stdout, stderr)."""
    argv = [*work.argv()[:3], "upgrade", "apply", "-f", str(work.upgraded), "--yes"]
    argv += ["--known-hosts", str(work.known_hosts)]
    p = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=work.env(),
        cwd=ROOT,
    )
    out: list[str] = []
    err: list[str] = []
    t = threading.Thread(target=lambda: err.extend(p.stderr), daemon=True)
    t.start()
    for line in p.stdout:
        out.append(line)
        if re.search(pattern, line):
            first()
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=UP_TIMEOUT)
    out.extend(p.stdout)
    t.join(10)
    (work.root / "killed.out").write_text("".join(out) + "\n--- stderr\n" + "".join(err))
    return p.returncode, "".join(out), "".join(err)


def test_apply_killed_in_the_workers_turn_then_rerun_finishes(work, machines):  # noqa: F811
    cp, worker = machines
    before = up_with_a_pod_on_the_worker(work, machines)
    upgrade = work.manifest()["upgrade"]

    t0 = time.monotonic()

    def cordoned() -> bool:
        return bool(get(work, "node", worker.name)["spec"].get("unschedulable"))

    # in the worker's drain, once its Node is cordoned (the drain then waits ~40 s for its pod to go)
    code, out, err = killed_at(
        work, rf"^  {worker.name}: api cordon and drain", lambda: until("the worker cordoned", cordoned, 30, 0.2)
    )
    assert code == -signal.SIGKILL, out + err
    # the control plane's turn was over: its kubelet new, the cluster's records at TO
    assert cluster_version(work) == TO
    pid = cp.ssh("systemctl show -p MainPID --value kubelet").out.strip()
    assert pid != before["hosts"][cp.name][0]
    assert cp.ssh(f"sha256sum /proc/{pid}/exe").out.split()[0] == upgrade["files"]["kubelet"]["sha256"]
    # ... and the worker's was not: its kubelet still the first version's
    assert (
        worker.ssh("sha256sum /usr/local/bin/kubelet").out.split()[0] == work.manifest()["files"]["kubelet"]["sha256"]
    )
    assert cordoned(), "the worker is cordoned when the run is killed"

    r = apply(work, "apply-rerun", work.upgraded, "--yes", timeout=UP_TIMEOUT)
    TIMES["killed+rerun"] = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert errors(r) == [], r.stderr
    assert f"{worker.name}: ✓ drain" in r.stdout, r.stdout
    # the control plane's turn was done: the re-run goes through it changing nothing
    cp_phases = re.findall(rf"^  {cp.name}: ✓ (\S+): (\d+) changed", r.stdout, re.MULTILINE)
    assert len(cp_phases) > 5 and all(n == "0" for _, n in cp_phases), cp_phases
    after = state(work, machines)
    wpid = after["hosts"][worker.name][0]
    assert wpid != before["hosts"][worker.name][0], "the worker's kubelet was not restarted"
    assert worker.ssh(f"sha256sum /proc/{wpid}/exe").out.split()[0] == upgrade["files"]["kubelet"]["sha256"]
    items = wait_nodes_ready(work, machines, "both Nodes Ready after the re-run")
    assert not any(n["spec"].get("unschedulable") for n in items), [n["spec"] for n in items]
    assert not set(before["pods"]) & set(pods_of(work, "sleeper")), "the worker's pod was not evicted"
    assert running_on(work, "sleeper", worker.name) not in before["pods"]

    again = apply(work, "apply-after-rerun", work.upgraded, "--yes", timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to change" in again.stdout, again.stdout
    print(
        f"\nkilled in {worker.name}'s drain, cordoned, {FROM} -> {TO}; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items())
    )
