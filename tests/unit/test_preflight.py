"""preflight over facts given parsed: what a host has, which checks come out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from factsstub import FactsStub

from kubeinit import spec as specmod
from kubeinit.context import Context, Options, Target
from kubeinit.facts.containerd import CriSettings
from kubeinit.facts.host import GOARCH, OS, Arch, Listening, OsRelease, Sysctl
from kubeinit.facts.node import CanLowerOomScore, Clock, Machine, Resources, Uid
from kubeinit.phases import preflight
from kubeinit.phases.preflight import COMMANDS, CONTAINERD, KMSG, PATHS, SYSTEMD, TUNABLES

EVERY_COMMAND = frozenset(preflight.REQUIRED + preflight.OPTIONAL)
IP_FORWARD, BRIDGE = Sysctl("net/ipv4/ip_forward"), Sysctl("net/bridge/bridge-nf-call-iptables")
HEALTHY = {
    Uid(): 0,
    Arch(): "amd64",
    OsRelease(): OS("debian", "12"),
    Resources(): Machine(cpus=4, mem_kb=8_000_000, swaps=0),
    Clock(): 0,
    COMMANDS: EVERY_COMMAND,
    PATHS: frozenset({SYSTEMD, KMSG}),
    Listening(): frozenset(),
    IP_FORWARD: "1",
    BRIDGE: "1",
    Sysctl("vm/overcommit_memory"): "0",
    Sysctl("kernel/panic"): "0",
    Sysctl("kernel/panic_on_oops"): "1",
    TUNABLES: frozenset(TUNABLES.paths),
    CanLowerOomScore(): True,
    CONTAINERD: CriSettings(systemd_cgroup=True, restrict_oom_score_adj=False),
}
# A host that is a container itself (systemd-nspawn, unprivileged LXC): no /dev/kmsg, /proc/sys
# read-only with the host's values, no CAP_SYS_RESOURCE.
CONTAINER = {
    **HEALTHY,
    PATHS: frozenset({SYSTEMD}),
    Sysctl("vm/overcommit_memory"): "0",
    Sysctl("kernel/panic"): "1",
    Sysctl("kernel/panic_on_oops"): "0",
    TUNABLES: frozenset(),
    CanLowerOomScore(): False,
}
KUBELET_CHECKS = [
    "FileContent--proc-sys-kernel-panic",
    "FileContent--proc-sys-kernel-panic_on_oops",
    "FileContent--proc-sys-vm-overcommit_memory",
    "FileExisting--dev-kmsg",
    "OOMScoreAdj",
]


def machine(**kw) -> Machine:
    return dataclasses.replace(HEALTHY[Resources()], **kw)


def checks(facts, fn=preflight.INIT, ignore=frozenset(), role="control-plane", spec=None):
    spec = spec or specmod.ClusterSpec(hosts=[specmod.Host("n1", "10.0.0.1", role)])
    stub = FactsStub(facts)
    t = Target(spec.hosts[0], lambda h: stub.conn, facts=stub)
    ctx = Context(spec, [t], Options(ignore_preflight_errors=ignore))
    stub.gather(fn.facts(ctx, t))
    stub.declared = set(fn.facts(ctx, t))
    return {c.name: c for c in fn.plan(ctx, t)}


def failing(cs):
    return sorted(n for n, c in cs.items() if not c.passed and c.fatal)


def test_healthy_host_passes_everything():
    cs = checks(HEALTHY)
    assert failing(cs) == []
    assert {
        "IsPrivilegedUser",
        "NumCPU",
        "Mem",
        "Port-6443",
        "Port-10250",
        "Swap",
        "FileContent--proc-sys-net-ipv4-ip_forward",
    } <= set(cs)


def test_kubeadm_errors_on_a_small_non_root_host():
    cs = checks(
        {
            **HEALTHY,
            Uid(): 1000,
            Resources(): machine(cpus=1, mem_kb=1_000_000),
            IP_FORWARD: "0",
            COMMANDS: EVERY_COMMAND - {"iptables"},
        }
    )
    assert failing(cs) == [
        "FileContent--proc-sys-net-ipv4-ip_forward",
        "FileExisting-iptables",
        "IsPrivilegedUser",
        "Mem",
        "NumCPU",
    ]
    assert "sysctl -w net.ipv4.ip_forward=1" in cs["FileContent--proc-sys-net-ipv4-ip_forward"].message


def test_optional_binaries_only_warn():
    cs = checks({**HEALTHY, COMMANDS: EVERY_COMMAND - {"socat"}})
    assert failing(cs) == []
    assert not cs["FileExisting-socat"].passed


def test_swap_is_an_error_unless_the_kubelet_may_run_with_it():
    """The kubelet refuses to start with swap on (failSwapOn, true unless set otherwise)."""
    swapping = {**HEALTHY, Resources(): machine(swaps=1)}
    cs = checks(swapping)
    assert failing(cs) == ["Swap"]
    assert "swapoff -a" in cs["Swap"].message and "fail-swap-on" in cs["Swap"].message
    spec = specmod.ClusterSpec(
        hosts=[specmod.Host("n1", "10.0.0.1", "control-plane")], extra_args={"kubelet": {"fail-swap-on": "false"}}
    )
    cs = checks(swapping, spec=spec)
    assert failing(cs) == [] and not cs["Swap"].passed


def up_spec(**fields):
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "c",
            "hosts": [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
            **fields,
        }
    )


def test_a_host_that_is_a_container_gets_each_kubelet_condition_with_its_fix():
    cs = checks(CONTAINER, fn=preflight.UP, spec=up_spec())
    assert failing(cs) == KUBELET_CHECKS
    assert (
        "`echo 'L /dev/kmsg - - - - /dev/console' > /etc/tmpfiles.d/kmsg.conf && systemd-tmpfiles --create "
        "/etc/tmpfiles.d/kmsg.conf`" in cs["FileExisting--dev-kmsg"].message
    )
    assert cs["FileContent--proc-sys-kernel-panic"].message.startswith(
        "/proc/sys/kernel/panic is 1, not 10, and read-only here (a container?): the kubelet sets it at start and "
        "exits when it cannot; set it where it can be written (`sysctl -w kernel.panic=10`"
    )
    assert "`sysctl -w vm.overcommit_memory=1`" in cs["FileContent--proc-sys-vm-overcommit_memory"].message
    assert "`sysctl -w kernel.panic_on_oops=1`" in cs["FileContent--proc-sys-kernel-panic_on_oops"].message
    assert cs["OOMScoreAdj"].message.endswith("set runtime.containerd.restrictOOMScoreAdj: true in the cluster file")
    # kubeadm's way to go on regardless
    cs = checks(CONTAINER, fn=preflight.UP, spec=up_spec(), ignore=frozenset(n.lower() for n in KUBELET_CHECKS))
    assert failing(cs) == [] and all(cs[n].message.endswith("(ignored)") for n in KUBELET_CHECKS)


def test_tunables_already_as_the_kubelet_wants_or_writable_pass():
    right = {
        **CONTAINER,
        Sysctl("vm/overcommit_memory"): "1",
        Sysctl("kernel/panic"): "10",
        Sysctl("kernel/panic_on_oops"): "1",
    }
    assert not [n for n in failing(checks(right)) if n.startswith("FileContent--proc-sys")]
    cs = checks(HEALTHY)  # wrong values, writable: the kubelet sets them
    assert cs["FileContent--proc-sys-kernel-panic"].passed
    assert cs["FileContent--proc-sys-kernel-panic"].message == "the kubelet sets it to 10"
    # unless the kubelet is told to refuse other values than its own
    spec = specmod.ClusterSpec(
        hosts=[specmod.Host("n1", "10.0.0.1", "control-plane")],
        extra_args={"kubelet": {"protect-kernel-defaults": "true"}},
    )
    cs = checks(HEALTHY, spec=spec)
    assert failing(cs) == ["FileContent--proc-sys-kernel-panic", "FileContent--proc-sys-vm-overcommit_memory"]
    assert "protect-kernel-defaults" in cs["FileContent--proc-sys-kernel-panic"].message


def test_oom_score_adj_passes_once_containerd_is_told_to_restrict_it():
    assert "OOMScoreAdj" not in failing(
        checks(CONTAINER, fn=preflight.UP, spec=up_spec(runtime={"containerd": {"restrictOOMScoreAdj": True}}))
    )
    patch = '[plugins."io.containerd.grpc.v1.cri"]\nrestrict_oom_score_adj = true\n'
    assert "OOMScoreAdj" not in failing(
        checks(CONTAINER, fn=preflight.UP, spec=up_spec(runtime={"containerd": {"configPatch": patch}}))
    )
    # the host's own containerd (init, or artifacts.containerd.enabled: false): its config file decides
    cs = checks(CONTAINER)
    assert "OOMScoreAdj" in failing(cs)
    assert (
        "`restrict_oom_score_adj = true` in the CRI plugin's section of /etc/containerd/config.toml"
        in cs["OOMScoreAdj"].message
    )
    restricted = CriSettings(systemd_cgroup=True, restrict_oom_score_adj=True)
    assert "OOMScoreAdj" not in failing(checks({**CONTAINER, CONTAINERD: restricted}))


def test_cgroup_driver_agreement_is_checked_when_containerds_config_is_not_kubeinits():
    cgroupfs = {**HEALTHY, CONTAINERD: CriSettings(systemd_cgroup=False)}
    cs = checks(cgroupfs)
    assert failing(cs) == ["CgroupDriver"]
    assert "`SystemdCgroup = true`" in cs["CgroupDriver"].message
    no_config = {**HEALTHY, CONTAINERD: None}
    assert "containerd uses the cgroupfs driver" in checks(no_config)["CgroupDriver"].message
    # `up` writes containerd's config itself (SystemdCgroup = true): nothing to check
    assert "CgroupDriver" not in checks(cgroupfs, fn=preflight.UP, spec=up_spec())
    own = up_spec(artifacts={"containerd": {"enabled": False}})
    assert failing(checks(cgroupfs, fn=preflight.UP, spec=own)) == ["CgroupDriver"]


def test_busy_port_fails_unless_our_own_component_holds_it():
    busy = {**HEALTHY, Listening(): frozenset({6443, 2379})}
    cs = checks(busy)
    assert failing(cs) == ["Port-2379", "Port-6443"]
    ours = {"/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/systemd/system/etcd.service"}
    converged = checks({**busy, PATHS: HEALTHY[PATHS] | ours})
    assert failing(converged) == []


def test_ignore_preflight_errors_turns_errors_into_warnings():
    small = {**HEALTHY, Resources(): machine(cpus=1)}
    cs = checks({**small, Listening(): frozenset({6443})}, ignore=frozenset({"numcpu", "port-6443"}))
    assert failing(cs) == []
    assert not cs["NumCPU"].passed and not cs["Port-6443"].passed
    assert failing(checks(small, ignore=frozenset({"all"}))) == []


def test_up_preflight_leaves_forwarding_to_the_runtime_phase():
    cs = checks({**HEALTHY, IP_FORWARD: "0"}, fn=preflight.UP, role="worker")
    assert failing(cs) == []
    assert not cs["FileContent--proc-sys-net-ipv4-ip_forward"].passed
    assert "Port-6443" not in cs  # a worker does not serve the API


def test_clock_skew_is_reported_for_up():
    import time

    cs = checks({**HEALTHY, Clock(): int(time.time()) - 120}, fn=preflight.UP)
    assert not cs["Clock"].passed and not cs["Clock"].fatal
    assert checks({**HEALTHY, Clock(): int(time.time())}, fn=preflight.UP)["Clock"].passed


def test_a_host_that_does_not_answer_fails_one_check_that_says_so():
    cs = checks({**HEALTHY, Uid(): None}, fn=preflight.UP)
    assert list(cs) == ["Probe"] and "did not answer" in cs["Probe"].message


def test_the_facts_run_in_this_machines_shell_and_report_what_is_true_here():
    """The facts' commands themselves (not given answers): run by sh here, parsed, read by the phases."""
    import os
    import platform
    import shutil
    import time

    from kubeinit.connection import LocalConnection
    from kubeinit.facts import Facts
    from kubeinit.facts.node import KernelModules
    from kubeinit.phases import runtime

    class Local:
        def __init__(self):
            self.facts = Facts(LocalConnection())

    t = Local()
    t.facts.gather([*preflight.facts(None, t), KernelModules(), runtime.MODPROBE])
    n = preflight.node(t)
    assert n.uid == os.geteuid()
    assert n.arch == GOARCH.get(platform.machine(), platform.machine())
    assert n.machine.cpus == len(os.sched_getaffinity(0))
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    assert n.machine.mem_kb == int(meminfo["MemTotal"].split()[0])
    assert n.machine.swaps == len(open("/proc/swaps").read().splitlines()) - 1
    assert n.sysctls["net/ipv4/ip_forward"] == open("/proc/sys/net/ipv4/ip_forward").read().strip()
    assert n.commands == {c for c in EVERY_COMMAND if shutil.which(c)} and "mount" in n.commands
    assert (KMSG in n.paths, SYSTEMD in n.paths) == (os.path.exists(KMSG), os.path.exists(SYSTEMD))
    assert n.sysctls["kernel/panic"] == Path("/proc/sys/kernel/panic").read_text().strip()
    assert ("/proc/sys/kernel/panic" in n.writable) == os.access("/proc/sys/kernel/panic", os.W_OK)
    assert isinstance(n.oom_score_adj, bool) and abs(n.clock - time.time()) < 5
    assert all(isinstance(p, int) and 0 < p < 65536 for p in n.listening)
    config = Path(preflight.CONTAINERD_CONFIG)
    assert (n.containerd is None) == (not os.access(config, os.R_OK))
    modules = t.facts.get(KernelModules())
    filesystems = Path("/proc/filesystems").read_text().split()
    assert ("overlay" in modules.present) == ("overlay" in filesystems)
    bridge = os.access("/proc/sys/net/bridge/bridge-nf-call-iptables", os.R_OK)
    assert ("br_netfilter" in modules.present) == bridge and not modules.present & modules.loadable
    assert t.facts.get(runtime.MODPROBE) == ({"modprobe"} if shutil.which("modprobe") else set())
