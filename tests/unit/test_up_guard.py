"""`kubeinit up` against a running cluster at another version than the file's: refused in up's
preflight on the first control plane, before anything changes (exit 2, one line pointing at
`kubeinit upgrade apply`). The host's facts are given (a healthy host), admin.conf and the API are
the API-server double's, reached as up reaches them (admin.conf read from the host, the server
dialled through the host's connection)."""

from __future__ import annotations

import pytest
from apiserver import cluster  # noqa: F401 (fixture)
from factsstub import FactsStub
from phase_harness import View, cluster_file
from test_preflight import HEALTHY
from test_upgrade_check import put_config

from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.errors import StepFailed
from kubeinit.facts import batch
from kubeinit.facts.host import Arch
from kubeinit.steps import Check
from kubeinit.workflow import find, up_phases


class ThisMachine(LocalConnection):
    """The control plane's files are this machine's (the double's admin.conf): what is not given is asked here."""

    def answer_each(self, commands):
        return batch(self, commands)


def run_preflight(cluster, version: str, dry_run: bool = False, kubeconfig_dir=None):
    """up's preflight on cp-1 (the double's control plane); its checks and the host's round trips."""
    raw = cluster_file(cluster, kubernetesVersion=version)
    if kubeconfig_dir is not None:
        raw["kubeconfigDir"] = str(kubeconfig_dir)
    spec = specmod.load_documents([raw], source="/work/c.yaml")
    # the architecture is asked of this machine: the one round trip admin.conf's question must share
    stub = FactsStub({k: v for k, v in HEALTHY.items() if k != Arch()}, conn=ThisMachine("cp-1"))
    t = Target(spec.hosts[0], lambda h: LocalConnection(h.name), facts=stub)
    ctx = Context(spec, [t], Options(dry_run=dry_run))
    view = View()
    try:
        execute(ctx, [find(up_phases(), "preflight")], view)
    finally:
        ctx.close()
    steps = [e[3] for e in view.events if e[0] == "step"] + view.steps()
    return {s.name: s for s in steps if isinstance(s, Check)}, stub.round_trips


def test_a_fresh_host_without_admin_conf_is_not_asked(cluster, tmp_path):
    checks, trips = run_preflight(cluster, "v1.33.2", kubeconfig_dir=tmp_path / "none")
    assert "ClusterVersion" not in checks and cluster.api.requests == []
    assert trips == 1, "admin.conf's existence came with up's other facts"


def test_a_cluster_being_made_without_kubeadm_config_is_not_refused(cluster):
    checks, _ = run_preflight(cluster, "v1.33.2")
    assert checks["ClusterVersion"].passed and "no kube-system/kubeadm-config yet" in checks["ClusterVersion"].message


def test_the_same_version_passes_with_one_get(cluster):
    put_config(cluster, "v1.33.2")
    checks, trips = run_preflight(cluster, "v1.33.2")
    assert (
        checks["ClusterVersion"].passed
        and checks["ClusterVersion"].message == "the cluster runs v1.33.2, as the file says"
    )
    assert [(m, p) for m, p, _ in cluster.api.requests] == [
        ("GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    ]
    assert trips == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_another_version_is_refused_pointing_at_upgrade_apply(cluster, dry_run):
    put_config(cluster, "v1.33.1")
    with pytest.raises(StepFailed) as e:
        run_preflight(cluster, "v1.33.2", dry_run=dry_run)
    assert e.value.exit_code == 2
    assert str(e.value) == (
        "cp-1: phase preflight failed at 'plan': cluster 'lab' runs v1.33.1 and the file says v1.33.2: upgrade it "
        "with `kubeinit upgrade apply -f /work/c.yaml` (it rolls through the hosts one at a time)."
    )
    assert [r for r in cluster.api.requests if r[0] != "GET"] == []


def test_a_downgrade_is_refused_with_the_rule(cluster):
    put_config(cluster, "v1.33.2")
    with pytest.raises(StepFailed) as e:
        run_preflight(cluster, "v1.33.1")
    assert e.value.exit_code == 2
    assert "cluster 'lab': the cluster runs v1.33.2 and the file says v1.33.1: kubeinit does not downgrade" in str(
        e.value
    )


def test_a_server_that_does_not_answer_is_a_warning_a_real_run_cannot_know_better(cluster):
    put_config(cluster, "v1.33.1")
    cluster.api.stop()
    for dry_run in (False, True):
        checks, _ = run_preflight(cluster, "v1.33.2", dry_run=dry_run)
        c = checks["ClusterVersion"]
        assert not c.passed and not c.fatal
        assert c.message.startswith("the cluster's version could not be read (cannot reach the API server")
        assert c.message.endswith("not compared with the file's")


def test_the_admin_client_is_made_again_once_the_run_rewrites_admin_conf(cluster):
    spec = specmod.load_documents([cluster_file(cluster)])
    t = Target(spec.hosts[0], lambda h: LocalConnection(h.name))
    ctx = Context(spec, [t])
    try:
        first = ctx.kube(t)
        assert ctx.kube(t) is first
        t.facts.plan_write(str(cluster.admin_conf), cluster.admin_conf.read_bytes() + b"\n", 0o600)
        again = ctx.kube(t)
        assert again is not first and again.get_text("/readyz") == "ok"
    finally:
        ctx.close()
