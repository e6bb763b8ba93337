"""upgrade's kubelet phase on a host that joined: the cluster's kubelet-config (read through the
first control plane, against the API double), and the kubelet restarted when its binary or
configuration changed since it started; a converged host only skips."""

from __future__ import annotations

import pytest
import scripted
from apiserver import cluster  # noqa: F401 (fixture)
from factsstub import FactsStub
from phase_harness import cluster_file, run_phases
from test_kubelet_plan import ScriptedHost

from kubeinit import spec as specmod
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts.host import Program
from kubeinit.hostops import install
from kubeinit.phases import kubelet, upgrade_kubelet
from kubeinit.steps import Run, Skip, Upload

KUBELET_CM = ("configmaps", "kube-system", "kubelet-config")


class Worker(ScriptedHost):
    def __init__(self, files, fingerprint: str = "100:0:1:5"):
        super().__init__(files, hostname="w1", kubelet_state=("active", "enabled"))
        self.fingerprint = fingerprint

    def typed(self) -> dict:
        return {**super().typed(), kubelet.KUBELET: Program(kubelet.OURS, self.fingerprint)}


@pytest.fixture
def uploaded(cluster):  # noqa: F811
    run_phases(specmod.from_dict(cluster_file(cluster)), ["upload-config/kubelet"])
    return cluster


def plan_worker(cluster, host: Worker):
    hosts = [
        {"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"},
        {"name": "w1", "address": "127.0.0.2", "role": "worker"},
    ]
    spec = specmod.from_dict(cluster_file(cluster, hosts=hosts))
    cp = Target(spec.hosts[0], lambda h: LocalConnection(h.name))
    w = Target(spec.hosts[1], lambda h: host, facts=FactsStub(host.typed(), conn=host))
    ctx = Context(spec, [cp, w], Options())
    try:
        w.facts.gather(upgrade_kubelet.facts(ctx, w))
        return list(upgrade_kubelet.plan_kubelet(ctx, w)), ctx
    finally:
        ctx.close()


def joined(cluster, config: str, fingerprint: str = "100:0:1:5") -> dict:
    """A worker's files as its join left them, started on `config` with that kubelet binary."""
    conf, ca = str(cluster.root / "kubelet.conf"), str(cluster.root / "pki" / "ca.crt")
    files = {conf: (scripted.sha("kc"), 0o600), ca: (scripted.sha("ca"), 0o644)}
    steps, _ = plan_worker(cluster, Worker(files, fingerprint))
    files |= {s.path: (s.sha256, s.mode) for s in steps if isinstance(s, Upload)}
    assert files[kubelet.CONFIG][0] == scripted.sha(config)
    watched = [kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN, conf]
    ids = {kubelet.OURS: fingerprint, **{p: files[p][0] for p in watched}}
    files[kubelet.APPLIED] = (scripted.sha(install.applied_text(ids)), 0o644)
    return files


def test_a_converged_worker_only_skips(uploaded):
    config = uploaded.api.objects[KUBELET_CM]["data"]["kubelet"]
    steps, _ = plan_worker(uploaded, Worker(joined(uploaded, config)))
    assert all(isinstance(s, Skip) for s in steps), steps


def test_a_new_kubelet_binary_restarts_the_kubelet_on_the_same_files(uploaded):
    config = uploaded.api.objects[KUBELET_CM]["data"]["kubelet"]
    steps, _ = plan_worker(uploaded, Worker(joined(uploaded, config), fingerprint="200:0:1:9"))
    assert not any(isinstance(s, Upload) for s in steps)
    (restart,) = [s for s in steps if isinstance(s, Run)]
    assert "systemctl restart kubelet" in restart.argv[2]


def test_the_clusters_new_kubelet_config_is_written_and_the_kubelet_restarted(uploaded):
    old = uploaded.api.objects[KUBELET_CM]["data"]["kubelet"]
    files = joined(uploaded, old)
    new = old.rstrip("\n") + "\nmaxPods: 42\n"  # what the first control plane's upload-config left
    uploaded.api.objects[KUBELET_CM]["data"]["kubelet"] = new
    steps, _ = plan_worker(uploaded, Worker(files))
    written = {s.path: s.data.decode() for s in steps if isinstance(s, Upload)}
    assert written == {kubelet.CONFIG: new}
    assert any(isinstance(s, Run) and "systemctl restart kubelet" in s.argv[2] for s in steps)


def test_no_kubelet_config_in_the_cluster_is_one_sentence_naming_upload_config(cluster):  # noqa: F811
    with pytest.raises(KubeinitError, match=r"no ConfigMap kube-system/kubelet-config .*--only upload-config"):
        plan_worker(cluster, Worker({}))
