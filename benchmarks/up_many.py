"""What `kubeinit up --only preflight,runtime` costs kubeinit itself on many hosts: its own CPU
seconds per host and its peak memory (goal: at most 150 MB), first run and converged re-run.
Prints figures and ratios; never fails. Needs root (it boots test machines, see tests/machines).

    python benchmarks/up_many.py [HOSTS]   # default 12

The artifacts are downloaded and verified once before the timed runs (as in up_rerun.py), so
the first run's figures are uploads, installs and starts on the hosts, with kubeinit's share of
the work measured from its own process (wait4's rusage of that one process: user + system CPU,
maximum resident set size).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from upbench import lab, summary_line


def run_measured(argv: list[str], env: dict) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of one process, from its own rusage."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        raise SystemExit(f"kubeinit up failed:\n{text}\n{errors}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    with lab(n) as b:
        if b is None:
            return
        hosts = [b.host(m, "control-plane" if i == 0 else "worker") for i, m in enumerate(b.machines)]
        file = b.cluster_file("many", hosts)
        b.warm_cache(file)
        first = run_measured(b.up_argv(file), b.env)
        again = run_measured(b.up_argv(file), b.env)
        boot = b.boot_seconds
    print(f"{n} machines booted in {boot:.1f} s (not counted)")
    for label, (wall, cpu, rss, out) in (("first up", first), ("re-run", again)):
        last = summary_line(out)
        print(
            f"{label:9s} wall {wall:6.2f} s   kubeinit CPU {cpu:6.2f} s ({cpu / n:.3f} s per host)   "
            f"peak RSS {rss:6.1f} MB   [{last}]"
        )
    print(f"ratio re-run/first (wall): {again[0] / first[0]:.3f}; peak RSS vs the 150 MB goal: {first[2] / 150:.2f}")


if __name__ == "__main__":
    main()
