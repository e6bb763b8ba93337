"""Start-up cost of the CLI, and the cost of making a PKI. Prints figures and ratios; never fails.

    python benchmarks/cli_startup.py [runs]

Runs with bytecode caching on, as after `pip install` (which compiles it): PYTHONDONTWRITEBYTECODE,
set on some machines, is cleared for the measured runs, and one warm-up run writes the caches.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], runs: int) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=ENV)  # warm-up: writes __pycache__
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    py = sys.executable
    base = timed([py, "-c", "import click, rich"], runs)
    helped = timed([py, "-m", "kubeinit", "--help"], runs)
    print(f"python -c 'import click, rich'   median of {runs}: {base * 1000:7.1f} ms")
    print(f"kubeinit --help                 median of {runs}: {helped * 1000:7.1f} ms")
    print(f"ratio kubeinit --help / import click,rich: {helped / base:.2f}")
    for alg in ("RSA-2048", "ECDSA-P256"):
        samples = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as d:
                cfg = f"{d}/cluster.yaml"
                with open(cfg, "w") as f:
                    f.write("apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\npki:\n"
                            f"  keyAlgorithm: {alg}\nhosts:\n- {{name: node-a, address: 10.1.2.3, role: control-plane}}\n")
                common = ["--config", cfg, "--cert-dir", f"{d}/pki", "--kubeconfig-dir", d]
                t = time.perf_counter()
                subprocess.run([py, "-m", "kubeinit", "init", "phase", "certs", "all", *common], check=True,
                               capture_output=True)
                subprocess.run([py, "-m", "kubeinit", "init", "phase", "kubeconfig", "all", *common], check=True,
                               capture_output=True)
                samples.append(time.perf_counter() - t)
        print(f"init phase certs all + kubeconfig all, {alg:10s} median of 3: {statistics.median(samples):6.2f} s")


if __name__ == "__main__":
    main()
