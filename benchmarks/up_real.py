"""`kubeinit up` of one control plane on a fresh machine with the REAL Kubernetes binaries, to the
API server answering and the node registered: the total, where the time goes (each phase), and
a converged re-run. Prints figures; never fails. Needs root (it boots a test machine, see
tests/machines) and $KUBEINIT_REAL_K8S (real binaries: shared/tools/build-real-k8s.sh).

    KUBEINIT_REAL_K8S=/var/cache/kubeinit-tests/k8s-1.20.2/bin python benchmarks/up_real.py

The cluster is the machine test's (tests/machines/test_real_kubelet.py): v1.20.2 binaries standing
in for kubernetesVersion v1.31.4, the control plane's images from an image bundle, containerd with
restrictOOMScoreAdj. Artifacts are downloaded and verified into kubeinit's local cache first
(timed apart), so the figures are the host's work. A phase's time runs from its header line to
its host's ✓ line in `up`'s plain output, read as it is printed.
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
SKIP = "addon,cni,join"


def main() -> None:
    import image
    import machines as mlib
    import mirror
    import realk8s

    if why := mlib.preflight() or realk8s.skip_reason():
        print(f"skipped: {why}")
        return
    base, versions = mirror.build_mirror()
    real = realk8s.build(base)
    m = realk8s.manifest(real)
    net = mlib.free_network()
    server = mirror.serve_mirror(real, net.gateway, 0)
    try:
        t = time.perf_counter()
        (machine,) = mlib.up(1, net, image.build_rootfs(), kubelet_host=True)
        boot = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            env = {
                **os.environ,
                "KUBEINIT_HOME": str(d / "home"),
                "NO_COLOR": "1",
                "PYTHONUNBUFFERED": "1",
                "COLUMNS": "200",
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([sys.executable, "-m", "kubeinit", "version"], check=True, capture_output=True, env=env)
            kh = d / "known_hosts"
            kh.write_text(machine.known_hosts_line() + "\n")
            file = d / "cluster.yaml"
            file.write_text(yaml.safe_dump(cluster(machine, server.url, versions, mirror.pins(base), m)))
            t = time.perf_counter()
            _warm_cache(env, file, versions["arch"])
            download = time.perf_counter() - t
            first, phases, _ = up(file, kh, env)
            second, _, again = up(file, kh, env)
            containers = machine.ssh("ctr -n k8s.io tasks ls -q | wc -l").out.strip()
    finally:
        server.stop()
        net.destroy()
    print(
        f"binaries: {m['binaries']} (v{m['version']} standing in for {m['stands_for']}); 1 machine, "
        f"{os.cpu_count()} CPUs shared"
    )
    print(f"T(boot the machine)                              {boot:6.2f} s   (not part of up)")
    print(
        f"T(download + verify the artifacts and images)    {download:6.2f} s   (a user's first up does this "
        "first; from the local mirror)"
    )
    print(f"T(first up, whole run)                            {first:6.2f} s   ({containers} containers running after)")
    ends = {p: end for p, _, end in phases}
    print(
        f"  API server answering /readyz at                  {ends['wait-control-plane']:6.2f} s   "
        "(end of wait-control-plane)"
    )
    print(
        f"  node registered and marked at                    {ends['mark-control-plane']:6.2f} s   "
        "(end of mark-control-plane)"
    )
    groups: dict[str, float] = {}
    for p, took, _ in phases:
        groups[p.split("/")[0]] = groups.get(p.split("/")[0], 0.0) + took
    print("  per phase (sub-phases summed; slowest first):")
    for p, took in sorted(groups.items(), key=lambda x: -x[1]):
        print(f"    {p:<22} {took:6.2f} s  {100 * took / first:4.0f}%")
    print(f"    (the rest: start-up, logins, between phases) {first - sum(groups.values()):.2f} s")
    print(f"T(second up, converged)                           {second:6.2f} s   ({again})")
    print(f"ratio second/first: {second / first:.3f}")


def cluster(machine, url: str, versions: dict, pins: dict, m: dict) -> dict:
    """The test cluster of test_real_kubelet.py, as a dict."""
    import image

    kube = {n: {"version": m["version"], "sha256": f["sha256"]} for n, f in m["files"].items() if n != "kube-proxy"}
    arts = {
        "mirror": url,
        "allowInsecureMirror": True,
        "containerd": {"version": versions["containerd"], "sha256": pins["containerd"]},
        "runc": {"version": versions["runc"], "sha256": pins["runc"]},
        "cni-plugins": {"version": versions["cni_plugins"], "sha256": pins["cni-plugins"]},
        "etcd": {"version": versions["etcd"], "sha256": pins["etcd"]},
        "crictl": {"enabled": False},
        **kube,
        "images": [{"name": i["name"], "url": f"{url}/{i['path']}", "sha256": i["sha256"]} for i in m["images"]],
    }
    return {
        "apiVersion": "kubeinit.dev/v1alpha1",
        "kind": "Cluster",
        "name": "bench",
        "kubernetesVersion": m["stands_for"],
        "hosts": [
            {
                "name": machine.name,
                "address": machine.ip,
                "role": "control-plane",
                "ssh": {"user": "root", "key": str(image.ssh_key())},
            }
        ],
        "components": {
            "kubelet": {"extraArgs": {"container-runtime": "remote"}},
            "controllerManager": {"extraArgs": {"port": "0"}},
            "scheduler": {"extraArgs": {"port": "0"}},
        },
        "runtime": {"containerd": {"restrictOOMScoreAdj": True}},
        "artifacts": arts,
    }


def up(file: Path, kh: Path, env: dict) -> tuple[float, list[tuple[str, float, float]], str]:
    """Wall time of one `kubeinit up`; each phase's time and when it ended (since the start); its
    last line."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "kubeinit", "up", "-f", str(file), "--known-hosts", str(kh), "--skip-phases", SKIP],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    starts: dict[str, float] = {}
    phases: list[tuple[str, float, float]] = []
    lines = []
    for line in p.stdout:
        now = time.perf_counter()
        lines.append(line.rstrip())
        if line.startswith("[") and "] on " in line:
            starts[line[1 : line.index("]")]] = now
        elif ": ✓ " in line:
            name = line.split(": ✓ ", 1)[1].split(":")[0]
            if name in starts:
                phases.append((name, now - starts[name], now - t0))
    rc = p.wait()
    took = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit("kubeinit up failed:\n" + "\n".join(lines))
    return took, phases, lines[-1] if lines else ""


def _warm_cache(env: dict, file: Path, arch: str) -> None:
    """Download and verify the artifacts and image tarballs once, as the first `up` would."""
    code = (
        "from kubeinit import artifacts, spec\n"
        "from kubeinit.phases import images\n"
        f"s = spec.load_file({str(file)!r})\n"
        "for n in ('containerd', 'runc', 'cni-plugins', 'etcd', 'kubelet', 'kubectl'):\n"
        f"    artifacts.fetch(artifacts.release(s, n, {arch!r}))\n"
        "for i in s.artifacts.images:\n"
        "    if i.url:\n"  # a bundle's file on this machine (path:) needs no download
        "        artifacts.fetch(images.release(i, i.url), i.sha256)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


if __name__ == "__main__":
    main()
