"""Start-up cost of the CLI, and the cost of making a PKI. Prints figures and ratios; never fails.

    python benchmarks/cli_startup.py [runs]

Runs with bytecode caching on, as after `pip install` (which compiles it): PYTHONDONTWRITEBYTECODE,
set on some machines, is cleared for the measured runs, and one warm-up run writes the caches.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
JOIN = ["127.0.0.1:1", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", "sha256:" + "0" * 64]


def timed(argv: list[str], runs: int) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=ENV)  # warm-up: writes __pycache__
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired(a: list[str], b: list[str], runs: int) -> tuple[float, float, float, float]:
    """Medians of a and b, of the ratio b/a, and of the ratio of their CPU times (user + system),
    run alternately: on a busy machine the load changes between runs, a ratio of neighbouring
    runs sees the same load, and CPU time hardly depends on it."""
    for argv in (a, b):
        subprocess.run(argv, check=True, capture_output=True, env=ENV)  # warm-up: writes __pycache__
    ta, tb, ca, cb = [], [], [], []
    for _ in range(runs):
        for argv, out, cpu in ((a, ta, ca), (b, tb, cb)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=ENV)
            out.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return (
        statistics.median(ta),
        statistics.median(tb),
        statistics.median(y / x for x, y in zip(ta, tb, strict=True)),
        statistics.median(cb) / statistics.median(ca),
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    py = sys.executable
    base, helped, ratio, cpu_ratio = paired([py, "-c", "import typer"], [py, "-m", "kubeinit", "--help"], runs)
    init_help = timed([py, "-m", "kubeinit", "init", "--help"], runs)
    # a command given values: kubeinit.cli.convert converts them (typer alone would load pydantic).
    # join needs a CA pin; its endpoint is a closed loopback port, so discovery is refused at once
    # and the dry run plans with init's settings (no network wait in the figure).
    join = timed([py, "-m", "kubeinit", "join", *JOIN, "--dry-run", "--skip-phases", "preflight"], runs)
    print(f"python -c 'import typer'        median of {runs}: {base * 1000:7.1f} ms")
    print(f"kubeinit --help                 median of {runs}: {helped * 1000:7.1f} ms")
    print(f"kubeinit init --help            median of {runs}: {init_help * 1000:7.1f} ms")
    print(
        f"kubeinit join ENDPOINT --token … --discovery-token-ca-cert-hash … --dry-run --skip-phases preflight  "
        f"median of {runs}: {join * 1000:7.1f} ms"
    )
    print(
        f"ratio kubeinit --help / import typer (median of paired runs): {ratio:.2f}, of CPU time: {cpu_ratio:.2f} "
        "(goal <= 1.25)"
    )
    for alg in ("RSA-2048", "ECDSA-P256"):
        samples = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as d:
                cfg = f"{d}/cluster.yaml"
                with open(cfg, "w") as f:
                    f.write(
                        "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\npki:\n"
                        f"  keyAlgorithm: {alg}\nhosts:\n- {{name: node-a, address: 10.1.2.3, role: control-plane}}\n"
                    )
                common = ["--config", cfg, "--cert-dir", f"{d}/pki", "--kubeconfig-dir", d]
                t = time.perf_counter()
                subprocess.run(
                    [py, "-m", "kubeinit", "init", "phase", "certs", "all", *common], check=True, capture_output=True
                )
                subprocess.run(
                    [py, "-m", "kubeinit", "init", "phase", "kubeconfig", "all", *common],
                    check=True,
                    capture_output=True,
                )
                samples.append(time.perf_counter() - t)
        print(f"init phase certs all + kubeconfig all, {alg:10s} median of 3: {statistics.median(samples):6.2f} s")


if __name__ == "__main__":
    main()
