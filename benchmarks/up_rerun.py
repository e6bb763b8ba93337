"""How `kubeinit up --only preflight,runtime` scales with hosts, and what a re-run costs.
Prints figures and ratios; never fails. Needs root (it boots test machines, see tests/machines).

    python benchmarks/up_rerun.py

Boots 4 fresh machines: one for the single-host run, three for the three-host runs (as root,
as `kube` through sudo, and through a bastion, like tests/machines/test_up.py). The local
artifact cache is filled first, so the figures are the hosts' work (upload, install, start),
not the mirror's download. Each figure is one `python -m kubeinit up` process, start-up included,
with bytecode caching on as after `pip install` (PYTHONDONTWRITEBYTECODE, set on some machines,
is cleared for these runs; a warm-up `kubeinit version` writes the caches).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from upbench import lab, summary_line

RERUNS = 5
LOGINS = 9


def main() -> None:
    with lab(4) as b:  # one machine for the single-host run, three for the three-host runs
        if b is None:
            return
        ms = b.machines
        changes: list[str] = []  # what each re-run reported

        def up(file: Path, again: bool = False) -> float:
            t = time.perf_counter()
            r = subprocess.run(b.up_argv(file), capture_output=True, text=True, env=b.env)
            took = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"kubeinit up failed:\n{r.stdout}\n{r.stderr}")
            if again:
                changes.append(summary_line(r.stdout).split("; ", 1)[-1])
            return took

        one = b.cluster_file("one", [b.host(ms[0], "control-plane")])
        three = b.cluster_file(
            "three", [b.host(ms[1], "control-plane"), b.host(ms[2], user="kube"), b.host(ms[3], bastion=ms[1])]
        )
        t = time.perf_counter()
        b.warm_cache(three)
        td = time.perf_counter() - t
        t1 = up(one)
        t3 = up(three)
        again = sorted(up(three, again=True) for _ in range(RERUNS))
        t3b = again[len(again) // 2]
        t1b = sorted(up(one, again=True) for _ in range(RERUNS))[RERUNS // 2]
        quick, slow = (_login_and_first_command(one, b.known_hosts, q) for q in (True, False))
    print(f"T(download + verify the artifacts from the mirror)  {td:6.2f} s   (a user's first up does this first)")
    print(f"T(first up, 1 host)    {t1:6.2f} s")
    print(f"T(first up, 3 hosts)   {t3:6.2f} s")
    print(f"T(second up, 1 host)   {t1b:6.2f} s   (median of {RERUNS} re-runs)")
    print(
        f"T(second up, 3 hosts)  {t3b:6.2f} s   (median of {RERUNS} re-runs; all: "
        f"{', '.join(f'{t:.2f}' for t in again)})"
    )
    print(f"what the {len(changes)} re-runs reported: {', '.join(sorted(set(changes)))}")
    print(f"ratio second/first (3 hosts): {t3b / t3:.3f}")
    print(f"ratio second/first (1 host):  {t1b / t1:.3f}")
    print(f"ratio second/(download + first) (3 hosts): {t3b / (td + t3):.3f}")
    print(f"ratio 3 hosts/1 host (first): {t3 / t1:.2f}")
    print(
        f"T(SSH login + first command) {quick * 1000:.0f} ms, without quick ACKs {slow * 1000:.0f} ms "
        f"(median of {LOGINS}): ratio {quick / slow:.2f}"
    )


def _login_and_first_command(file: Path, known_hosts: Path, quick_ack: bool) -> float:
    """One login and one command, as every `up` starts on every host; with the client's quick
    ACKs (kubeinit's default) and without (the server's reply to the first channel then waits
    for a delayed ACK)."""
    from kubeinit import spec, ssh
    from kubeinit.ssh import login

    host = spec.load_file(file).hosts[0]
    saved, login._TCP_QUICKACK = login._TCP_QUICKACK, login._TCP_QUICKACK if quick_ack else None
    took = []
    try:
        for _ in range(LOGINS):
            t = time.perf_counter()
            conn = ssh.SSHConnection(host, known_hosts=known_hosts)
            assert conn.run(["true"]).rc == 0
            took.append(time.perf_counter() - t)
            conn.close()
    finally:
        login._TCP_QUICKACK = saved
    return sorted(took)[LOGINS // 2]


if __name__ == "__main__":
    main()
