"""Boot N local machines and run `kubeinit up` on them (see demo/up-local.sh).

Everything is real: Debian machines with systemd and OpenSSH on a private bridge, artifacts
from a mirror laid out like the upstream release sites (built from Debian's packages), and
kubeinit driving them over SSH with verified host keys. Where real Kubernetes binaries are
available ($KUBEINIT_REAL_K8S, or the cache .ci/run builds them into), the mirror also serves the
real kubelet, kubectl and kube-proxy and an image bundle (the control plane, kube-proxy, pause),
and a plain `kubeinit up` builds the whole cluster: the control plane as static pods under the
real kubelet, the other machines joined as workers, kube-proxy and CoreDNS, and the pod network
(`networking.cni: bridge`: no image to pull), ending with every node Ready. CoreDNS's image is not
in the bundle and nothing can be pulled here, so its pods wait for an image (its objects exist).
Without real binaries, `up` stops before the kubelet (--only preflight,...,control-plane).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "machines"))
import image  # noqa: E402
import machines as mlib  # noqa: E402
import mirror  # noqa: E402
import realk8s  # noqa: E402

BUILT_REAL_K8S = Path("/var/cache/kubeinit-tests/k8s-1.20.2/bin")  # where .ci/run builds them
HOST_PHASES = "preflight,runtime,kubernetes,certs,kubeconfig,etcd,control-plane"
POD_SUBNET = "10.244.0.0/16"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--only", help="phases to run (default: all of them with real binaries, else up to control-plane)")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = ap.parse_args()
    if why := mlib.preflight():
        print(f"cannot boot machines here: {why}", file=sys.stderr)
        return 2
    if realk8s.ENV not in os.environ and (BUILT_REAL_K8S / "kubelet").exists():
        os.environ[realk8s.ENV] = str(BUILT_REAL_K8S)
    no_real = realk8s.skip_reason()
    rootfs = image.build_rootfs()
    mirror_root, versions = mirror.build_mirror()
    pin = mirror.pins(mirror_root)
    if no_real:
        print(f"no real Kubernetes binaries ({no_real}): the demo stops before the kubelet", flush=True)
        served, kube_version = mirror_root, None
        kube = (
            f'  kubectl: {{version: "{versions["kubectl"]}", sha256: {pin["kubectl"]}}}\n'
            "  kubelet: {enabled: false}  # no kubelet build to make a mirror from\n"
        )
    else:
        served = realk8s.build(mirror_root)
        m = realk8s.manifest(served)
        kube_version = m["stands_for"]  # these binaries stand in for the release the cluster names
        kube = (
            f'  kubelet: {{version: "{m["version"]}", sha256: {m["files"]["kubelet"]["sha256"]}}}\n'
            f'  kubectl: {{version: "{m["version"]}", sha256: {m["files"]["kubectl"]["sha256"]}}}\n'
            "  images:\n"
            + "".join(
                f"    - {{name: {i['name']}, path: {served / i['path']}, sha256: {i['sha256']}}}\n" for i in m["images"]
            )
        )
    net = mlib.Network()
    if (holder := net.holder()) and holder != "cli":  # a test run's machines: leave them alone
        net = mlib.free_network()
    # kubelet_host: /dev/kmsg, kernel tunables; allow: pod-to-pod traffic crosses the bridge with pod addresses
    ms = mlib.up(args.hosts, network=net, rootfs=rootfs, kubelet_host=True, allow=(POD_SUBNET,))
    work = args.workdir
    work.mkdir(exist_ok=True, mode=0o700)
    known = work / "known_hosts"
    known.write_text("".join(m.known_hosts_line() + "\n" for m in ms))  # keys read off the machines' disks
    hosts = "\n".join(
        f"  - {{name: {m.name}, address: {m.ip}, role: {'control-plane' if i == 0 else 'worker'}, "
        f"ssh: {{user: root, key: {image.ssh_key()}}}}}"
        for i, m in enumerate(ms)
    )
    cluster = work / "cluster.yaml"
    # The mirror holds Debian's builds (and, with real binaries, this box's build of Kubernetes), not
    # upstream's: kubeinit's checksum table knows none of them, so each is pinned to the digest the
    # mirror recorded, as a site with its own builds would.
    version_line = f"kubernetesVersion: {kube_version}\n" if kube_version else ""
    # kubelet 1.20 (the stand-in) needs these; a current release does not. kube-proxy leaves
    # nf_conntrack_max alone: it is host-wide and read-only in a machine (as on LXC).
    components = (
        "components:\n  kubelet: {extraArgs: {container-runtime: remote}}\n"
        "  controllerManager: {extraArgs: {port: '0'}}\n  scheduler: {extraArgs: {port: '0'}}\n"
        "proxy: {config: {conntrack: {maxPerCore: 0}}}\n"
        f"networking: {{podSubnet: {POD_SUBNET}, cni: bridge}}  # no CNI image to pull here\n"
        if kube_version
        else ""
    )
    cluster.write_text(f"""apiVersion: kubeinit.dev/v1alpha1
kind: Cluster
name: demo
{version_line}hosts:
{hosts}
runtime:
  containerd: {{restrictOOMScoreAdj: true}}  # the machines are containers: no CAP_SYS_RESOURCE
{components}artifacts:
  mirror: {served}
  containerd: {{version: "{versions["containerd"]}", sha256: {pin["containerd"]}}}
  runc: {{version: "{versions["runc"]}", sha256: {pin["runc"]}}}
  cni-plugins: {{version: "{versions["cni_plugins"]}", sha256: {pin["cni-plugins"]}}}
  etcd: {{version: "{versions["etcd"]}", sha256: {pin["etcd"]}}}
{kube}  crictl: {{enabled: false}}   # no Debian package to build it from
""")
    print(f"cluster file: {cluster}", flush=True)
    only = args.only or (HOST_PHASES if no_real else None)
    cmd = [sys.executable, "-m", "kubeinit", "up", "-f", str(cluster), "--known-hosts", str(known)]
    cmd += ["--only", only] if only else []
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    print(
        f"\nmachines are up: {', '.join(f'{m.name} {m.ip}' for m in ms)}; "
        f"remove them with: {sys.executable} tests/machines/machines.py --bridge {net.bridge} down"
    )
    if rc == 0 and not no_real:
        kubeconfig = work / "kubeconfig"
        print(
            f"kubectl from here: {sys.executable} -m kubeinit kubeconfig -f {cluster} --known-hosts {known} "
            f"--kubeconfig {kubeconfig}; then {realk8s.binaries() / 'kubectl'} --kubeconfig {kubeconfig} get nodes"
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
