"""A real control plane on 127.0.0.1, started from the files kubeinit writes.

The binaries come from $KUBEINIT_REAL_K8S (kube-apiserver, kube-controller-manager,
kube-scheduler, kubelet, kubectl, etcd, etcdctl); without it every test here is skipped with
that reason. kubeinit makes the PKI and kubeconfigs with its own CLI (`init phase certs all`,
`kubeconfig all`, into a temp dir); etcd runs with the ExecStart of kubeinit's etcd unit and the
three components with the command of kubeinit's static pod manifests, both rendered by kubeinit's
own code and parsed back. Only what loopback needs is rewritten: etcd's data dir, and ports
(etcd's, the components' secure ports) to free ones; v1.20.2 stands in for the cluster's
v1.31, and what it needs besides comes in through the cluster file's extraArgs.

    missing() -> why the tests cannot run ("" when they can)    real_bin(name) -> path
    control_plane (session fixture, imported by conftest.py) -> ControlPlane
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
REAL = os.environ.get("KUBEINIT_REAL_K8S", "")
NEEDED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl", "etcd", "etcdctl")
KUBERNETES_VERSION = "v1.31.4"  # what the cluster names; the real binaries (v1.20.2 here) stand in


def missing() -> str:
    if not REAL:
        return (
            "KUBEINIT_REAL_K8S is not set (a directory with real kube-apiserver, kube-controller-manager, "
            "kube-scheduler, kubelet, kubectl, etcd and etcdctl; .ci/run builds them)"
        )
    gone = [n for n in NEEDED if not os.access(os.path.join(REAL, n), os.X_OK)]
    return f"KUBEINIT_REAL_K8S={REAL} lacks {', '.join(gone)}" if gone else ""


def real_bin(name: str) -> str:
    return os.path.join(REAL, name)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def kubeinit(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubeinit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )


@dataclass
class ControlPlane:
    root: Path
    config: Path  # the cluster file
    etc: Path  # --kubeconfig-dir; pki/ beneath it is --cert-dir
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    wait_result: subprocess.CompletedProcess | None = None  # wait-control-plane, started before the server
    waiting_when_started: bool = False  # it was still waiting, on nothing, when the API server was started
    commands: dict[str, list[str]] = field(default_factory=dict)  # the components' argv as run

    @property
    def admin_conf(self) -> Path:
        return self.etc / "admin.conf"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    def dirs(self) -> list[str]:
        return ["--config", str(self.config), "--cert-dir", str(self.etc / "pki"), "--kubeconfig-dir", str(self.etc)]

    def phase(self, name: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return kubeinit("init", "phase", *name.split(), *self.dirs(), timeout=timeout)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            [real_bin("kubectl"), "--kubeconfig", str(kubeconfig or self.admin_conf), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root
        )
        log.close()
        self.processes[name] = p
        return p

    def log(self, name: str, lines: int = 15) -> str:
        text = (self.root / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        for p in self.processes.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.processes.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)


def cluster_file(path: Path, etc: Path, api_port: int) -> None:
    """The test cluster: a supported kubernetesVersion; what v1.20.2 needs besides, and binding to
    loopback, through the user-facing extraArgs."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeinit.dev/v1alpha1",
                "kind": "Cluster",
                "name": "loop",
                "kubernetesVersion": KUBERNETES_VERSION,
                "bindPort": api_port,
                "kubeconfigDir": str(etc),
                "pki": {"certificatesDir": str(etc / "pki"), "keyAlgorithm": "ECDSA-P256"},
                "hosts": [{"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"}],
                "components": {
                    "apiServer": {"extraArgs": {"bind-address": "127.0.0.1"}},
                    "controllerManager": {"extraArgs": {"port": "0"}},  # 1.20 opens 10252 on all interfaces otherwise
                    "scheduler": {"extraArgs": {"port": "0"}},
                    "kubelet": {"extraArgs": {"container-runtime": "remote"}},  # gone in 1.27+, needed by 1.20
                },
            }
        )
    )


def rendered(config: Path):
    """kubeinit's own Context for the cluster file: the etcd unit and manifests come from its code."""
    from kubeinit import spec as specmod
    from kubeinit.connection import LocalConnection
    from kubeinit.context import Context, Options, Target

    spec = specmod.load_file(str(config))
    ctx = Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options(dry_run=True))
    return ctx, ctx.targets[0]


def exec_start(unit: str) -> list[str]:
    """The unit's ExecStart as argv (systemd's continuation lines, % and $ escapes undone)."""
    text = re.sub(r"\\\n", " ", unit)
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart=").replace("%%", "%").replace("$$", "$"))


def manifest_command(text: str) -> list[str]:
    pod = yaml.safe_load(text)
    return list(pod["spec"]["containers"][0]["command"])


def set_flag(argv: list[str], name: str, value: str) -> list[str]:
    """argv with --name=value (replaced, or added)."""
    out = [a for a in argv if not a.startswith(f"--{name}=")]
    return [*out, f"--{name}={value}"]


def flag(argv: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))


def wait_for(what: str, ok, timeout: float, interval: float = 0.2, why=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s; {why()}")
        time.sleep(interval)


def https_ok(port: int, path: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, ctx.wrap_socket(raw) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return s.recv(64).split(b" ")[1] == b"200"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    if missing():
        pytest.skip(missing())
    from kubeinit.phases import control_plane as cpm
    from kubeinit.phases import etcd as etcdm

    root = tmp_path_factory.mktemp("loopback")
    etc = root / "etc"
    api, e_client, e_peer, e_metrics, cm_port, sched_port = free_ports(6)
    config = root / "cluster.yaml"
    cluster_file(config, etc, api)
    cp = ControlPlane(root, config, etc, api)
    try:
        for phase in ("certs all", "kubeconfig all"):  # the CLI a user runs
            r = cp.phase(phase)
            assert r.returncode == 0, f"{phase}: {r.stdout}{r.stderr}"
        ctx, target = rendered(config)

        # etcd: kubeinit's unit, its data dir and ports moved
        unit = etcdm.unit(ctx, target, ctx.spec.artifact("etcd").version, "amd64")
        argv = exec_start(unit)
        ports = {str(etcdm.CLIENT_PORT): str(e_client), str(etcdm.PEER_PORT): str(e_peer), "2381": str(e_metrics)}

        def moved(value: str) -> str:
            urls = dict.fromkeys(
                re.sub(r":(2379|2380|2381)\b", lambda m: ":" + ports[m[1]], u) for u in value.split(",")
            )  # 127.0.0.1 twice on loopback: once
            return ",".join(urls)

        etcd_argv = [real_bin("etcd")]
        for a in argv[1:]:
            k, _, v = a.partition("=")
            if k == "--data-dir":
                v = str(root / "etcd-data")
            elif "urls" in k or k == "--initial-cluster":
                v = moved(v)
            etcd_argv.append(f"{k}={v}")
        (root / "etcd-data").mkdir(mode=0o700)
        cp.start("etcd", etcd_argv)

        # the static pods' commands, from kubeinit's manifests
        commands = {
            n: manifest_command(cpm.manifest(ctx, target, n)) for n in ("apiserver", "controller-manager", "scheduler")
        }
        apiserver = commands["apiserver"]
        apiserver = set_flag(apiserver, "etcd-servers", moved(flag(apiserver, "etcd-servers")))
        controller = set_flag(commands["controller-manager"], "secure-port", str(cm_port))
        scheduler = set_flag(commands["scheduler"], "secure-port", str(sched_port))
        cp.commands = {"apiserver": apiserver, "controller-manager": controller, "scheduler": scheduler}

        # wait-control-plane first, as in a real init: the server is not even started yet
        waiter = subprocess.Popen(
            [sys.executable, "-m", "kubeinit", "init", "phase", "wait-control-plane", *cp.dirs()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
        time.sleep(1.0)
        cp.waiting_when_started = waiter.poll() is None and not https_ok(api, "/readyz")
        cp.start("kube-apiserver", [real_bin("kube-apiserver"), *apiserver[1:]])
        cp.start("kube-controller-manager", [real_bin("kube-controller-manager"), *controller[1:]])
        cp.start("kube-scheduler", [real_bin("kube-scheduler"), *scheduler[1:]])
        try:
            out, err = waiter.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            waiter.kill()
            out, err = waiter.communicate()
        cp.wait_result = subprocess.CompletedProcess(waiter.args, waiter.returncode, out, err)
        # the tests need the server whatever the waiter said
        wait_for("kube-apiserver /readyz", lambda: https_ok(api, "/readyz"), 90, why=lambda: cp.log("kube-apiserver"))
        for name, p in cp.processes.items():
            assert p.poll() is None, f"{name} exited: {cp.log(name)}"
        yield cp
    finally:
        cp.stop()
