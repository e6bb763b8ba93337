"""Boot N local machines and run `kubeinit up` on them (see demo/up-local.sh).

Everything is real: Debian machines with systemd and OpenSSH on a private bridge, artifacts
from a mirror laid out like the upstream release sites (built from Debian's packages), and
kubeinit driving them over SSH with verified host keys.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "machines"))
import image  # noqa: E402
import machines as mlib  # noqa: E402
import mirror  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--only", default="preflight,runtime,kubernetes,certs,kubeconfig,etcd,control-plane",
                    help="phases to run (the ones built today)")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = ap.parse_args()
    if why := mlib.preflight():
        print(f"cannot boot machines here: {why}", file=sys.stderr)
        return 2
    rootfs = image.build_rootfs()
    mirror_root, versions = mirror.build_mirror()
    net = mlib.Network()
    ms = mlib.up(args.hosts, network=net, rootfs=rootfs, kubelet_host=True)  # /dev/kmsg, kernel tunables
    work = args.workdir
    work.mkdir(exist_ok=True, mode=0o700)
    known = work / "known_hosts"
    known.write_text("".join(m.known_hosts_line() + "\n" for m in ms))  # keys read off the machines' disks
    hosts = "\n".join(
        f"  - {{name: {m.name}, address: {m.ip}, role: {'control-plane' if i == 0 else 'worker'}, "
        f"ssh: {{user: root, key: {image.ssh_key()}}}}}" for i, m in enumerate(ms))
    cluster = work / "cluster.yaml"
    # The mirror holds Debian's builds, not upstream's: kubeinit's checksum table knows none of them,
    # so each is pinned to the digest the mirror recorded, as a site with its own builds would.
    pin = mirror.pins(mirror_root)
    cluster.write_text(f"""apiVersion: kubeinit.dev/v1alpha1
kind: Cluster
name: demo
hosts:
{hosts}
runtime:
  containerd: {{restrictOOMScoreAdj: true}}  # the machines are containers: no CAP_SYS_RESOURCE
artifacts:
  mirror: {mirror_root}
  containerd: {{version: "{versions['containerd']}", sha256: {pin['containerd']}}}
  runc: {{version: "{versions['runc']}", sha256: {pin['runc']}}}
  cni-plugins: {{version: "{versions['cni_plugins']}", sha256: {pin['cni-plugins']}}}
  etcd: {{version: "{versions['etcd']}", sha256: {pin['etcd']}}}
  kubectl: {{version: "{versions['kubectl']}", sha256: {pin['kubectl']}}}
  kubelet: {{enabled: false}}  # no kubelet build to make a mirror from here
  crictl: {{enabled: false}}   # no Debian package to build it from
""")
    print(f"cluster file: {cluster}", flush=True)
    cmd = [sys.executable, "-m", "kubeinit", "up", "-f", str(cluster), "--known-hosts", str(known),
           "--only", args.only]
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    print(f"\nmachines are up: {', '.join(f'{m.name} {m.ip}' for m in ms)}; "
          f"remove them with: {sys.executable} tests/machines/machines.py down")
    return rc


if __name__ == "__main__":
    sys.exit(main())
