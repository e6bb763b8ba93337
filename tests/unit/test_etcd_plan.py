"""The etcd phase over scripted facts (golden cases: facts in -> steps out).

A fresh host gets the download, the install, the unit, a start and a health wait; a
converged host gets only skips; a changed unit or certificate restarts etcd.
"""

from __future__ import annotations

import shlex

import pytest
import scripted
from factsstub import FactsStub  # noqa: E402  (tests/unit is on sys.path)

from kubeinit import spec as specmod
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts.host import GOARCH, Arch, Mode, Stamps, Unit, UnitState
from kubeinit.hostops import install
from kubeinit.phases import etcd
from kubeinit.steps import Run, Skip

PIN = "e" * 64
PKI = "/etc/kubernetes/pki"
CERTS = [f"{PKI}/{r}" for r in (*etcd.CERTS, *etcd.HEALTHCHECK)]
FRESH = {"arch": "x86_64", "ActiveState": "inactive", "UnitFileState": "", "datadir": None}


class ScriptedHost(scripted.FilesHost):
    """A host as the test describes it (`probe`: its architecture, etcd's unit, the data dir's
    mode), etcd's install stamp and its files, given as parsed facts."""

    def __init__(self, probe: dict, stamp: list[str] | None = None, files: dict[str, tuple[str, int]] | None = None):
        super().__init__(files)
        self.probe, self.stamp = probe, stamp or []

    def typed(self) -> dict:
        p = self.probe
        return {
            Arch(): GOARCH.get(p["arch"], p["arch"]),
            UnitState("etcd"): Unit(p["ActiveState"], p["UnitFileState"]),
            Stamps(): scripted.stamps({"etcd": self.stamp} if self.stamp else {}),
            Mode(etcd.DATA_DIR): p["datadir"],
        }


def make_spec(version: str = "3.5.17", hosts: list[dict] | None = None, extra: dict | None = None):
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "t",
            "kubernetesVersion": "v1.32.5",
            "controlPlaneEndpoint": "api.example.com" if hosts and len(hosts) > 1 else None,
            "hosts": hosts or [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
            "components": {"etcd": {"extraArgs": extra or {}}},
            "artifacts": {"etcd": {"version": version, "sha256": PIN}},
        }
    )


def context(host, spec=None) -> tuple[Context, Target]:
    spec = spec or make_spec()
    t = Target(spec.hosts[0], lambda h: host, facts=FactsStub(host.typed(), conn=host) if host else None)
    return Context(spec, [t], Options()), t


def plan(host: ScriptedHost, spec=None):
    """Plan as the executor does: gather the phase's facts (one round trip), then plan."""
    ctx, t = context(host, spec)
    declared = etcd.facts(ctx, t)
    t.facts.gather(declared)
    t.facts.declared = set(declared)  # the plan asks nothing else
    return list(etcd.plan_etcd(ctx, t))


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


def cert_files() -> dict[str, tuple[str, int]]:
    return {p: (scripted.sha(p), 0o600 if p.endswith(".key") else 0o644) for p in CERTS}


def converged_state(spec=None):
    ctx, t = context(None, spec)
    unit = etcd.unit(ctx, t, ctx.spec.artifact("etcd").version, "amd64")
    files = {**cert_files(), etcd.UNIT: (scripted.sha(unit), 0o644)}
    ids = {etcd.ETCD: "100:0:1:5", etcd.UNIT: scripted.sha(unit), **{p: files[p][0] for p in CERTS}}
    files[etcd.APPLIED] = (scripted.sha(install.applied_text(ids)), 0o644)
    stamp = [f"archive {PIN}", f"file 100:0:1:5 100:0:1:5 {etcd.ETCD}", f"file 90:0:2:5 90:0:2:5 {etcd.ETCDCTL}"]
    probe = {"arch": "x86_64", "ActiveState": "active", "UnitFileState": "enabled", "datadir": 0o700}
    return probe, stamp, files


def test_fresh_host_downloads_first_then_installs_writes_the_unit_and_starts_etcd():
    host = ScriptedHost(FRESH, files=cert_files())
    steps = plan(host)
    assert scripted.brief(steps) == [
        "local download etcd 3.5.17 (linux/amd64)",
        f"upload {install.INSTALLER}",
        f"transfer {install.STAGING}/etcd-v3.5.17-linux-amd64.tar.gz",
        "run install etcd 3.5.17 into /usr/local/bin",
        f"upload {etcd.UNIT}",
        "run (re)start etcd 3.5.17 on its new binary/unit/certificates",
        "run wait until etcd answers its health check (up to 60 s)",
    ]
    assert host.commands == 1, "facts cost one round trip: the probe and the digests, batched"
    inst = next(s for s in steps if isinstance(s, Run) and s.note.startswith("install"))
    assert inst.argv == (
        "sh",
        install.INSTALLER,
        f"{install.STAGING}/etcd-v3.5.17-linux-amd64.tar.gz",
        PIN,
        "etcd-v3.5.17-linux-amd64",
        "/usr/local/bin",
        f"{install.STAMPS}/etcd.stamp",
        "etcd",
        "etcdctl",
    )
    restart = next(s for s in steps if isinstance(s, Run) and "(re)start" in s.note)
    assert "chmod 0700 /var/lib/etcd" in restart.argv[2] and "journalctl -u etcd" in restart.argv[2]
    health = steps[-1].argv[2]
    assert f"--cert={PKI}/etcd/healthcheck-client.crt" in health and "endpoint health" in health
    assert "journalctl -u etcd" in health, "a failed health wait shows etcd's log"
    assert health.index("endpoint health") < health.index(etcd.APPLIED), "recorded only once healthy"


def test_converged_host_yields_only_skips():
    probe, stamp, files = converged_state()
    host = ScriptedHost(probe, stamp, files)
    steps = plan(host)
    assert all(isinstance(s, Skip) for s in steps), scripted.brief(steps)
    assert host.commands == 1


def test_changed_unit_is_uploaded_and_restarts_etcd():
    probe, stamp, files = converged_state()
    files[etcd.UNIT] = (scripted.sha("edited by hand"), 0o644)
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamp, files))) if not b.startswith("skip")]
    assert changes == [
        f"upload {etcd.UNIT}",
        "run (re)start etcd 3.5.17 on its new binary/unit/certificates",
        "run wait until etcd answers its health check (up to 60 s)",
    ]


@pytest.mark.parametrize("cert", ["etcd/server.crt", "etcd/peer.key", "etcd/ca.crt"])
def test_changed_certificate_restarts_etcd(cert):
    probe, stamp, files = converged_state()
    files[f"{PKI}/{cert}"] = (scripted.sha("renewed"), files[f"{PKI}/{cert}"][1])
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamp, files))) if not b.startswith("skip")]
    assert changes == [
        "run (re)start etcd 3.5.17 on its new binary/unit/certificates",
        "run wait until etcd answers its health check (up to 60 s)",
    ]


def test_replaced_binary_is_reinstalled_and_restarts_etcd():
    probe, stamp, files = converged_state()
    stamp[1] = f"file 100:0:1:5 100:0:1:99 {etcd.ETCD}"
    changes = [b for b in scripted.brief(plan(ScriptedHost(probe, stamp, files))) if not b.startswith("skip")]
    assert changes == [
        "local download etcd 3.5.17 (linux/amd64)",
        f"upload {install.INSTALLER}",
        f"transfer {install.STAGING}/etcd-v3.5.17-linux-amd64.tar.gz",
        "run install etcd 3.5.17 into /usr/local/bin",
        "run (re)start etcd 3.5.17 on its new binary/unit/certificates",
        "run wait until etcd answers its health check (up to 60 s)",
    ]


def test_stopped_etcd_or_loose_data_dir_is_started_without_a_restart():
    for key, value in (("ActiveState", "failed"), ("datadir", 0o755)):
        probe, stamp, files = converged_state()
        probe[key] = value
        changes = [s for s in plan(ScriptedHost(probe, stamp, files)) if not isinstance(s, Skip)]
        assert [s.note for s in changes] == [
            "start etcd (enabled, its data dir 0700)",
            "wait until etcd answers its health check (up to 60 s)",
        ]
        assert "chmod 0700 /var/lib/etcd" in changes[0].argv[2]


def test_missing_certificates_say_to_run_the_certs_phase_first():
    with pytest.raises(KubeinitError, match=r"run the certs phase first") as e:
        plan(ScriptedHost(FRESH))
    assert "\n" not in str(e.value) and f"this host has no etcd certificates in {PKI}/etcd:" in str(e.value)
    files = cert_files()
    del files[f"{PKI}/etcd/server.key"]
    with pytest.raises(KubeinitError, match=f"this host has no {PKI}/etcd/server.key: run the certs phase first"):
        plan(ScriptedHost(FRESH, files=files))


def test_certificates_planned_earlier_in_the_run_count_as_there():
    host = ScriptedHost(FRESH)
    ctx, t = context(host)
    for p in CERTS:
        t.facts.plan_write(p, b"planned by the certs phase", 0o600)
    t.facts.gather(etcd.facts(ctx, t))
    assert "run wait until etcd answers its health check (up to 60 s)" in scripted.brief(etcd.plan_etcd(ctx, t))


TWO = [
    {"name": "n1", "address": "10.0.0.1", "role": "control-plane"},
    {"name": "n2", "address": "10.0.0.2", "role": "control-plane"},
]


def test_the_first_of_several_control_planes_starts_a_cluster_of_itself():
    spec = make_spec(hosts=TWO)
    ctx, t = context(None, spec)
    text = etcd.unit(ctx, t, "3.5.17", "amd64")
    assert "--initial-cluster=n1=https://10.0.0.1:2380" in exec_args(text)
    assert "EnvironmentFile" not in text
    steps = plan(ScriptedHost(FRESH, files=cert_files()), spec)
    assert "run (re)start etcd 3.5.17 on its new binary/unit/certificates" in scripted.brief(steps)


# --- the unit ----------------------------------------------------------------------------


def exec_args(unit: str) -> list[str]:
    line = unit.split("ExecStart=", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    return shlex.split(line)


@pytest.mark.parametrize("version", ["3.4.23", "3.5.17"])
def test_unit_has_kubeadms_flags(version):
    ctx, t = context(None, make_spec(version))
    argv = exec_args(etcd.unit(ctx, t, version, "amd64"))
    assert argv[0] == etcd.ETCD
    # kubeadm's stacked etcd arguments (reference §5.5), sorted by name as kubeadm sorts them
    assert argv[1:] == sorted(
        [
            "--name=n1",
            "--data-dir=/var/lib/etcd",
            "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.1:2379",
            "--advertise-client-urls=https://10.0.0.1:2379",
            "--listen-peer-urls=https://10.0.0.1:2380",
            "--initial-advertise-peer-urls=https://10.0.0.1:2380",
            "--initial-cluster=n1=https://10.0.0.1:2380",
            f"--cert-file={PKI}/etcd/server.crt",
            f"--key-file={PKI}/etcd/server.key",
            f"--trusted-ca-file={PKI}/etcd/ca.crt",
            "--client-cert-auth=true",
            f"--peer-cert-file={PKI}/etcd/peer.crt",
            f"--peer-key-file={PKI}/etcd/peer.key",
            f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
            "--peer-client-cert-auth=true",
            "--snapshot-count=10000",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            "--experimental-initial-corrupt-check=true",
            "--experimental-watch-progress-notify-interval=5s",
        ]
    )
    unit = etcd.unit(ctx, t, version, "amd64")
    assert "Type=notify" in unit and "WantedBy=multi-user.target" in unit and "Environment" not in unit


def test_etcd_36_uses_feature_gates_not_experimental_flags():
    ctx, t = context(None, make_spec("3.6.5"))
    argv = exec_args(etcd.unit(ctx, t, "3.6.5", "amd64"))
    assert "--feature-gates=InitialCorruptCheck=true" in argv and "--watch-progress-notify-interval=5s" in argv
    assert not [a for a in argv if a.startswith("--experimental-")]


def test_extra_args_are_added_and_replace_kubeadms():
    spec = make_spec(extra={"snapshot-count": "5000", "quota-backend-bytes": "8589934592", "log-outputs": "stderr"})
    ctx, t = context(None, spec)
    argv = exec_args(etcd.unit(ctx, t, "3.5.17", "amd64"))
    assert "--snapshot-count=5000" in argv and "--snapshot-count=10000" not in argv
    assert "--quota-backend-bytes=8589934592" in argv and "--log-outputs=stderr" in argv
    assert argv[1:] == sorted(argv[1:])


def test_systemd_specials_in_values_are_kept_as_given():
    assert etcd._systemd_arg("--x=a b") == '"--x=a b"'
    assert etcd._systemd_arg("--x=50%") == "--x=50%%"
    assert etcd._systemd_arg("--x=$HOME") == "--x=$$HOME"


def test_old_etcd_on_arm64_is_told_the_arch_is_wanted():
    ctx, t = context(None, make_spec("3.4.23"))
    assert "Environment=ETCD_UNSUPPORTED_ARCH=arm64\n" in etcd.unit(ctx, t, "3.4.23", "arm64")
    assert "Environment" not in etcd.unit(ctx, t, "3.5.17", "arm64")
