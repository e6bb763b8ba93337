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

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RERUNS = 5
LOGINS = 9
sys.path.insert(0, str(ROOT / "tests" / "machines"))


def main() -> None:
    import image
    import machines as mlib
    import mirror

    if why := mlib.preflight():
        print(f"skipped: {why}")
        return
    root, versions = mirror.build_mirror()
    net = mlib.free_network()
    server = mirror.serve_mirror(root, net.gateway, 0)
    try:
        ms = mlib.up(4, net, image.build_rootfs(), kubelet_host=True)  # what preflight requires of a kubelet host
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            env = {**os.environ, "KUBEINIT_HOME": str(d / "home"), "NO_COLOR": "1"}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([sys.executable, "-m", "kubeinit", "version"], check=True, capture_output=True, env=env)
            kh = d / "known_hosts"
            kh.write_text("".join(m.known_hosts_line() + "\n" for m in ms))
            key = str(image.ssh_key())
            pins = mirror.pins(root)  # the mirror's builds are Debian's: pinned, as a site's own builds would be
            arts = {
                "mirror": server.url,
                "allowInsecureMirror": True,
                "containerd": {"version": versions["containerd"], "sha256": pins["containerd"]},
                "runc": {"version": versions["runc"], "sha256": pins["runc"]},
                "cni-plugins": {"version": versions["cni_plugins"], "sha256": pins["cni-plugins"]},
                "crictl": {"enabled": False},
            }

            def spec(name: str, hosts: list[dict]) -> Path:
                p = d / f"{name}.yaml"
                p.write_text(
                    yaml.safe_dump(
                        {
                            "apiVersion": "kubeinit.dev/v1alpha1",
                            "kind": "Cluster",
                            "name": name,
                            "kubernetesVersion": "v1.32.5",
                            "hosts": hosts,
                            "artifacts": arts,
                            # a machine has no CAP_SYS_RESOURCE (preflight says so otherwise)
                            "runtime": {"containerd": {"restrictOOMScoreAdj": True}},
                        }
                    )
                )
                return p

            def host(m, role="worker", user="root", bastion=None) -> dict:
                ssh = {"user": user, "key": key, **({"bastion": f"root@{bastion.ip}"} if bastion else {})}
                return {"name": m.name, "address": m.ip, "role": role, "ssh": ssh}

            changes: list[str] = []  # what each re-run reported

            def up(file: Path, again: bool = False) -> float:
                t = time.perf_counter()
                r = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "kubeinit",
                        "up",
                        "-f",
                        str(file),
                        "--known-hosts",
                        str(kh),
                        "--only",
                        "preflight,runtime",
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                took = time.perf_counter() - t
                if r.returncode != 0:
                    raise SystemExit(f"kubeinit up failed:\n{r.stdout}\n{r.stderr}")
                if again:
                    changes.append(r.stdout.strip().splitlines()[-1].split("; ", 1)[-1])
                return took

            one = spec("one", [host(ms[0], "control-plane")])
            three = spec("three", [host(ms[1], "control-plane"), host(ms[2], user="kube"), host(ms[3], bastion=ms[1])])
            t = time.perf_counter()
            _warm_cache(env, three, versions["arch"])
            td = time.perf_counter() - t
            t1 = up(one)
            t3 = up(three)
            again = sorted(up(three, again=True) for _ in range(RERUNS))
            t3b = again[len(again) // 2]
            t1b = sorted(up(one, again=True) for _ in range(RERUNS))[RERUNS // 2]
            quick, slow = (_login_and_first_command(one, kh, q) for q in (True, False))
    finally:
        server.stop()
        net.destroy()
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


def _warm_cache(env: dict, file: Path, arch: str) -> None:
    """Download and verify the artifacts once, as the first `up` would, outside the timings."""
    code = (
        "from kubeinit import artifacts, spec\n"
        f"s = spec.load_file({str(file)!r})\n"
        "for n in ('containerd', 'runc', 'cni-plugins'):\n"
        f"    artifacts.fetch(artifacts.release(s, n, {arch!r}))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


if __name__ == "__main__":
    main()
