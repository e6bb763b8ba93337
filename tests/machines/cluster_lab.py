"""What the machine tests on the REAL Kubernetes components share: fresh machines that let the pod
range through, a workdir whose cluster file pins $KUBEINIT_REAL_K8S's binaries and image bundle
(realk8s.py) with what the 1.20 components need as a user would give it, and the real kubectl
run here with the admin kubeconfig, waits on the nodes being Ready, and busybox test pods.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import machines as mlib
import realk8s
import yaml
from image import ssh_key
from test_up import ROOT, Workdir

POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/12"
BUSYBOX = "docker.io/library/kubeinit-busybox:1"
READY_TIMEOUT = 180
UP_TIMEOUT = 1200


def fresh_machines(machine_image, machine_network, count: int, **options) -> Iterator[list[mlib.Machine]]:
    """`count` fresh machines whose egress guard lets the pod range through (pod-to-pod traffic
    crosses the machines' uplink with pod addresses), destroyed afterwards; for a module's fixture."""
    ms = mlib.up(count, machine_network, machine_image, allow=(POD_SUBNET,), kubelet_host=True, **options)
    try:
        yield ms
    finally:
        with concurrent.futures.ThreadPoolExecutor(len(ms)) as pool:
            list(pool.map(lambda m: m.destroy(), ms))


def components_for_1_20() -> dict:
    """What the kubelet, controller-manager and scheduler 1.20 need, as a user would give it."""
    return {
        "kubelet": {"extraArgs": {"container-runtime": "remote"}},
        "controllerManager": {"extraArgs": {"port": "0"}},
        "scheduler": {"extraArgs": {"port": "0"}},
    }


class RealWorkdir(Workdir):
    """A workdir whose cluster files take the real binaries and the image bundle from the real mirror."""

    real_root = ""

    def manifest(self) -> dict:
        return realk8s.manifest(Path(self.real_root))

    def real_artifacts(self, mirror: str, upgrade: bool = False) -> dict:
        """The real kubelet and kubectl, pinned, and every image of the bundle; with `upgrade`, what
        the bundle has for its upgrade version instead (as a user edits the pins for an upgrade):
        the kubelet and kubectl served for it and its images in place of the first version's."""
        m = self.manifest()
        u = m["upgrade"]
        files, version = (u["files"], u["stands_for"].lstrip("v")) if upgrade else (m["files"], m["version"])
        images = m["images"]
        if upgrade:
            images = [i for i in images if not i["name"].endswith(f":{m['stands_for']}")] + u["images"]
        return {
            "kubelet": {"version": version, "sha256": files["kubelet"]["sha256"]},
            "kubectl": {"version": version, "sha256": files["kubectl"]["sha256"]},
            "images": [{"name": i["name"], "url": f"{mirror}/{i['path']}", "sha256": i["sha256"]} for i in images],
        }

    def write_cluster(
        self,
        mirror: str,
        file: Path | None,
        name: str,
        roles: tuple[str, ...],
        networking: dict,
        upgrade: bool = False,
    ) -> Path:
        """A cluster file of this workdir's machines, in `roles`' order, all as root; with `upgrade`,
        edited for the bundle's upgrade: its kubernetesVersion and pins."""
        v, key, m = self.versions, str(ssh_key()), self.manifest()
        spec = {
            "apiVersion": "kubeinit.dev/v1alpha1",
            "kind": "Cluster",
            "name": name,
            "kubernetesVersion": m["upgrade"]["stands_for"] if upgrade else m["stands_for"],
            "networking": networking,
            "hosts": [
                {"name": h.name, "address": h.ip, "role": r, "ssh": {"user": "root", "key": key}}
                for h, r in zip(self.machines, roles, strict=True)
            ],
            "runtime": {"containerd": {"restrictOOMScoreAdj": True}},  # no CAP_SYS_RESOURCE in a machine
            "components": components_for_1_20(),
            # nf_conntrack_max is host-wide, read-only in a machine: leave it alone (as on LXC)
            "proxy": {"config": {"conntrack": {"maxPerCore": 0}}},
            "artifacts": self.pinned(
                {
                    "mirror": mirror,
                    "containerd": {"version": v["containerd"]},
                    "runc": {"version": v["runc"]},
                    "cni-plugins": {"version": v["cni_plugins"]},
                    "crictl": {"enabled": False},  # the mirror has none
                    "etcd": {"version": v["etcd"]},
                    **self.real_artifacts(mirror, upgrade),
                }
            ),
        }
        path = file or self.file
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path


W = TypeVar("W", bound=RealWorkdir)


class ClusterWork(RealWorkdir):
    """1 control plane + 2 workers, all as root, with the real binaries and the image bundle."""

    def write_spec(self, mirror: str, file: Path | None = None, **_) -> Path:
        networking = {"serviceSubnet": SERVICE_SUBNET, "podSubnet": POD_SUBNET, "cni": "bridge"}
        return self.write_cluster(mirror, file, "whole", ("control-plane", "worker", "worker"), networking)


def real_workdir(cls: type[W], name: str, machines, real_k8s_mirror, tmp_path_factory) -> W:
    """A module's workdir of class `cls`, on the real mirror, trusting the machines' host keys."""
    cls.real_root = str(real_k8s_mirror.root)
    w = cls(tmp_path_factory.mktemp(name), machines, real_k8s_mirror.url, real_k8s_mirror.versions)
    w.trust_all()
    return w


def kubeinit_here(work: Workdir, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`kubeinit <args>` run on this host, with the workdir's KUBEINIT_HOME."""
    return subprocess.run(
        [*work.argv()[:3], *args],
        capture_output=True,
        text=True,
        env=work.env(),
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def write_kubeconfig(work: Workdir, path: Path | None = None) -> subprocess.CompletedProcess:
    """`kubeinit kubeconfig -f` writing the admin kubeconfig (by default the one kubectl() reads)."""
    kubeconfig = path or work.root / "kubeconfig"
    argv = ("kubeconfig", "-f", str(work.file), "--known-hosts", str(work.known_hosts), "--kubeconfig", str(kubeconfig))
    return kubeinit_here(work, *argv)


def kubectl(work: Workdir, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real kubectl on this host, with the admin kubeconfig `kubeinit kubeconfig -f` wrote."""
    r = subprocess.run(
        [str(realk8s.binaries() / "kubectl"), "--kubeconfig", str(work.root / "kubeconfig"), *args],
        capture_output=True,
        text=True,
        timeout=90,
        input=stdin,
        check=False,
    )
    if check:
        assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stdout}{r.stderr}"
    return r


def until(what: str, probe: Callable[[], Any], timeout: float, every: float = 3.0) -> Any:
    """probe()'s first truthy answer within `timeout` seconds; else fail with its last one."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        last = probe()
        if last or time.monotonic() > deadline:
            break
        time.sleep(every)
    assert last, f"{what}: not within {timeout:.0f} s (last: {last!r})"
    return last


def nodes(work: Workdir) -> list[dict]:
    return json.loads(kubectl(work, "get", "nodes", "-o", "json").stdout)["items"]


def ready_states(items: list[dict]) -> dict[str, str]:
    """Each Node's Ready condition status ("True", "False", "Unknown"; "?" before it has one)."""
    return {
        n["metadata"]["name"]: next(
            (c["status"] for c in n["status"].get("conditions", []) if c["type"] == "Ready"), "?"
        )
        for n in items
    }


def wait_nodes_ready(work: Workdir, machines, what: str) -> list[dict]:
    """The Nodes once exactly `machines` are there and all Ready, within READY_TIMEOUT."""

    def ready() -> list[dict] | None:
        items = nodes(work)
        return items if ready_states(items) == {m.name: "True" for m in machines} else None

    return until(what, ready, READY_TIMEOUT)


def pod(name: str, node: str, command: str, labels: dict[str, str]) -> dict:
    """A busybox pod (the bundle's image, never pulled) running `sh -c command` on `node`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
            ],
        },
    }
