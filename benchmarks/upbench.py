"""What up_many.py and up_rerun.py share: test machines booted on a network with the artifact
mirror (tests/machines), a workspace with kubeinit's bytecode caches warm, cluster files of those
machines, and the artifacts fetched once before the timed runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "machines"))


@dataclass
class Lab:
    machines: list  # tests/machines' Machine
    dir: Path  # this run's files
    env: dict[str, str]  # for `python -m kubeinit`
    known_hosts: Path
    key: str  # the machines' SSH key
    artifacts: dict  # a cluster file's `artifacts:`, from the mirror, pinned
    arch: str
    boot_seconds: float  # how long the machines took to boot

    def cluster_file(self, name: str, hosts: list[dict]) -> Path:
        p = self.dir / f"{name}.yaml"
        p.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeinit.dev/v1alpha1",
                    "kind": "Cluster",
                    "name": name,
                    "kubernetesVersion": "v1.32.5",
                    "hosts": hosts,
                    "artifacts": self.artifacts,
                    # a machine has no CAP_SYS_RESOURCE (preflight says so otherwise)
                    "runtime": {"containerd": {"restrictOOMScoreAdj": True}},
                }
            )
        )
        return p

    def host(self, m, role: str = "worker", user: str = "root", bastion=None) -> dict:
        ssh = {"user": user, "key": self.key, **({"bastion": f"root@{bastion.ip}"} if bastion else {})}
        return {"name": m.name, "address": m.ip, "role": role, "ssh": ssh}

    def up_argv(self, file: Path) -> list[str]:
        """`kubeinit up` of preflight and runtime, the phases these benchmarks time."""
        argv = [sys.executable, "-m", "kubeinit", "up", "-f", str(file), "--known-hosts", str(self.known_hosts)]
        return [*argv, "--only", "preflight,runtime"]

    def warm_cache(self, file: Path) -> None:
        """Download and verify the artifacts once, as the first `up` would, outside the timings."""
        code = (
            "from kubeinit import artifacts, spec\n"
            f"s = spec.load_file({str(file)!r})\n"
            "for n in ('containerd', 'runc', 'cni-plugins'):\n"
            f"    artifacts.fetch(artifacts.release(s, n, {self.arch!r}))\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=self.env, cwd=ROOT)


@contextlib.contextmanager
def lab(n: int) -> Iterator[Lab | None]:
    """n fresh machines (kubelet hosts) and the mirror, torn down after; None where they cannot
    boot here (the reason printed)."""
    import image
    import machines as mlib
    import mirror

    if why := mlib.preflight():
        print(f"skipped: {why}")
        yield None
        return
    root, versions = mirror.build_mirror()
    net = mlib.free_network()
    server = mirror.serve_mirror(root, net.gateway, 0)
    try:
        t = time.perf_counter()
        ms = mlib.up(n, net, image.build_rootfs(), kubelet_host=True)  # what preflight requires of a kubelet host
        boot = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "KUBEINIT_HOME": str(Path(d) / "home"), "NO_COLOR": "1"}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caching on, as after `pip install`
            subprocess.run([sys.executable, "-m", "kubeinit", "version"], check=True, capture_output=True, env=env)
            kh = Path(d) / "known_hosts"
            kh.write_text("".join(m.known_hosts_line() + "\n" for m in ms))
            pins = mirror.pins(root)  # the mirror's builds are Debian's: pinned, as a site's own builds would be
            arts = {
                "mirror": server.url,
                "allowInsecureMirror": True,
                "containerd": {"version": versions["containerd"], "sha256": pins["containerd"]},
                "runc": {"version": versions["runc"], "sha256": pins["runc"]},
                "cni-plugins": {"version": versions["cni_plugins"], "sha256": pins["cni-plugins"]},
                "crictl": {"enabled": False},
            }
            yield Lab(ms, Path(d), env, kh, str(image.ssh_key()), arts, versions["arch"], boot)
    finally:
        server.stop()
        net.destroy()


def summary_line(out: str) -> str:
    """up's closing line (`✓ up: … phases on … hosts …`), whatever is printed after it (the log's path)."""
    return next((line.strip() for line in reversed(out.splitlines()) if " up: " in line), "")
