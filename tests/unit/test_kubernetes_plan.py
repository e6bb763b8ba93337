"""The kubernetes phase over scripted facts (golden cases: facts in -> steps out): kubelet and
kubectl (kubeadm opt-in) installed as single binaries, downloads first, then a stamp each."""

from __future__ import annotations

import pytest
import scripted  # noqa: E402  (tests/unit is on sys.path)
from factsstub import FactsStub

from kubeinit import spec as specmod
from kubeinit.errors import KubeinitError
from kubeinit.facts.host import GOARCH, Arch, Stamps
from kubeinit.hostops.install import STAMPS
from kubeinit.phases import kubernetes as kp
from kubeinit.steps import Run, Skip, Transfer

PINS = {"kubelet": "a" * 64, "kubectl": "b" * 64, "kubeadm": "c" * 64}
HEALTHY = {"arch": "x86_64"}


def ScriptedHost(probe: dict[str, str], stamps: dict[str, list[str]] | None = None) -> FactsStub:
    """The host's facts, parsed: its architecture (as `uname -m` names it) and install stamps."""
    return FactsStub({Arch(): GOARCH.get(probe["arch"], probe["arch"]), Stamps(): scripted.stamps(stamps or {})})


def make_spec(**components) -> specmod.ClusterSpec:
    arts = {n: {"sha256": PINS[n]} for n in ("kubelet", "kubectl")}
    arts.update(components)
    return scripted.one_host_spec(arts)


def plan(host: FactsStub, spec=None):
    return scripted.plan_over(host, spec or make_spec(), kp.KUBERNETES)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


def converged(names=("kubelet", "kubectl")) -> dict[str, list[str]]:
    return {
        n: [f"archive {PINS[n]} missing ", f"file 300:0:{i}:5 300:0:{i}:5 {kp.PATHS[n]}"] for i, n in enumerate(names)
    }


def test_fresh_host_downloads_first_then_transfers_and_stamps():
    host = ScriptedHost(HEALTHY)
    steps = plan(host)
    assert scripted.brief(steps) == [
        "local download kubelet 1.32.5 (linux/amd64)",
        "local download kubectl 1.32.5 (linux/amd64)",
        "transfer /usr/local/bin/kubelet",
        "run record kubelet 1.32.5 as installed",
        "transfer /usr/local/bin/kubectl",
        "run record kubectl 1.32.5 as installed",
        "skip kubeadm is not installed (opt in with artifacts.kubeadm.enabled: true)",
    ]
    assert host.round_trips == 0, "the plan asked only the facts its phase declares"
    kubelet = next(s for s in steps if isinstance(s, Transfer) and s.path == "/usr/local/bin/kubelet")
    assert (kubelet.sha256, kubelet.mode) == (PINS["kubelet"], 0o755)
    assert kubelet.local_path.endswith("dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubelet")
    stamp = next(s for s in steps if isinstance(s, Run) and "kubectl" in s.note)
    assert stamp.argv[-1] == PINS["kubectl"] and f"{STAMPS}/kubectl.stamp" in stamp.argv[2]
    assert "/usr/local/bin/kubectl" in stamp.argv[2]


def test_converged_host_yields_only_skips_in_one_round_trip():
    host = ScriptedHost(HEALTHY, converged())
    steps = plan(host)
    assert all(isinstance(s, Skip) for s in steps), scripted.brief(steps)
    assert scripted.brief(steps)[:2] == ["skip kubelet 1.32.5 is installed", "skip kubectl 1.32.5 is installed"]
    assert host.round_trips == 0


def test_a_changed_binary_is_reinstalled():
    stamps = converged()
    stamps["kubelet"][1] = "file 300:0:0:5 300:0:0:99 /usr/local/bin/kubelet"  # replaced by hand
    changes = [b for b in scripted.brief(plan(ScriptedHost(HEALTHY, stamps))) if not b.startswith("skip")]
    assert changes == [
        "local download kubelet 1.32.5 (linux/amd64)",
        "transfer /usr/local/bin/kubelet",
        "run record kubelet 1.32.5 as installed",
    ]


def test_a_removed_binary_is_reinstalled():
    stamps = converged()
    stamps["kubectl"][1] = "file 300:0:1:5 missing /usr/local/bin/kubectl"
    changes = [b for b in scripted.brief(plan(ScriptedHost(HEALTHY, stamps))) if not b.startswith("skip")]
    assert changes == [
        "local download kubectl 1.32.5 (linux/amd64)",
        "transfer /usr/local/bin/kubectl",
        "run record kubectl 1.32.5 as installed",
    ]


def test_a_component_disabled_is_left_out():
    spec = make_spec(kubelet={"enabled": False})
    steps = plan(ScriptedHost(HEALTHY, converged(("kubectl",))), spec)
    assert all(isinstance(s, Skip) for s in steps)
    assert "skip kubelet is left out (artifacts.kubelet.enabled: false)" in scripted.brief(steps)


def test_kubeadm_is_opt_in():
    spec = make_spec(kubeadm={"enabled": True, "sha256": PINS["kubeadm"]})
    assert not make_spec().artifact("kubeadm").enabled
    changes = [b for b in scripted.brief(plan(ScriptedHost(HEALTHY, converged()), spec)) if not b.startswith("skip")]
    assert changes == [
        "local download kubeadm 1.32.5 (linux/amd64)",
        "transfer /usr/local/bin/kubeadm",
        "run record kubeadm 1.32.5 as installed",
    ]


def test_versions_default_to_kubernetes_version_unless_pinned():
    spec = make_spec(kubectl={"version": "v1.31.4", "sha256": PINS["kubectl"]})
    assert spec.artifact("kubelet").version == "1.32.5"
    assert spec.artifact("kubelet").sha256 == PINS["kubelet"], "a pinned digest without a version is kept"
    assert spec.artifact("kubectl").version == "1.31.4"
    assert spec.artifact("kubeadm").version == "1.32.5"
    bare = specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "t",
            "kubernetesVersion": "v1.31.2",
            "hosts": [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
        }
    )
    assert (bare.artifact("kubelet").version, bare.artifact("kubectl").version) == ("1.31.2", "1.31.2")
    assert "transfer /usr/local/bin/kubectl" in scripted.brief(plan(ScriptedHost(HEALTHY), spec))
    assert "local download kubectl 1.31.4 (linux/amd64)" in scripted.brief(plan(ScriptedHost(HEALTHY), spec))


def test_stamp_of_another_version_reinstalls():
    spec = make_spec(kubelet={"version": "1.32.6", "sha256": "d" * 64})
    changes = [b for b in scripted.brief(plan(ScriptedHost(HEALTHY, converged()), spec)) if not b.startswith("skip")]
    assert changes == [
        "local download kubelet 1.32.6 (linux/amd64)",
        "transfer /usr/local/bin/kubelet",
        "run record kubelet 1.32.6 as installed",
    ]


def test_unsupported_architecture_is_an_error():
    with pytest.raises(KubeinitError, match="architecture s390x is not supported"):
        plan(ScriptedHost({"arch": "s390x"}))


def test_up_wires_the_phase():
    from kubeinit.workflow import up_phases

    phase = next(p for p in up_phases() if p.name == "kubernetes")
    assert phase.impl() is kp.KUBERNETES
