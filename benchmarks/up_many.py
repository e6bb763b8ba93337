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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "machines"))


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
    import image
    import machines as mlib
    import mirror

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    if why := mlib.preflight():
        print(f"skipped: {why}")
        return
    root, versions = mirror.build_mirror()
    net = mlib.free_network()
    server = mirror.serve_mirror(root, net.gateway, 0)
    try:
        t = time.perf_counter()
        ms = mlib.up(n, net, image.build_rootfs(), kubelet_host=True)
        boot = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            env = {**os.environ, "KUBEINIT_HOME": str(d / "home"), "NO_COLOR": "1"}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([sys.executable, "-m", "kubeinit", "version"], check=True, capture_output=True, env=env)
            kh = d / "known_hosts"
            kh.write_text("".join(m.known_hosts_line() + "\n" for m in ms))
            pins = mirror.pins(root)
            key = str(image.ssh_key())
            file = d / "many.yaml"
            file.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "kubeinit.dev/v1alpha1",
                        "kind": "Cluster",
                        "name": "many",
                        "kubernetesVersion": "v1.32.5",
                        "hosts": [
                            {
                                "name": m.name,
                                "address": m.ip,
                                "role": "control-plane" if i == 0 else "worker",
                                "ssh": {"user": "root", "key": key},
                            }
                            for i, m in enumerate(ms)
                        ],
                        "artifacts": {
                            "mirror": server.url,
                            "allowInsecureMirror": True,
                            "containerd": {"version": versions["containerd"], "sha256": pins["containerd"]},
                            "runc": {"version": versions["runc"], "sha256": pins["runc"]},
                            "cni-plugins": {"version": versions["cni_plugins"], "sha256": pins["cni-plugins"]},
                            "crictl": {"enabled": False},
                        },
                        "runtime": {"containerd": {"restrictOOMScoreAdj": True}},
                    }
                )
            )
            argv = [sys.executable, "-m", "kubeinit", "up", "-f", str(file), "--known-hosts", str(kh)]
            argv += ["--only", "preflight,runtime"]
            code = (  # the artifacts fetched and verified once, outside the figures
                "from kubeinit import artifacts, spec\n"
                f"s = spec.load_file({str(file)!r})\n"
                "for n in ('containerd', 'runc', 'cni-plugins'):\n"
                f"    artifacts.fetch(artifacts.release(s, n, {versions['arch']!r}))\n"
            )
            subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
            first = run_measured(argv, env)
            again = run_measured(argv, env)
    finally:
        server.stop()
        net.destroy()
    print(f"{n} machines booted in {boot:.1f} s (not counted)")
    for label, (wall, cpu, rss, out) in (("first up", first), ("re-run", again)):
        last = out.strip().splitlines()[-1] if out.strip() else ""
        print(
            f"{label:9s} wall {wall:6.2f} s   kubeinit CPU {cpu:6.2f} s ({cpu / n:.3f} s per host)   "
            f"peak RSS {rss:6.1f} MB   [{last}]"
        )
    print(f"ratio re-run/first (wall): {again[0] / first[0]:.3f}; peak RSS vs the 150 MB goal: {first[2] / 150:.2f}")


if __name__ == "__main__":
    main()
