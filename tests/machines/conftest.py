"""Fixtures for tests on real Debian machines (systemd-nspawn on a private bridge).

    machine_image     session  Path of the cached rootfs (built on first use, about a minute)
    machine_network   session  machines.Network: bridge kib0, 10.77.0.1/24, machines kim1..;
                               if another live run holds it: kib1, 10.77.1.0/24, k1m1.., etc.
                               (env KUBEINIT_TEST_BRIDGE + KUBEINIT_TEST_CIDR force one);
                               removed at the end
    artifact_mirror   session  ServedMirror(url, versions, root): the upstream-like mirror,
                               served on the bridge address only
    real_k8s_mirror   session  ServedMirror of realk8s.py: the real kubelet/kubectl/kube-proxy
                               and an image bundle (control plane, kube-proxy with the
                               machines' iptables, pause, busybox); skips without
                               $KUBEINIT_REAL_K8S
    machine_count     module   3; override in a test module to get another number
    kubelet_host      module   True: the machines have what a kubelet needs from its host and a
                               machine lacks (machines.KUBELET_HOST_SCRIPT), as preflight requires of
                               every node; False in a module that tests a host without it
    machines          module   list[machines.Machine] kim1..kimN (network.prefix), fresh;
                               always torn down

Every test in this folder gets the `machines` marker, and all of them skip with one reason
when the host cannot run machines (not root, no namespaces, no nspawn).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # works with any --import-mode
import image  # noqa: E402
import machines as mlib  # noqa: E402
import mirror  # noqa: E402


class ServedMirror(NamedTuple):
    url: str  # e.g. http://10.77.0.1:41234 ; artifact = f"{url}/{upstream host}/{path}"
    versions: dict[str, str]  # arch, containerd, runc, cni_plugins, etcd, kubectl
    root: Path  # holds manifest.json


def pytest_configure(config):
    config.addinivalue_line("markers", "machines: boots real Debian machines with systemd-nspawn (root, Linux)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.machines)


@pytest.fixture(scope="session", autouse=True)
def _machines_preflight():
    if why := mlib.preflight():
        pytest.skip(why)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def machine_image(_machines_preflight) -> Path:
    return image.build_rootfs()


@pytest.fixture(scope="session")
def machine_network(_machines_preflight):
    # Both create() and free_network() first remove what a crashed earlier run left behind.
    if bridge := os.environ.get("KUBEINIT_TEST_BRIDGE"):
        net = mlib.Network(
            bridge,
            os.environ.get("KUBEINIT_TEST_CIDR", mlib.DEFAULT_CIDR),
            prefix=os.environ.get("KUBEINIT_TEST_PREFIX", "kim"),
        )
        net.create()
    else:
        net = mlib.free_network()
    # A plain SIGTERM (CI cancelling the job) would skip every teardown; as an exception it
    # unwinds through the fixtures, which remove machines, mounts, cgroups and the bridge.
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield net
    finally:
        net.destroy()
        for s, h in old.items():
            signal.signal(s, h)


@pytest.fixture(scope="session")
def artifact_mirror(machine_network) -> ServedMirror:
    root, versions = mirror.build_mirror()
    server = mirror.serve_mirror(root, machine_network.gateway, 0)
    try:
        yield ServedMirror(server.url, versions, root)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_k8s_mirror(artifact_mirror, machine_network, machine_image) -> ServedMirror:
    """The real Kubernetes binaries of $KUBEINIT_REAL_K8S and an image bundle built from them
    (realk8s.py), over the base mirror; skips with the reason when they are not there.
    `versions` holds "kubernetes" (the binaries' version) and "stands_for" (the cluster's)."""
    import realk8s

    if why := realk8s.skip_reason():
        pytest.skip(why)
    root = realk8s.build(artifact_mirror.root, rootfs=machine_image)
    m = realk8s.manifest(root)
    server = mirror.serve_mirror(root, machine_network.gateway, 0)
    try:
        yield ServedMirror(
            server.url, {**artifact_mirror.versions, "kubernetes": m["version"], "stands_for": m["stands_for"]}, root
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 3


@pytest.fixture(scope="module")
def kubelet_host() -> bool:
    """Give the machines /dev/kmsg and the kernel tunables a kubelet needs (machines.KUBELET_HOST_SCRIPT):
    preflight refuses a node without them, as the kubelet would fail there."""
    return True


@pytest.fixture(scope="module")
def machines(machine_image, machine_network, machine_count, kubelet_host) -> list[mlib.Machine]:
    ms = mlib.up(machine_count, machine_network, machine_image, kubelet_host=kubelet_host)
    try:
        yield ms
    finally:
        with concurrent.futures.ThreadPoolExecutor(len(ms)) as pool:
            list(pool.map(lambda m: m.destroy(), ms))
