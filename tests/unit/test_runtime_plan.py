"""The runtime phase over facts given parsed (golden cases: facts in -> steps out).

A fresh host gets downloads, uploads, installs and a containerd start; a converged host
gets only skips; each kind of drift gets exactly the work that repairs it.
"""

from __future__ import annotations

import tomllib

import pytest
import scripted  # noqa: E402  (tests/unit is on sys.path, as for sshserver)

from kubeinit import spec as specmod
from kubeinit.connection import LocalConnection
from kubeinit.errors import KubeinitError
from kubeinit.facts import Facts
from kubeinit.facts.host import GOARCH, Arch, Leftovers, Stamps, Sysctl, Unit, UnitState
from kubeinit.facts.node import KernelModules, Modules
from kubeinit.hostops import install
from kubeinit.phases import runtime as rt
from kubeinit.render import render
from kubeinit.steps import Local, Notice, Run, Skip, Transfer, Upload

PINS = {"containerd": "1" * 64, "runc": "2" * 64, "cni-plugins": "3" * 64, "crictl": "4" * 64}
VERSIONS = {"containerd": "1.7.24", "runc": "1.2.3", "cni-plugins": "1.6.1", "crictl": "1.31.1"}
HEALTHY = {
    "arch": "x86_64",
    "overlay": "yes",
    "modprobe": "no",
    "loadable:overlay": "no",
    "loadable:br_netfilter": "no",
    "sysctl:net/ipv4/ip_forward": "0",
    "sysctl:net/bridge/bridge-nf-call-iptables": "0",
    "sysctl:net/bridge/bridge-nf-call-ip6tables": "0",
    "active": "inactive",
    "enabled": "",
}


class ScriptedHost(scripted.FilesHost):
    """A host as the test describes it (`probe`: its kernel, sysctls, containerd's unit, the temp
    files and registry mirrors left on it), its install stamps and files, given as parsed facts."""

    def __init__(self, probe: dict, stamps: dict[str, list[str]] | None = None, files: dict | None = None):
        super().__init__(files)
        self.probe, self.stamps = probe, stamps or {}

    def typed(self) -> dict:
        p = self.probe
        present = {"overlay"} if p["overlay"] == "yes" else set()
        if p.get("sysctl:net/bridge/bridge-nf-call-iptables", "missing") != "missing":
            present.add("br_netfilter")
        loadable = {m for m in ("overlay", "br_netfilter") if m not in present and p.get(f"loadable:{m}") == "yes"}
        return {
            Arch(): GOARCH.get(p["arch"], p["arch"]),
            UnitState("containerd"): Unit(p["active"], p["enabled"]),
            Stamps(): scripted.stamps(self.stamps),
            **{Sysctl(k): p.get(f"sysctl:{k}", "missing") for k in rt.SYSCTLS},
            KernelModules(): Modules(frozenset(present), frozenset(loadable)),
            rt.MODPROBE: frozenset({"modprobe"} if p["modprobe"] == "yes" else ()),
            Leftovers(): tuple(sorted(p.get("leftovers", ()))),
            rt.MIRRORS: frozenset(p.get("mirrors", ())),
        }


def make_spec(**components) -> specmod.ClusterSpec:
    arts = {n: {"version": VERSIONS[n], "sha256": PINS[n]} for n in VERSIONS}
    arts.update(components)
    return scripted.one_host_spec(arts)


def plan(host: ScriptedHost, spec=None):
    return scripted.plan_phase(host, spec or make_spec(), rt.RUNTIME)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


def converged_state(spec=None, crictl=True) -> tuple[dict, dict, dict]:
    """Probe answers, stamps and files of a host that already has everything."""
    spec = spec or make_spec()
    stamps = {}
    for n, (_, dest) in rt.ARCHIVES.items():
        if n == "crictl" and not crictl:
            continue
        names = {
            "containerd": ["containerd", "ctr", "containerd-shim-runc-v2"],
            "cni-plugins": ["bridge", "loopback"],
            "crictl": ["crictl"],
        }[n]
        stamps[n] = [f"archive {PINS[n]} missing "] + [
            f"file 100:0:{i}:5 100:0:{i}:5 {dest}/{b}" for i, b in enumerate(names)
        ]
    version = spec.artifact("containerd").version
    config = rt.containerd_config(spec, version)
    unit = render(
        "containerd/containerd.service.j2", containerd_version=version, containerd=rt.CONTAINERD, config=rt.CONFIG
    )
    stamps["runc"] = [f"archive {PINS['runc']} missing ", f"file 200:0:9:5 200:0:9:5 {rt.RUNC}"]
    files = {
        rt.CONFIG: (scripted.sha(config), 0o644),
        rt.UNIT: (scripted.sha(unit), 0o644),
        rt.SYSCTL_CONF: (scripted.sha(sysctl_text(bridge=True)), 0o644),
    }
    if crictl:
        files[rt.CRICTL_YAML] = (scripted.sha(render("crictl.yaml.j2", socket=rt.SOCKET)), 0o644)
    applied = install.applied_text(
        {rt.CONTAINERD: "100:0:0:5", rt.CONFIG: scripted.sha(config), rt.UNIT: scripted.sha(unit)}
    )
    files[rt.APPLIED] = (scripted.sha(applied), 0o644)
    probe = {
        **HEALTHY,
        "active": "active",
        "enabled": "enabled",
        "sysctl:net/ipv4/ip_forward": "1",
        "sysctl:net/bridge/bridge-nf-call-iptables": "1",
        "sysctl:net/bridge/bridge-nf-call-ip6tables": "1",
    }
    return probe, stamps, files


def sysctl_text(bridge: bool) -> str:
    keys = ["net.ipv4.ip_forward"] + (
        ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] if bridge else []
    )
    return "# Written by kubeinit: pods need forwarding, and bridged pod traffic must pass iptables.\n" + "".join(
        f"{k} = 1\n" for k in keys
    )


def test_fresh_host_installs_everything_downloads_first():
    host = ScriptedHost(HEALTHY)
    steps = plan(host)
    assert scripted.brief(steps) == [
        "local download containerd 1.7.24 (linux/amd64)",
        "local download runc 1.2.3 (linux/amd64)",
        "local download cni-plugins 1.6.1 (linux/amd64)",
        "local download crictl 1.31.1 (linux/amd64)",
        f"upload {rt.INSTALLER}",
        f"transfer {rt.STAGING}/containerd-1.7.24-linux-amd64.tar.gz",
        "run install containerd 1.7.24 into /usr/local/bin",
        "transfer /usr/local/sbin/runc",
        "run record runc 1.2.3 as installed",
        f"transfer {rt.STAGING}/cni-plugins-linux-amd64-v1.6.1.tgz",
        "run install cni-plugins 1.6.1 into /opt/cni/bin",
        f"transfer {rt.STAGING}/crictl-v1.31.1-linux-amd64.tar.gz",
        "run install crictl 1.31.1 into /usr/local/bin",
        "skip kernel modules overlay and br_netfilter are available",
        f"upload {rt.SYSCTL_CONF}",
        "run apply sysctls",
        f"upload {rt.CONFIG}",
        f"upload {rt.UNIT}",
        f"upload {rt.CRICTL_YAML}",
        "run (re)start containerd 1.7.24 on its new binary/config",
    ]
    assert host.commands == 1, "facts cost one round trip: the probe and the digests, batched"
    runc = next(s for s in steps if isinstance(s, Transfer) and s.path == rt.RUNC)
    assert (runc.sha256, runc.mode) == (PINS["runc"], 0o755)
    install = next(s for s in steps if isinstance(s, Run) and "containerd" in s.note)
    assert install.argv == (
        "sh",
        rt.INSTALLER,
        f"{rt.STAGING}/containerd-1.7.24-linux-amd64.tar.gz",
        PINS["containerd"],
        "bin",
        "/usr/local/bin",
        f"{rt.STAMPS}/containerd.stamp",
    )


def test_what_a_fresh_host_gets_installed_is_handed_to_the_phases_after():
    shared: dict = {}
    scripted.plan_phase(ScriptedHost(HEALTHY), make_spec(), rt.RUNTIME, shared=shared)
    assert {("n1", n) for n in rt.COMPONENTS} <= shared[rt.PLANNED]  # the bridge CNI counts on the plugins
    shared = {}
    probe, stamps, files = converged_state()
    scripted.plan_phase(ScriptedHost(probe, stamps, files), make_spec(), rt.RUNTIME, shared=shared)
    assert not shared.get(rt.PLANNED)


def test_converged_host_yields_only_skips():
    probe, stamps, files = converged_state()
    steps = plan(ScriptedHost(probe, stamps, files))
    assert all(isinstance(s, Skip) for s in steps), scripted.brief(steps)
    assert "skip containerd 1.7.24 is enabled and running with this configuration" in scripted.brief(steps)


def test_temp_files_a_killed_run_left_are_removed_and_only_then(tmp_path):
    probe, stamps, files = converged_state()
    staged, extracted = f"{rt.STAGING}/.kubeinit.Ab12Cd", "/usr/local/bin/.kubeinit.Xy34Zw"
    probe["leftovers"] = (staged, extracted)
    steps = plan(ScriptedHost(probe, stamps, files))
    changes = [s for s in steps if not isinstance(s, Skip)]
    assert changes == [Run(("rm", "-rf", "--", extracted, staged), note="remove 2 temp files a stopped run left")]
    assert all(isinstance(s, Skip) for s in plan(ScriptedHost(converged_state()[0], stamps, files))), (
        "a clean host: no step, no extra round trip"
    )


def test_the_leftovers_probe_lists_only_stale_kubeinit_temp_files(tmp_path):
    import os
    import subprocess
    import time

    staging, bin_dir, empty = tmp_path / "staging", tmp_path / "bin", tmp_path / "missing"
    staging.mkdir()
    bin_dir.mkdir()
    old = time.time() - (install.STALE_MINUTES + 5) * 60
    (staging / ".kubeinit.OLD123").write_bytes(b"half an archive")  # a killed upload
    (bin_dir / ".kubeinit.DIR456").mkdir()  # a killed install's extraction directory
    (bin_dir / ".kubeinit.DIR456" / "containerd").write_bytes(b"x")
    for p in (staging / ".kubeinit.OLD123", bin_dir / ".kubeinit.DIR456"):
        os.utime(p, (old, old))
    (staging / ".kubeinit.NEW789").write_bytes(b"a live run's upload")  # recent: maybe another run's
    (staging / "containerd.tar.gz").write_bytes(b"staged")
    os.utime(staging / "containerd.tar.gz", (old, old))  # not a temp file
    facts = Facts(LocalConnection())
    [step] = install.remove_leftovers(facts.get(Leftovers((str(staging), str(bin_dir), str(empty)))))
    assert step.argv == ("rm", "-rf", "--", str(bin_dir / ".kubeinit.DIR456"), str(staging / ".kubeinit.OLD123"))
    subprocess.run(step.argv, check=True)
    assert sorted(p.name for p in staging.iterdir()) == [".kubeinit.NEW789", "containerd.tar.gz"]
    assert list(bin_dir.iterdir()) == []
    assert facts.get(Leftovers((str(empty),))) == ()


def test_changed_config_is_uploaded_and_restarts_only_containerd():
    probe, stamps, files = converged_state()
    files[rt.CONFIG] = (scripted.sha("edited by hand"), 0o644)
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamps, files))) if not b.startswith("skip")]
    assert changes == [f"upload {rt.CONFIG}", "run (re)start containerd 1.7.24 on its new binary/config"]


def test_replaced_containerd_binary_restarts_containerd():
    probe, stamps, files = converged_state()
    # installed by a run that was killed before it restarted containerd: the stamp matches the
    # binary on disk, but containerd was started with another binary
    stamps["containerd"][1] = "file 100:0:7:9 100:0:7:9 /usr/local/bin/containerd"
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamps, files))) if not b.startswith("skip")]
    assert changes == ["run (re)start containerd 1.7.24 on its new binary/config"]


def test_run_killed_before_the_restart_restarts_on_the_next_run():
    probe, stamps, files = converged_state()
    files[rt.APPLIED] = (scripted.sha("digests containerd was started with before the upgrade"), 0o644)
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamps, files))) if not b.startswith("skip")]
    assert changes == ["run (re)start containerd 1.7.24 on its new binary/config"]


def test_stopped_containerd_is_started_without_a_restart():
    probe, stamps, files = converged_state()
    probe["active"] = "inactive"
    changes = [s for s in plan(ScriptedHost(probe, stamps, files)) if not isinstance(s, Skip)]
    assert [s.argv for s in changes] == [("systemctl", "enable", "--now", "containerd")]


def test_a_replaced_binary_reinstalls_its_component():
    probe, stamps, files = converged_state()
    stamps["containerd"][2] = stamps["containerd"][2].replace(" 100:0:1:5 /", " 100:0:1:99 /")  # ctr replaced
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamps, files))) if not b.startswith("skip")]
    assert changes == [
        "local download containerd 1.7.24 (linux/amd64)",
        f"upload {rt.INSTALLER}",
        f"transfer {rt.STAGING}/containerd-1.7.24-linux-amd64.tar.gz",
        "run install containerd 1.7.24 into /usr/local/bin",
        "run (re)start containerd 1.7.24 on its new binary/config",
    ]


def test_new_version_upgrades_and_a_staged_archive_is_not_uploaded_again():
    spec = make_spec(containerd={"version": "1.7.25", "sha256": "5" * 64})
    probe, stamps, files = converged_state(spec)
    files[f"{rt.STAGING}/containerd-1.7.25-linux-amd64.tar.gz"] = ("5" * 64, 0o600)  # a killed run left it
    files[rt.INSTALLER] = (scripted.sha(rt.INSTALL_SCRIPT), 0o755)
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamps, files), spec)) if not b.startswith("skip")]
    assert changes == [
        "local download containerd 1.7.25 (linux/amd64)",
        "run install containerd 1.7.25 into /usr/local/bin",
        "run (re)start containerd 1.7.25 on its new binary/config",
    ]


def test_cached_artifacts_are_not_downloaded(monkeypatch):
    monkeypatch.setattr(rt.artifacts, "cached", lambda rel, digest: "/cache/file")
    assert not [s for s in plan(ScriptedHost(HEALTHY)) if isinstance(s, Local)]


def test_a_component_left_out_in_the_spec():
    spec = make_spec(crictl={"enabled": False})
    probe, stamps, files = converged_state(spec, crictl=False)
    steps = plan(ScriptedHost(probe, stamps, files), spec)
    assert all(isinstance(s, Skip) for s in steps)
    assert "skip crictl is left out (artifacts.crictl.enabled: false)" in scripted.brief(steps)
    assert not any(rt.CRICTL_YAML in b for b in scripted.brief(steps))


def test_kernel_modules_loaded_when_modprobe_can():
    probe = {
        **HEALTHY,
        "modprobe": "yes",
        "overlay": "no",
        "loadable:overlay": "yes",
        "loadable:br_netfilter": "yes",
        "sysctl:net/bridge/bridge-nf-call-iptables": "missing",
    }
    steps = plan(ScriptedHost(probe))
    assert f"upload {rt.MODULES_CONF}" in scripted.brief(steps)
    assert ("modprobe", "-a", "overlay", "br_netfilter") in [s.argv for s in steps if isinstance(s, Run)]
    sysctl = next(s for s in steps if isinstance(s, Upload) and s.path == rt.SYSCTL_CONF)
    assert b"bridge-nf-call-iptables = 1" in sysctl.data, "the key appears once br_netfilter is loaded"


def test_no_modprobe_and_no_bridge_module_is_a_notice_not_a_failure():
    probe = {**HEALTHY, "sysctl:net/bridge/bridge-nf-call-iptables": "missing"}
    steps = plan(ScriptedHost(probe))
    notice = next(s for s in steps if isinstance(s, Notice))
    assert "br_netfilter" in notice.text and "modprobe is not installed" in notice.text
    sysctl = next(s for s in steps if isinstance(s, Upload) and s.path == rt.SYSCTL_CONF)
    assert sysctl.data.decode() == sysctl_text(bridge=False)


def test_unsupported_architecture_is_an_error():
    with pytest.raises(KubeinitError, match="architecture s390x is not supported"):
        plan(ScriptedHost({**HEALTHY, "arch": "s390x"}))


@pytest.mark.parametrize(
    "version,config_version,cni_key",
    [("1.6.20", 2, "bin_dir"), ("1.7.24", 2, "bin_dir"), ("2.0.5", 3, "bin_dir"), ("2.1.4", 3, "bin_dirs")],
)
def test_containerd_config_follows_the_version(version, config_version, cni_key):
    spec = make_spec()
    doc = tomllib.loads(rt.containerd_config(spec, version))
    assert doc["version"] == config_version
    if config_version == 2:
        cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
        assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10"
        runc = cri["containerd"]["runtimes"]["runc"]
        cni = cri["cni"]
    else:
        assert doc["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10"
        runtime = doc["plugins"]["io.containerd.cri.v1.runtime"]
        runc = runtime["containerd"]["runtimes"]["runc"]
        cni = runtime["cni"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert runc["options"]["BinaryName"] == rt.RUNC
    assert cni[cni_key] in (rt.CNI_BIN, [rt.CNI_BIN]) and cni["conf_dir"] == rt.CNI_CONF


def test_unit_starts_our_containerd_with_our_config():
    unit = render(
        "containerd/containerd.service.j2", containerd_version="1.7.24", containerd=rt.CONTAINERD, config=rt.CONFIG
    )
    assert f"ExecStart={rt.CONTAINERD} --config {rt.CONFIG}\n" in unit
    assert "Type=notify" in unit and "Delegate=yes" in unit and "KillMode=process" in unit


@pytest.mark.parametrize("state", ["fresh", "converged", "drifted"])
def test_dry_run_plans_exactly_what_a_real_run_plans_over_the_same_facts(state):
    """No phase knows whether it runs dry: over the same facts both plans are the same steps."""
    probe, stamps, files = converged_state()
    if state == "fresh":
        probe, stamps, files = HEALTHY, {}, {}
    elif state == "drifted":
        files = {**files, rt.CONFIG: (scripted.sha("edited by hand"), 0o644)}
    dry = scripted.plan_phase(ScriptedHost(probe, stamps, files), make_spec(), rt.RUNTIME, dry_run=True)
    real = scripted.plan_phase(ScriptedHost(probe, stamps, files), make_spec(), rt.RUNTIME)
    assert [s.describe() for s in dry] == [s.describe() for s in real] and dry
