"""`kubeinit up` of a whole cluster, 1 control plane + 2 workers, from bare machines to every node
Ready, with the REAL Kubernetes binaries: the total, each phase's time, and a converged re-run.
Prints figures and ratios; never fails. Needs root (it boots test machines, see tests/machines)
and $KUBEINIT_REAL_K8S (real binaries: shared/tools/build-real-k8s.sh).

    KUBEINIT_REAL_K8S=/var/cache/kubeinit-tests/k8s-1.20.2/bin python benchmarks/up_cluster.py

The cluster is tests/machines/test_cluster.py's, written by cluster_lab's ClusterWork (v1.20.2 binaries
standing in for kubernetesVersion v1.31.4, networking.cni: bridge, images from the bundle).
Artifacts and images are downloaded and verified into kubeinit's local cache first (timed apart),
so the figures are the hosts' work. Each phase's time is the one `up` prints in its summary
("time per phase"); "every node Ready" is the summary's own reading through the API server
(`up` waits for it), checked afterwards with kubectl on the control plane.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "machines"))
sys.path.insert(0, str(ROOT / "benchmarks"))
RERUNS = 3
UP_TIMEOUT = 1200
READY_AFTER = 180  # seconds kubectl is given when up's summary did not see every node Ready


def main() -> None:
    import image
    import machines as mlib
    import mirror
    import realk8s

    if why := mlib.preflight() or realk8s.skip_reason():
        print(f"skipped: {why}")
        return
    from cluster_lab import POD_SUBNET, ClusterWork
    from up_real import _warm_cache

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as after `pip install`: bytecode cached
    base, versions = mirror.build_mirror()
    rootfs = image.build_rootfs()
    real = realk8s.build(base, rootfs=rootfs)
    m = realk8s.manifest(real)
    net = mlib.free_network()
    server = mirror.serve_mirror(real, net.gateway, 0)
    ms: list = []
    try:
        t = time.perf_counter()
        ms = mlib.up(3, net, rootfs, allow=(POD_SUBNET,), kubelet_host=True)
        boot = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            ClusterWork.real_root = str(real)
            work = ClusterWork(
                Path(d), ms, server.url, {**versions, "kubernetes": m["version"], "stands_for": m["stands_for"]}
            )
            work.trust_all()
            subprocess.run([sys.executable, "-m", "kubeinit", "version"], check=True, capture_output=True)
            t = time.perf_counter()
            _warm_cache(work.env(), work.file, versions["arch"])
            download = time.perf_counter() - t
            first = work.up(timeout=UP_TIMEOUT)
            if first.returncode != 0:
                raise SystemExit(f"kubeinit up failed:\n{first.stdout}\n{first.stderr}")
            ready_late = _kubectl_ready(ms[0], [x.name for x in ms], first.seconds)
            again = [work.up(timeout=UP_TIMEOUT) for _ in range(RERUNS)]
    finally:
        for x in ms:
            x.destroy()
        server.stop()
        net.destroy()
    phases, ready = _phases(first.stdout), _ready(first.stdout)
    second = statistics.median(r.seconds for r in again)
    print(
        f"binaries: {m['binaries']} (v{m['version']} standing in for {m['stands_for']}); 3 machines "
        f"(1 control plane + 2 workers, networking.cni: bridge), {os.cpu_count()} CPUs shared"
    )
    print(f"T(boot the machines)                          {boot:7.2f} s   (not part of up)")
    print(f"T(download + verify the artifacts and images) {download:7.2f} s   (a user's first up does this first)")
    print(f"T(first up, bare machines to the summary)      {first.seconds:7.2f} s")
    print(f"  up's summary: {ready}")
    if ready_late is not None:
        print(f"  every node Ready (kubectl on the control plane) at {ready_late:6.2f} s")
    total = sum(phases.values())
    print("  per phase, as up printed it (run order; share of the first up):")
    for p, took in phases.items():
        print(f"    {p:<22} {took:7.2f} s  {100 * took / first.seconds:4.0f}%")
    print(f"    (the rest: start-up, logins, the wait for Ready, the summary) {first.seconds - total:.2f} s")
    slow = sorted(phases.items(), key=lambda x: -x[1])[:3]
    print("  slowest: " + ", ".join(f"{p} {100 * s / first.seconds:.0f}%" for p, s in slow))
    print(
        f"T(converged re-run)                            {second:7.2f} s   (median of {RERUNS}: "
        f"{', '.join(f'{r.seconds:.2f}' for r in again)}); it said: {_said(again[-1].stdout)}"
    )
    print(f"  per phase of the last re-run: {', '.join(f'{p} {s:.2f}' for p, s in _phases(again[-1].stdout).items())}")
    print(f"ratio re-run/first: {second / first.seconds:.3f}")


def _phases(out: str) -> dict[str, float]:
    """The summary's `time per phase: preflight 0.6s, runtime 16.5s, ...`."""
    line = re.search(r"^time per phase: (.*)$", out, re.MULTILINE)
    if not line:
        return {}
    return {name: float(s) for name, s in re.findall(r"([\w-]+) ([\d.]+)s", line.group(1))}


def _ready(out: str) -> str:
    said = re.search(r"(\d+ of \d+ nodes Ready.*)$", out, re.MULTILINE)
    return said.group(1) if said else "no node line (see up's output)"


def _said(out: str) -> str:
    said = re.search(r"^✓ up: .*; (.*)$", out, re.MULTILINE)
    return said.group(1) if said else "?"


def _kubectl_ready(cp, names: list[str], since: float) -> float | None:
    """None when kubectl on the control plane sees every node Ready at once (up's summary was
    right); else how long after the start of up they all were (bounded)."""
    t0 = time.perf_counter()
    while True:
        out = cp.ssh("kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers").out
        ready = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Ready"]}
        if set(names) <= ready:
            waited = time.perf_counter() - t0
            return None if waited < 1 else since + waited
        if time.perf_counter() - t0 > READY_AFTER:
            print(f"not every node Ready {READY_AFTER} s after up: {out}")
            return since + READY_AFTER
        time.sleep(2)


if __name__ == "__main__":
    main()
