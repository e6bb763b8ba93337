"""`kubeinit init` run INSIDE one real Debian machine and `kubeinit join`, with the line init printed,
run INSIDE another: 2 nodes Ready (real kubectl); a wrong CA pin and an expired token refused.

Real here: kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubectl of
$KUBEINIT_REAL_K8S (v1.20.2 standing in for the cluster's kubernetesVersion), containerd, runc, the CNI
plugins, etcd, systemd. kubeinit runs in the machines from this checkout and its Python, bind-mounted
read-only at the same paths (the machines have no Python and no Internet). containerd, the kubelet and
the images are put on both machines first by `kubeinit up --only preflight,runtime,kubernetes,images`
from here, as a user without a package mirror would. The pod network is `networking.cni: bridge`: the
joined node writes its own conflist from its Node's podCIDR (join's cni phase).
What 1.20 needs besides goes through the cluster file and a JoinConfiguration, as a user's would.
Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import machines as mlib
import pytest
import yaml
from cluster_lab import (
    POD_SUBNET,
    READY_TIMEOUT,
    RealWorkdir,
    fresh_machines,
    kubectl,
    nodes,
    ready_states,
    real_workdir,
)
from test_up import ROOT

pytestmark = pytest.mark.machines

INSIDE = "/root/files"  # the cluster file and JoinConfiguration, inside the machines (not ./kubeinit: -m)
JOIN_LINE = re.compile(r"kubeinit join (\S+) --token (\S+) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})")
# what a failed join must not leave behind: kubeadm's files, the kubelet's config, the CNI config
WRITTEN = (
    "/etc/kubernetes/pki/ca.crt /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/kubelet.conf "
    "/var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env /etc/cni/net.d"
)
STATE = f"for p in {WRITTEN}; do [ -e $p ] && ls -lad --time-style=+%s.%N $p; done; systemctl is-active kubelet; true"


def python_binds() -> tuple[str, ...]:
    """What `python -m kubeinit` needs from here, seen at the same paths inside: this checkout, the
    virtualenv, and the interpreter it was made from (its prefix, or its binary and stdlib when that
    prefix is the system's /usr, which the machine has its own of)."""
    paths = {str(ROOT), sys.prefix}
    base = Path(sys.base_prefix)
    if str(base) in ("/usr", "/usr/local"):
        v = f"python{sys.version_info.major}.{sys.version_info.minor}"
        paths |= {os.path.realpath(sys.executable), str(base / "lib" / v)}
    else:
        paths.add(str(base))
    return tuple(sorted(p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)))


@pytest.fixture(scope="module")
def machines(machine_image, machine_network):
    yield from fresh_machines(machine_image, machine_network, 2, binds=python_binds())


class JoinWork(RealWorkdir):
    """A control plane and a worker, as root, with the real binaries and the image bundle."""

    def write_spec(self, mirror: str, file: Path | None = None, **_) -> Path:
        networking = {"podSubnet": POD_SUBNET, "cni": "bridge"}
        return self.write_cluster(mirror, file, "joined", ("control-plane", "worker"), networking)


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> JoinWork:
    return real_workdir(JoinWork, "join", machines, real_k8s_mirror, tmp_path_factory)


def kubeinit(m, args: str, timeout: float = 600) -> mlib.Result:
    """`kubeinit <args>` run inside machine m, as root, from the bind-mounted checkout."""
    env = "NO_COLOR=1 COLUMNS=200 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1"
    return m.ssh(f"cd /root && {env} {shlex.quote(sys.executable)} -m kubeinit {args}", check=False, timeout=timeout)


def put_text(m, path: str, text: str) -> None:
    m.ssh(f"mkdir -p {os.path.dirname(path)} && cat > {path} <<'EOF'\n{text}EOF\nchmod 0600 {path}")


def join_config(discovery: str) -> str:
    """The worker's JoinConfiguration: what the 1.20 kubelet needs, and how long discovery may take."""
    return yaml.safe_dump(
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "JoinConfiguration",
            "nodeRegistration": {"kubeletExtraArgs": [{"name": "container-runtime", "value": "remote"}]},
            "timeouts": {"discovery": discovery},
        },
        sort_keys=False,
    )


def one_error(r: mlib.Result) -> str:
    lines = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.out + r.err
    return lines[0]


LINE: dict[str, str] = {}


def test_the_hosts_get_containerd_the_kubelet_and_the_images_from_here(work, machines):
    r = work.up("--only", "preflight,runtime,kubernetes,images", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    for m in machines:
        assert m.ssh(f"{shlex.quote(sys.executable)} -c 'import kubeinit'", check=False).ok, "kubeinit runs inside"


def test_init_inside_the_first_machine_prints_the_join_line(work, machines):
    cp = machines[0]
    put_text(cp, f"{INSIDE}/cluster.yaml", work.file.read_text())
    r = kubeinit(cp, f"init --config {INSIDE}/cluster.yaml")  # upload-certs skips without --upload-certs
    (work.root / "init.out").write_text(r.out + "\n--- stderr\n" + r.err)
    assert r.rc == 0, r.out + r.err
    found = JOIN_LINE.search(r.out)
    assert found, r.out
    assert found.group(1) == f"{cp.ip}:6443", found.group(0)
    LINE["line"] = found.group(0)
    admin = cp.ssh("cat /etc/kubernetes/admin.conf").out
    kubeconfig = work.root / "kubeconfig"
    kubeconfig.write_text(admin)
    kubeconfig.chmod(0o600)
    assert kubectl(work, "get", "--raw", "/readyz").stdout.strip() == "ok"


def test_a_wrong_pin_is_refused_in_one_line_and_nothing_is_written(work, machines):
    w = machines[1]
    put_text(w, f"{INSIDE}/join.yaml", join_config("20s"))
    before = w.ssh(STATE).out
    wrong = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, LINE["line"])
    r = kubeinit(w, f"{wrong.removeprefix('kubeinit ')} --config {INSIDE}/join.yaml", timeout=120)
    assert r.rc != 0, r.out + r.err
    line = one_error(r)
    assert "pin" in line.lower() or "hash" in line.lower(), line
    assert w.ssh(STATE).out == before


def test_an_expired_token_is_refused_in_one_line_and_nothing_is_written(work, machines):
    cp, w = machines
    made = kubeinit(cp, "token create --ttl 1s --description 'expires at once'", timeout=60)
    assert made.rc == 0, made.out + made.err
    token = made.out.strip().splitlines()[-1].strip()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token), made.out
    time.sleep(3)
    before = w.ssh(STATE).out
    expired = LINE["line"].replace(JOIN_LINE.search(LINE["line"]).group(2), token)
    t0 = time.monotonic()
    r = kubeinit(w, f"{expired.removeprefix('kubeinit ')} --config {INSIDE}/join.yaml", timeout=120)
    assert r.rc != 0, r.out + r.err
    line = one_error(r)
    assert token not in r.out + r.err, "the token's secret is never printed"
    assert time.monotonic() - t0 < 90, "refused within timeouts.discovery, not kubeadm's 5 minutes"
    assert w.ssh(STATE).out == before, line


def test_join_inside_the_second_machine_with_the_printed_line_gives_two_ready_nodes(work, machines):
    cp, w = machines
    r = kubeinit(w, f"{LINE['line'].removeprefix('kubeinit ')} --config {INSIDE}/join.yaml")
    (work.root / "join.out").write_text(r.out + "\n--- stderr\n" + r.err)
    assert r.rc == 0, r.out + r.err

    deadline, state = time.monotonic() + READY_TIMEOUT, {}
    while time.monotonic() < deadline:
        state = ready_states(nodes(work))
        if state == {cp.name: "True", w.name: "True"}:
            break
        time.sleep(3)
    if state != {cp.name: "True", w.name: "True"}:
        node = json.loads(kubectl(work, "get", "node", w.name, "-o", "json").stdout)
        why = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
        seen = w.ssh("ls -la /etc/cni/net.d; journalctl -u kubelet --no-pager -o cat | tail -15", check=False).out
        raise AssertionError(f"{state}\n{why}\n{seen}\njoin printed:\n{r.out[-3000:]}")
    table = kubectl(work, "get", "nodes").stdout
    assert re.search(rf"^{w.name}\s+Ready\s", table, re.MULTILINE), table
    # the worker's bridge has the podCIDR its Node was given, and a route to the control plane's pods
    by_name = {n["metadata"]["name"]: n for n in nodes(work)}
    conflist = w.ssh("cat /etc/cni/net.d/10-kubeinit-bridge.conflist").out
    assert by_name[w.name]["spec"]["podCIDR"] in conflist, conflist
    routes = w.ssh("ip -o route show proto 147").out
    assert f"{by_name[cp.name]['spec']['podCIDR']} via {cp.ip}" in routes, routes
