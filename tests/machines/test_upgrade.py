"""`kubeinit upgrade` on real Debian machines with the REAL Kubernetes components: a cluster made by
`kubeinit up` at realk8s.STANDS_FOR (1 control plane + 1 worker, `networking.cni: bridge`), its
file then edited to realk8s.UPGRADE_TO with the upgrade's pins (cluster_lab's upgrade variant).

The same v1.20.2 binaries stand in for both versions: the bundle holds the control plane's and
kube-proxy's images tagged UPGRADE_TO too (in tarballs of their own, so the upgrade imports them),
and the mirror serves a kubelet and kubectl for UPGRADE_TO whose sha256 differs (the same ELF
with a note appended), so kubeinit installs them and the kubelets restart as on a real upgrade.
A patch upgrade: a minor one (1.32) would make kubeinit probe the scheduler's /livez, which 1.20
lacks. Checked: `up` refusing the new version, `upgrade plan`, the refusals (two minors up, a
downgrade), `upgrade apply --dry-run` changing nothing, then `upgrade apply --yes` rolling through
the hosts one at a time (static pods, kubelets, the worker drained and uncordoned, kube-proxy,
kubeadm-config), and re-runs that only skip. Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import realk8s
import yaml
from cluster_lab import (
    POD_SUBNET,
    READY_TIMEOUT,
    SERVICE_SUBNET,
    UP_TIMEOUT,
    RealWorkdir,
    fresh_machines,
    kubectl,
    pod,
    real_workdir,
    until,
    wait_nodes_ready,
    write_kubeconfig,
)
from test_up import ROOT, errors, stderr_lines

pytestmark = pytest.mark.machines

FROM, TO = realk8s.STANDS_FOR, realk8s.UPGRADE_TO
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MANIFESTS = "/etc/kubernetes/manifests"
TIMES: dict[str, float] = {}  # wall seconds of each kubeinit run, printed at the end


@pytest.fixture(scope="module")
def machines(machine_image, machine_network):
    yield from fresh_machines(machine_image, machine_network, 2)


class UpgradeWork(RealWorkdir):
    """1 control plane + 1 worker, as root; `upgraded` is the same cluster's file for UPGRADE_TO."""

    def write_spec(self, mirror: str, file: Path | None = None, upgrade: bool = False, **_) -> Path:
        self.mirror = mirror
        networking = {"serviceSubnet": SERVICE_SUBNET, "podSubnet": POD_SUBNET, "cni": "bridge"}
        return self.write_cluster(mirror, file, "upgrade", ("control-plane", "worker"), networking, upgrade)

    @property
    def upgraded(self) -> Path:
        path = self.root / "upgraded.yaml"
        if not path.exists():
            self.write_spec(self.mirror, path, upgrade=True)
        return path

    def at_version(self, version: str) -> Path:
        """The upgraded file naming another kubernetesVersion (its pins unchanged)."""
        spec = yaml.safe_load(self.upgraded.read_text())
        spec["kubernetesVersion"] = version
        path = self.root / f"at-{version}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path


@pytest.fixture(scope="module")
def work(machines, real_k8s_mirror, tmp_path_factory) -> UpgradeWork:
    return real_workdir(UpgradeWork, "upgrade", machines, real_k8s_mirror, tmp_path_factory)


def kubeinit(work: UpgradeWork, what: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`kubeinit <args> --known-hosts ...` run here (no terminal: nothing can be asked), its output
    kept in the workdir and its wall time in TIMES under `what`."""
    t0 = time.monotonic()
    r = subprocess.run(
        [*work.argv()[:3], *args, "--known-hosts", str(work.known_hosts)],
        capture_output=True,
        text=True,
        env=work.env(),
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    TIMES[what] = time.monotonic() - t0
    (work.root / f"{what}.out").write_text(f"{r.args}\nexit {r.returncode}\n{r.stdout}\n--- stderr\n{r.stderr}")
    return r


def apply(work: UpgradeWork, what: str, file: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return kubeinit(work, what, "upgrade", "apply", "-f", str(file), *args, timeout=timeout)


def plan(work: UpgradeWork, what: str, file: Path) -> subprocess.CompletedProcess:
    return kubeinit(work, what, "upgrade", "plan", "-f", str(file))


def up(work: UpgradeWork, what: str, file: Path) -> subprocess.CompletedProcess:
    r = work.up(file=file, timeout=UP_TIMEOUT)
    TIMES[what] = r.seconds
    (work.root / f"{what}.out").write_text(f"exit {r.returncode}\n{r.stdout}\n--- stderr\n{r.stderr}")
    return r


def one_error(r: subprocess.CompletedProcess) -> str:
    """The run's single error line (anything else on stderr but the plain-http mirror warning fails)."""
    lines = errors(r)
    assert len(lines) == 1 and stderr_lines(r.stderr) == lines, r.stdout + r.stderr
    return lines[0]


def get(work: UpgradeWork, *args: str) -> dict:
    return json.loads(kubectl(work, "--request-timeout", "20s", "get", *args, "-o", "json").stdout)


def cluster_version(work: UpgradeWork) -> str:
    cm = get(work, "-n", "kube-system", "configmap", "kubeadm-config")
    return yaml.safe_load(cm["data"]["ClusterConfiguration"])["kubernetesVersion"]


def ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))


HOST_STATE = (
    "systemctl show -p MainPID --value kubelet; "
    "cd / && sha256sum usr/local/bin/kubelet usr/local/bin/kubectl var/lib/kubelet/config.yaml "
    f"$(ls {MANIFESTS}/*.yaml 2>/dev/null); "
    "ctr -n k8s.io images ls -q | sort"
)


def state(work: UpgradeWork, machines) -> dict:
    """What an upgrade changes, on the hosts and in the cluster: each kubelet's MainPID, the files it
    installs and writes (digests), containerd's images; kubeadm-config, kube-proxy's DaemonSet, each
    Node's schedulability, the control plane's mirror pods' config hashes, the busybox pod's uid."""
    hosts = {m.name: m.ssh(HOST_STATE).out.split("\n") for m in machines}
    ds = get(work, "-n", "kube-system", "daemonset", "kube-proxy")
    cp = machines[0].name
    pods = {p["metadata"]["name"]: p for p in get(work, "-n", "kube-system", "pods")["items"]}
    return {
        "hosts": hosts,
        "kubeadm-config": get(work, "-n", "kube-system", "configmap", "kubeadm-config")["metadata"]["resourceVersion"],
        "kube-proxy": (ds["metadata"]["resourceVersion"], ds["spec"]["template"]["spec"]["containers"][0]["image"]),
        "unschedulable": {
            n["metadata"]["name"]: n["spec"].get("unschedulable", False) for n in get(work, "nodes")["items"]
        },
        "mirror pods": {
            c: pods.get(f"{c}-{cp}", {}).get("metadata", {}).get("annotations", {}).get("kubernetes.io/config.hash")
            for c in CONTROL_PLANE
        },
        "pods": {p["metadata"]["uid"]: p["spec"].get("nodeName") for p in get(work, "pods")["items"]},
    }


BEFORE: dict[str, dict] = {}


def on_the_worker(name: str, node: str) -> dict:
    """A Deployment of one busybox pod on `node`: drain evicts it (as kubectl drain, it refuses a pod
    no controller would bring back), and its replacement waits, Pending, until the node is uncordoned."""
    template = pod(name, node, "exec sleep 100000", {"app": name})
    del template["apiVersion"], template["kind"], template["metadata"]["name"], template["metadata"]["namespace"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


def pods_of(work: UpgradeWork, app: str) -> dict[str, dict]:
    """The pods of on_the_worker(app) by uid, Ready or not."""
    return {p["metadata"]["uid"]: p for p in get(work, "pods", "-l", f"app={app}")["items"]}


def running_on(work: UpgradeWork, app: str, node: str) -> str:
    """The uid of on_the_worker(app)'s pod, once exactly one runs on `node`, Ready."""

    def one() -> str | None:
        pods = pods_of(work, app)
        ok = [u for u, p in pods.items() if p["spec"].get("nodeName") == node and ready(p)]
        return ok[0] if len(ok) == 1 == len(pods) else None

    return until(f"{app}'s pod Ready on {node}", one, READY_TIMEOUT)


def up_with_a_pod_on_the_worker(work: UpgradeWork, machines) -> dict:
    """`kubeinit up` of the cluster at FROM, a busybox pod of Deployment `sleeper` on the worker, the
    admin kubeconfig written, and the control plane's mirror pods Ready: the state() then."""
    cp, worker = machines
    r = up(work, "up", work.file)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✓ 2 of 2 nodes Ready" in r.stdout, r.stdout
    assert write_kubeconfig(work).returncode == 0
    wait_nodes_ready(work, machines, "2 nodes Ready")
    kubectl(work, "apply", "-f", "-", stdin=yaml.safe_dump(on_the_worker("sleeper", worker.name)))
    running_on(work, "sleeper", worker.name)
    assert cluster_version(work) == FROM

    def mirror_pods_ready() -> bool:
        pods = {p["metadata"]["name"]: p for p in get(work, "-n", "kube-system", "pods")["items"]}
        return all(f"{c}-{cp.name}" in pods and ready(pods[f"{c}-{cp.name}"]) for c in CONTROL_PLANE)

    until("the control plane's mirror pods Ready", mirror_pods_ready, 240)  # 1.20 posts them after ~80 s
    return state(work, machines)


def test_up_at_the_first_version_with_a_pod_on_the_worker(work, machines):
    BEFORE.update(up_with_a_pod_on_the_worker(work, machines))
    assert len(BEFORE["pods"]) == 1, BEFORE["pods"]


def test_up_with_the_new_version_is_refused_pointing_at_upgrade_apply(work, machines):
    r = up(work, "up-refused", work.upgraded)
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_error(r)
    assert f"runs {FROM}" in line and f"says {TO}" in line, line
    assert f"kubeinit upgrade apply -f {work.upgraded}" in line, line
    assert state(work, machines) == BEFORE


def test_plan_prints_both_versions_and_the_apply_line(work, machines):
    r = plan(work, "plan", work.upgraded)
    assert r.returncode == 0, r.stdout + r.stderr
    assert errors(r) == [], r.stderr
    assert re.search(
        rf"upgrade {FROM} -> {TO}: run `kubeinit upgrade apply -f {re.escape(str(work.upgraded))}", r.stdout
    )
    for m in machines:
        assert m.name in r.stdout, r.stdout  # the table has a row per node
    assert state(work, machines) == BEFORE


@pytest.mark.parametrize(
    "version, says",
    [("v1.33.0", "upgrade one minor at a time: first to v1.32.x"), ("v1.31.3", "does not downgrade")],
    ids=["two-minors-up", "downgrade"],
)
def test_a_version_two_minors_up_or_older_is_refused_before_anything_changes(work, machines, version, says):
    file = work.at_version(version)
    for what, r in (
        (f"plan-{version}", lambda w: plan(work, w, file)),
        (f"apply-{version}", lambda w: apply(work, w, file, "--yes")),
    ):
        got = r(what)
        assert got.returncode == 2, got.stdout + got.stderr
        line = one_error(got)
        assert version in line and FROM in line and says in line, line
    assert state(work, machines) == BEFORE


def test_apply_dry_run_changes_nothing(work, machines):
    r = apply(work, "apply-dry-run", work.upgraded, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    for m in machines:
        assert m.name in r.stdout, r.stdout  # every host's plan
    assert state(work, machines) == BEFORE


def turns(out: str) -> list[tuple[str, str]]:
    """(host, phase) of each phase header (`[phase] on host`) after the run's first, where it reaches,
    probes and locks every host before the first turn."""
    headers = re.findall(r"^\[([^\]]+)\] on (.+)$", out, re.MULTILINE)
    assert headers and headers[0][0] == "hosts", out
    return [(hosts, phase) for phase, hosts in headers[1:]]


def test_apply_upgrades_the_hosts_one_at_a_time(work, machines):
    cp, worker = machines
    started = time.time()
    r = apply(work, "apply", work.upgraded, "--yes", timeout=UP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert errors(r) == [], r.stderr
    # one host at a time: every phase of the control plane's turn, its upload-config and addons too,
    # over before the worker's turn begins with its drain
    order = turns(r.stdout)
    assert {h for h, _ in order} == {cp.name, worker.name}, order
    first_worker = next(i for i, (h, _) in enumerate(order) if h == worker.name)
    assert all(h == cp.name for h, _ in order[:first_worker]), order
    assert all(h == worker.name for h, _ in order[first_worker:]), order
    assert order[0] == (cp.name, "preflight") and order[first_worker - 1] == (cp.name, "addon/kube-proxy"), order
    assert order[first_worker] == (worker.name, "drain"), order

    upgrade = work.manifest()["upgrade"]
    after = state(work, machines)
    for m in machines:
        pid, *_ = after["hosts"][m.name]
        assert pid not in ("", "0", BEFORE["hosts"][m.name][0]), f"{m.name}: the kubelet was not restarted"
        assert m.ssh("systemctl is-active kubelet").out.strip() == "active"
        # the running kubelet is the new binary (its file's digest, as it was executed)
        exe = m.ssh(f"sha256sum /proc/{pid}/exe /usr/local/bin/kubelet").out.split()
        assert exe[0] == exe[2] == upgrade["files"]["kubelet"]["sha256"], (m.name, exe)
        kubectl_sum = m.ssh("sha256sum /usr/local/bin/kubectl").out.split()[0]
        assert kubectl_sum == upgrade["files"]["kubectl"]["sha256"], m.name
        held = set(after["hosts"][m.name])
        assert {i["name"] for i in upgrade["images"]} <= held, (m.name, held)

    # the wait phase's promise: when apply is done, the mirror pods run the new static pods, Ready
    pods = {p["metadata"]["name"]: p for p in get(work, "-n", "kube-system", "pods")["items"]}
    for c in CONTROL_PLANE:
        manifest = yaml.safe_load(cp.ssh(f"cat {MANIFESTS}/{c}.yaml").out)
        assert manifest["spec"]["containers"][0]["image"] == f"registry.k8s.io/{c}:{TO}", c
        p = pods[f"{c}-{cp.name}"]
        assert after["mirror pods"][c] not in (None, BEFORE["mirror pods"][c]), f"{c}'s static pod did not change"
        assert p["spec"]["containers"][0]["image"] == f"registry.k8s.io/{c}:{TO}", p["spec"]
        assert ready(p) and started_after(p, started), p["status"]

    items = wait_nodes_ready(work, machines, "both Nodes Ready after the upgrade")
    assert {n["metadata"]["name"]: n["spec"].get("unschedulable", False) for n in items} == {
        cp.name: False,
        worker.name: False,
    }
    # the worker was drained: its pod evicted (a kubelet restart alone keeps pods), the Deployment's
    # new one back on it once uncordoned
    assert not set(BEFORE["pods"]) & set(pods_of(work, "sleeper")), "the worker's pod was not evicted"
    assert running_on(work, "sleeper", worker.name) not in BEFORE["pods"]

    ds = get(work, "-n", "kube-system", "daemonset", "kube-proxy")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.k8s.io/kube-proxy:{TO}"

    def kube_proxy_rolled() -> list[str] | None:
        pods = get(work, "-n", "kube-system", "pods", "-l", "k8s-app=kube-proxy")["items"]
        on = sorted(
            p["spec"]["nodeName"]
            for p in pods
            if p["spec"]["containers"][0]["image"].endswith(f":{TO}")
            and ready(p)
            and "deletionTimestamp" not in p["metadata"]
        )
        return on if on == sorted(m.name for m in machines) and len(pods) == len(machines) else None

    until("kube-proxy's pods on the new image on both nodes", kube_proxy_rolled, READY_TIMEOUT)
    assert cluster_version(work) == TO


def started_after(p: dict, t: float) -> bool:
    """The pod's container (re)started at or after `t` (seconds since the epoch, the API's clock)."""
    import datetime

    statuses = p["status"].get("containerStatuses") or [{}]
    at = (statuses[0].get("state", {}).get("running") or {}).get("startedAt")
    return bool(at) and datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() >= int(t) - 1


def test_a_second_apply_and_up_only_skip(work, machines):
    _, worker = machines
    running_on(work, "sleeper", worker.name)
    upgraded = state(work, machines)

    r = apply(work, "apply-again", work.upgraded, "--yes", timeout=UP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change" in r.stdout, r.stdout
    assert state(work, machines) == upgraded  # no kubelet restarted, no drain: the pod stays

    r = up(work, "up-upgraded", work.upgraded)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout
    assert state(work, machines) == upgraded
    print("\nkubeinit's wall times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMES.items()))
