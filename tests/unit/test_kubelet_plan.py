"""The kubelet-start phase over scripted facts (facts in -> steps out): the files kubeadm
writes for the kubelet, the flags it derives, and when the kubelet is (re)started."""

from __future__ import annotations

import json
import shlex

import pytest
import scripted
import yaml
from factsstub import FactsStub  # noqa: E402  (tests/unit is on sys.path)

from kubeinit import spec as specmod
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts.host import Addresses, Hostname, Program, Unit, UnitState
from kubeinit.hostops import install
from kubeinit.phases import kubelet
from kubeinit.steps import Run, Skip, Upload

KUBELET = "/usr/local/bin/kubelet"
CA, KUBECONFIG = "/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/kubelet.conf"
ADDR = "10.0.0.1"


class ScriptedHost(scripted.FilesHost):
    """A host's kubelet binary, units, hostname and addresses, given as parsed facts, and its files."""

    def __init__(
        self,
        files=None,
        binary: str | None = KUBELET,
        hostname: str = "n1",
        addrs=(ADDR, "10.0.2.15"),
        kubelet_state=("inactive", "disabled"),
        resolved: str = "inactive",
    ):
        super().__init__(files)
        self.binary, self.hostname, self.addrs = binary, hostname, addrs
        self.kubelet_state, self.resolved = kubelet_state, resolved

    def typed(self) -> dict:
        return {
            kubelet.KUBELET: Program(self.binary, "100:0:1:5") if self.binary else None,
            UnitState("kubelet"): Unit(*self.kubelet_state),
            UnitState("systemd-resolved"): Unit(self.resolved, "enabled"),
            Hostname(): self.hostname,
            Addresses(): frozenset(("127.0.0.1", *self.addrs)),
        }


def make_spec(extra: dict | None = None, name: str = "n1", address: str = ADDR, **artifacts):
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "t",
            "kubernetesVersion": "v1.32.5",
            "hosts": [{"name": name, "address": address, "role": "control-plane"}],
            "networking": {"serviceSubnet": "10.32.0.0/16", "dnsDomain": "corp.internal"},
            "components": {"kubelet": {"extraArgs": extra or {}}},
            "artifacts": artifacts,
        }
    )


def plan(host: ScriptedHost, spec=None, dry_run: bool = False):
    spec = spec or make_spec()
    t = Target(spec.hosts[0], lambda h: host, facts=FactsStub(host.typed(), conn=host))
    ctx = Context(spec, [t], Options(dry_run=dry_run))
    declared = kubelet.facts(ctx, t)
    t.facts.gather(declared)
    t.facts.declared = set(declared)  # the plan asks nothing else
    return list(kubelet.plan_kubelet_start(ctx, t))


def prerequisites() -> dict:
    return {CA: (scripted.sha("ca"), 0o644), KUBECONFIG: (scripted.sha("kc"), 0o600)}


def uploads(steps) -> dict[str, str]:
    return {s.path: s.data.decode() for s in steps if isinstance(s, Upload)}


def converged(host: ScriptedHost, spec=None) -> dict:
    """The files a first run wrote, and the APPLIED record its restart made."""
    host.files = prerequisites()
    files = {**prerequisites(), **{p: (scripted.sha(c), 0o644) for p, c in uploads(plan(host, spec)).items()}}
    watched = [kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN, KUBECONFIG]
    ids = {KUBELET: "100:0:1:5", **{p: files[p][0] for p in watched}}
    files[kubelet.APPLIED] = (scripted.sha(install.applied_text(ids)), 0o644)
    return files


def test_a_fresh_host_gets_kubeadms_four_files_and_a_start():
    host = ScriptedHost(prerequisites())
    steps = plan(host)
    assert host.commands == 1, "one round trip: the probe and every file's digest"
    files = uploads(steps)
    assert list(files) == [kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN]
    assert all(s.mode == 0o644 for s in steps if isinstance(s, Upload))
    config = yaml.safe_load(files[kubelet.CONFIG])
    assert config["clusterDNS"] == ["10.32.0.10"] and config["clusterDomain"] == "corp.internal"
    assert config["authentication"]["x509"]["clientCAFile"] == CA and "resolvConf" not in config
    assert "ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS" in files[kubelet.DROPIN]
    assert f"--kubeconfig={KUBECONFIG}" in files[kubelet.DROPIN]
    restart = steps[-1]
    assert isinstance(restart, Run) and "systemctl restart kubelet" in restart.argv[2]
    assert (
        f"sha256sum {kubelet.CONFIG} {kubelet.FLAGS_ENV} {kubelet.UNIT} {kubelet.DROPIN} {KUBECONFIG}"
        in restart.argv[2]
    ), "APPLIED records what the kubelet was started with"


def test_flags_are_kubeadms_plus_the_node_ip_when_the_address_is_the_hosts_own():
    env = uploads(plan(ScriptedHost(prerequisites())))[kubelet.FLAGS_ENV]
    assert env == (
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock '
        f'--node-ip={ADDR}"\n'
    )
    # reached through NAT or a bastion: the address is not one of the host's, so no --node-ip
    env = uploads(plan(ScriptedHost(prerequisites(), addrs=("192.168.1.5",))))[kubelet.FLAGS_ENV]
    assert "--node-ip" not in env


def test_node_name_other_than_the_hostname_and_extra_args_sorted_with_go_quoting():
    spec = make_spec(extra={"v": "2", "node-ip": "10.0.2.15", "node-labels": 'a=b,"c"=d'})
    env = uploads(plan(ScriptedHost(prerequisites(), hostname="vm-123"), spec))[kubelet.FLAGS_ENV]
    assert env.startswith("KUBELET_KUBEADM_ARGS=") and env.endswith("\n") and env.count("\n") == 1
    args = shlex.split(json.loads(env.split("=", 1)[1]))  # Go's %q, as kubeadm writes it
    assert args == [
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        "--hostname-override=n1",
        "--node-ip=10.0.2.15",
        "--node-labels=a=b,c=d",
        "--v=2",
    ]


def test_systemd_resolved_means_its_resolv_conf():
    config = uploads(plan(ScriptedHost(prerequisites(), resolved="active")))[kubelet.CONFIG]
    assert yaml.safe_load(config)["resolvConf"] == "/run/systemd/resolve/resolv.conf"


def test_a_converged_host_only_skips():
    host = ScriptedHost(prerequisites(), kubelet_state=("active", "enabled"))
    host.files = converged(host)
    steps = plan(host)
    assert all(isinstance(s, Skip) for s in steps), scripted.brief(steps)
    assert steps[-1].reason.startswith("the kubelet is enabled and running")


def test_files_written_but_never_started_on_restart_next_time():
    host = ScriptedHost(prerequisites(), kubelet_state=("active", "enabled"))
    host.files = converged(host)
    del host.files[kubelet.APPLIED]  # a run killed between the uploads and the restart
    steps = plan(host)
    assert [type(s) for s in steps] == [Skip] * 4 + [Run] and "restart kubelet" in steps[-1].argv[2]
    host.files = converged(host)
    host.files[KUBECONFIG] = (scripted.sha("a renewed kubeconfig"), 0o600)  # the kubelet reads it at start
    assert isinstance(plan(host)[-1], Run)


def test_a_stopped_kubelet_on_the_right_files_is_started_not_restarted():
    host = ScriptedHost(prerequisites(), kubelet_state=("failed", "enabled"))
    host.files = converged(host)
    assert plan(host)[-1].argv == ("systemctl", "enable", "--now", "kubelet")


def test_missing_prerequisites_are_one_sentence_each():
    with pytest.raises(KubeinitError, match="has no kubelet: run the kubernetes phase"):
        plan(ScriptedHost(prerequisites(), binary=None))
    with pytest.raises(KubeinitError, match=r"no /etc/kubernetes/pki/ca.crt.*run the certs phase"):
        plan(ScriptedHost({KUBECONFIG: prerequisites()[KUBECONFIG]}))
    with pytest.raises(KubeinitError, match=r"no /etc/kubernetes/kubelet.conf: run the kubeconfig phase"):
        plan(ScriptedHost({CA: prerequisites()[CA]}))


def test_dry_run_before_the_kubelet_is_installed_plans_with_where_it_will_be():
    steps = plan(ScriptedHost(prerequisites(), binary=None), dry_run=True)
    assert "ExecStart=/usr/local/bin/kubelet" in uploads(steps)[kubelet.UNIT]
    spec = make_spec(kubelet={"enabled": False})
    with pytest.raises(KubeinitError, match="has no kubelet"):
        plan(ScriptedHost(prerequisites(), binary=None), spec, dry_run=True)


def test_a_kubelet_on_the_path_is_used_when_kubeinit_did_not_install_one():
    files = uploads(plan(ScriptedHost(prerequisites(), binary="/usr/bin/kubelet")))
    assert "ExecStart=/usr/bin/kubelet\n" in files[kubelet.UNIT]
    assert "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS" in files[kubelet.DROPIN]


def test_var_lib_kubelet_is_made_0700_as_kubeadm_makes_it_before_its_files():
    """An upload's parents are made 0755 (umask 022); /var/lib/kubelet is kubeadm's 0700."""
    steps = plan(ScriptedHost(prerequisites()))
    i = next(n for n, s in enumerate(steps) if isinstance(s, Upload) and s.path == kubelet.CONFIG)
    assert (
        isinstance(steps[i - 1], Run)
        and steps[i - 1].argv[2] == "[ -d /var/lib/kubelet ] || mkdir -m 0700 /var/lib/kubelet"
    )
    again = plan(ScriptedHost(converged(ScriptedHost(prerequisites()))))
    assert not any(isinstance(s, Run) and "mkdir" in s.argv[-1] for s in again), "a converged host: no such step"
