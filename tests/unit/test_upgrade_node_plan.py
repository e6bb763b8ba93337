"""upgrade's drain, wait and uncordon phases (phases/upgrade_node.py) planned over a host's facts given
parsed (FactsStub) and the cluster's Nodes in the RBAC-strict API double, read through the first
control plane: a converged host only skips, a new kubelet, a restart left pending or a new
control-plane manifest drains, a Node its user cordoned stays so, and a run killed after the cordon
still uncordons."""

from __future__ import annotations

import hashlib

import pytest
import scripted
from apiserver import cluster  # noqa: F401 (fixture)
from factsstub import FactsStub
from phase_harness import cluster_file
from test_kubelet_plan import ScriptedHost
from test_kubelet_plan import converged as kubelet_converged
from test_kubelet_plan import make_spec as kubelet_make_spec
from test_kubelet_plan import plan as kubelet_plan
from test_upgrade_drain import add_node

from kubeinit import spec as specmod
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.facts.host import Arch, Program, Stamps
from kubeinit.hostops import install
from kubeinit.kube import drain
from kubeinit.kube.client import Client, Unreachable
from kubeinit.phases import control_plane, kubelet, kubernetes, upgrade_node
from kubeinit.steps import ApiCall, Skip, Transfer

PIN = {"kubelet": "a" * 64, "kubectl": "b" * 64}
FINGERPRINT = "100:0:1:5"
VERSION = "v1.32.5"


class Host(scripted.FilesHost):
    """A host kubeinit installed: its kubelet and kubectl stamps (`kubelet_digest`: the archive it got),
    the kubelet binary's fingerprint and version, its files (path -> (sha256, mode))."""

    def __init__(self, files, kubelet_digest: str = PIN["kubelet"], fingerprint: str = FINGERPRINT):
        super().__init__(files)
        self.kubelet_digest, self.fingerprint = kubelet_digest, fingerprint
        self.contents: dict[str, bytes] = {}  # files read whole (a control plane's admin.conf)

    def read(self, path):
        return self.contents[path]

    def typed(self) -> dict:
        stamps = {
            "kubelet": [f"archive {self.kubelet_digest}", f"file {self.fingerprint} {self.fingerprint} {kubelet.OURS}"],
            "kubectl": [f"archive {PIN['kubectl']}", "file 1:0:2:5 1:0:2:5 /usr/local/bin/kubectl"],
        }
        return {
            Arch(): "amd64",
            Stamps(): scripted.stamps(stamps),
            kubelet.KUBELET: Program(kubelet.OURS, self.fingerprint),
            upgrade_node.KubeletVersion(): VERSION,
            control_plane.CA_DIRS: frozenset(),
            control_plane.Mode(control_plane.MANIFESTS): 0o700,
        }


def make_spec(cluster) -> specmod.ClusterSpec:  # noqa: F811
    hosts = [
        {"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"},
        {"name": "w-1", "address": "127.0.0.2", "role": "worker"},
    ]
    arts = {n: {"sha256": d} for n, d in PIN.items()}
    return specmod.from_dict(cluster_file(cluster, hosts=hosts, kubernetesVersion=VERSION, artifacts=arts))


def started(ctx: Context) -> dict[str, tuple[str, int]]:
    """The kubelet's files as a first run left them, with the APPLIED record of its start on them."""
    files = {p: (scripted.sha(p), 0o644) for p in (kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN)}
    files[kubelet.kubeconfig(ctx)] = (scripted.sha("kc"), 0o600)
    files[kubelet.ca_file(ctx)] = (scripted.sha("ca"), 0o644)
    watched = [kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN, kubelet.kubeconfig(ctx)]
    ids = {kubelet.OURS: FINGERPRINT, **{p: files[p][0] for p in watched}}
    files[kubelet.APPLIED] = (scripted.sha(install.applied_text(ids)), 0o644)
    return files


class Run:
    """Both hosts (their facts given), the first control plane's admin.conf being the double's."""

    def __init__(self, cluster, hosts: dict[str, Host] | None = None, dry_run: bool = False):  # noqa: F811
        self.spec = make_spec(cluster)
        self.hosts = hosts or {}
        conf = cluster.admin_conf.read_bytes()
        if "cp-1" in self.hosts:
            self.hosts["cp-1"].contents[str(cluster.admin_conf)] = conf
        self.ctx = Context(self.spec, [self.target(h) for h in self.spec.hosts], Options(dry_run=dry_run))
        # what ctx.kube(cp-1) makes of cp-1's admin.conf: the double's, reached without a tunnel
        self.ctx.shared["kube"] = {"cp-1": Client.from_kubeconfig(cluster.admin_conf)}
        self.ctx.shared["kube-admin-conf"] = {"cp-1": conf}

    def target(self, h) -> Target:
        if h.name not in self.hosts:  # cp-1 without facts given: its files are this machine's
            return Target(h, lambda h: LocalConnection(h.name))
        host = self.hosts[h.name]
        return Target(h, lambda _: host, facts=FactsStub(host.typed(), conn=host))

    def plan(self, impl, name: str) -> list:
        t = self.ctx.target(name)
        declared = impl.facts(self.ctx, t)
        t.facts.gather(declared)
        t.facts.declared = set(declared)  # the plan asks only what its phase declares
        return list(impl.plan(self.ctx, t))

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture
def lab(cluster, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))  # an empty artifact cache
    runs = []

    def make(**hosts) -> Run:
        r = Run(cluster, **hosts)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.close()


def worker(lab, **host) -> Run:
    run = lab(hosts={})
    run.hosts["w-1"] = Host(started(run.ctx), **host)
    return lab(hosts=run.hosts)


def test_a_converged_worker_only_skips_and_nothing_is_written(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1")["status"]["nodeInfo"]["kubeletVersion"] = VERSION
    run = worker(lab)
    (drained,) = run.plan(upgrade_node.DRAIN, "w-1")
    assert drained == Skip("w-1 is already at the target: nothing on it restarts, its Node is not drained")
    assert run.plan(upgrade_node.WAIT, "w-1") == [Skip(f"node w-1 is Ready on kubelet {VERSION}")]
    assert run.plan(upgrade_node.UNCORDON, "w-1") == [Skip("node w-1 is schedulable (not cordoned by kubeinit)")]
    assert [m for m, *_ in cluster.api.requests if m != "GET"] == []


def test_a_new_kubelet_drains_through_the_first_control_plane_then_waits_and_uncordons(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1")
    run = worker(lab, kubelet_digest="c" * 64)  # the kubelet installed is not the one the file pins
    (step,) = run.plan(upgrade_node.DRAIN, "w-1")
    assert isinstance(step, ApiCall) and (step.verb, step.path, step.through) == ("drain", "/api/v1/nodes/w-1", "cp-1")
    assert step.describe() == (
        "api cordon and drain node w-1 (through cp-1)  # kubelet 1.32.5 is installed: the kubelet restarts on it"
    )
    assert step.timeout == upgrade_node.DRAIN_TIMEOUT
    # the wait and the uncordon are planned on what the drain and the kubernetes phase leave (--dry-run
    # shows them so): the kubelet that is transferred says its version once it is there
    assert any(isinstance(s, Transfer) for s in run.plan(kubernetes.KUBERNETES, "w-1"))
    (wait,) = run.plan(upgrade_node.WAIT, "w-1")
    assert (wait.verb, wait.through, wait.watch) == ("wait-node", "cp-1", "kubelet")
    assert wait.body == {"node": "w-1", "kubelet": VERSION, "pods": {}}
    assert wait.describe() == "api wait for node w-1 to be back (through cp-1)  # Ready on its new kubelet"
    (uncordon,) = run.plan(upgrade_node.UNCORDON, "w-1")
    assert (uncordon.verb, uncordon.through) == ("uncordon", "cp-1")
    assert [m for m, *_ in cluster.api.requests if m != "GET"] == [], "planning writes nothing"


def test_a_restart_a_stopped_run_left_pending_drains(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1")
    # the binary installed (its stamp intact) after the kubelet started: the run stopped before the restart
    run = worker(lab, fingerprint="200:0:9:7")
    (step,) = run.plan(upgrade_node.DRAIN, "w-1")
    assert step.verb == "drain" and "a stopped run changed them" in step.note


def test_a_node_its_user_cordoned_is_drained_and_stays_cordoned(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1", unschedulable=True)
    run = worker(lab, kubelet_digest="c" * 64)
    (step,) = run.plan(upgrade_node.DRAIN, "w-1")
    assert step.verb == "drain" and step.note.endswith("its user cordoned it: it stays cordoned")
    assert run.plan(upgrade_node.UNCORDON, "w-1") == [Skip("node w-1 is cordoned, not by kubeinit: it stays so")]


def test_killed_after_the_restart_a_rerun_skips_the_drain_and_still_uncordons(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1", unschedulable=True, annotated=True)
    run = worker(lab)
    assert isinstance(run.plan(upgrade_node.DRAIN, "w-1")[0], Skip)
    (step,) = run.plan(upgrade_node.UNCORDON, "w-1")
    assert (step.verb, step.path, step.through) == ("uncordon", "/api/v1/nodes/w-1", "cp-1")


def test_a_node_that_is_not_ready_is_waited_for(cluster, lab):  # noqa: F811
    add_node(cluster.api, "w-1", ready=False)
    run = worker(lab)
    (step,) = run.plan(upgrade_node.WAIT, "w-1")
    assert step.verb == "wait-node" and step.note == "node w-1 is not Ready (KubeletReady)"


def test_a_new_control_plane_manifest_drains_and_waits_for_its_mirror_pods(cluster, lab):  # noqa: F811
    add_node(cluster.api, "cp-1")["status"]["nodeInfo"]["kubeletVersion"] = VERSION
    run = lab(hosts={})
    ctx = run.ctx
    pki = ctx.cert_dir
    files = {**started(ctx), f"{pki}/ca.crt": (scripted.sha("ca"), 0o644), f"{pki}/ca.key": (scripted.sha("k"), 0o600)}
    cp = ctx.target("cp-1")
    for name in control_plane.BINARY:  # the manifests the control-plane phase writes, but one
        text = control_plane.manifest(ctx, cp, name, control_plane.HostState())
        files[control_plane.manifest_path(name)] = (hashlib.sha256(text.encode()).hexdigest(), 0o600)
    old = control_plane.manifest_path("scheduler")
    converged = dict(files)
    files[old] = (scripted.sha("the old version's"), 0o600)

    run = lab(hosts={"cp-1": Host(files)})
    (step,) = run.plan(upgrade_node.DRAIN, "cp-1")
    assert (step.verb, step.through, step.note) == ("drain", "", "kube-scheduler restarts on its new manifest")
    (wait,) = run.plan(upgrade_node.WAIT, "cp-1")
    pods = wait.body["pods"]
    assert sorted(pods) == ["kube-apiserver-cp-1", "kube-controller-manager-cp-1", "kube-scheduler-cp-1"]
    assert pods["kube-apiserver-cp-1"]["image"] == f"registry.k8s.io/kube-apiserver:{VERSION}"
    assert pods["kube-scheduler-cp-1"]["command"][0] == "kube-scheduler"
    assert wait.note.endswith("its control plane's pods on their manifests")

    rerun = lab(hosts={"cp-1": Host(converged)})
    assert isinstance(rerun.plan(upgrade_node.DRAIN, "cp-1")[0], Skip)
    (wait,) = rerun.plan(upgrade_node.WAIT, "cp-1")  # read once: no mirror pods yet in this double
    assert wait.verb == "wait-node" and wait.note == "kube-apiserver-cp-1 is not there yet"


def test_dry_run_before_the_api_answers_plans_the_cordon_and_its_undoing(cluster, lab):  # noqa: F811
    cluster.api.stop()  # the API server does not answer
    run = worker(lab, kubelet_digest="c" * 64)
    run.ctx.options.dry_run = True
    assert run.plan(upgrade_node.DRAIN, "w-1")[0].verb == "drain"
    assert run.plan(upgrade_node.UNCORDON, "w-1")[0].verb == "uncordon"
    (wait,) = run.plan(upgrade_node.WAIT, "w-1")
    assert wait.verb == "wait-node"
    run.ctx.options.dry_run = False  # a real run stops on it
    with pytest.raises(Unreachable):
        run.plan(upgrade_node.DRAIN, "w-1")


def test_restart_pending_agrees_with_the_kubelet_phase():
    """The drain asks kubelet.restart_pending; kubelet-start restarts on the same comparison."""
    files = kubelet_converged(ScriptedHost())
    spec = kubelet_make_spec()
    for fingerprint, restarts in (("100:0:1:5", False), ("300:0:4:5", True)):
        h = ScriptedHost(files, kubelet_state=("active", "enabled"))
        h.typed = lambda h=h, fp=fingerprint: {**ScriptedHost.typed(h), kubelet.KUBELET: Program(kubelet.OURS, fp)}
        assert isinstance(kubelet_plan(h, spec)[-1], Skip) is not restarts
        t = Target(spec.hosts[0], lambda _, h=h: h, facts=FactsStub(h.typed(), conn=h))
        assert kubelet.restart_pending(Context(spec, [t]), t) is restarts


def test_the_kubelet_version_fact_reads_what_the_binary_prints():
    from kubeinit.connection import Result

    fact = upgrade_node.KubeletVersion()
    assert fact.parse(Result(0, b"Kubernetes v1.31.5\n", b"")) == "v1.31.5"
    assert fact.parse(Result(0, b"", b"")) == ""
    assert drain.node_path("w-1") == "/api/v1/nodes/w-1"
