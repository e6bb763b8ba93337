"""preflight over scripted facts: what a host reports in, which checks come out."""

from __future__ import annotations

from pathlib import Path

from factsstub import FactsStub

from kubeinit import spec as specmod
from kubeinit.connection import Result
from kubeinit.context import Context, Options, Target
from kubeinit.facts import Command
from kubeinit.facts.host import GOARCH, OS, Arch, OsRelease, Sysctl
from kubeinit.phases import preflight

HEALTHY = {
    "uid": "0",
    "nproc": "4",
    "mem_kb": "8000000",
    "swap_lines": "0",
    "arch": "x86_64",
    "now": "0",
    "systemd": "yes",
    "sysctl:/proc/sys/net/ipv4/ip_forward": "1",
    "sysctl:/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
    **{
        f"bin:{b}": "yes"
        for b in (
            "ip",
            "iptables",
            "mount",
            "nsenter",
            "ebtables",
            "ethtool",
            "socat",
            "tc",
            "touch",
            "conntrack",
            "tar",
        )
    },
    "listen": "",
    "os_id": "debian",
    "os_version": "12",
    "os_like": "",
    "kmsg": "yes",
    "tunable:vm/overcommit_memory": "0 yes",
    "tunable:kernel/panic": "0 yes",
    "tunable:kernel/panic_on_oops": "1 yes",
    "oom_score_adj": "yes",
    "containerd:systemd_cgroup": "yes",
    "containerd:restrict_oom_score_adj": "no",
}
# A host that is a container itself (systemd-nspawn, unprivileged LXC): no /dev/kmsg, /proc/sys
# read-only with the host's values, no CAP_SYS_RESOURCE.
CONTAINER = {
    **HEALTHY,
    "kmsg": "no",
    "tunable:vm/overcommit_memory": "0 no",
    "tunable:kernel/panic": "1 no",
    "tunable:kernel/panic_on_oops": "0 no",
    "oom_score_adj": "no",
}
KUBELET_CHECKS = [
    "FileContent--proc-sys-kernel-panic",
    "FileContent--proc-sys-kernel-panic_on_oops",
    "FileContent--proc-sys-vm-overcommit_memory",
    "FileExisting--dev-kmsg",
    "OOMScoreAdj",
]


SHARED = ("arch", "os_id", "os_version", "os_like")  # typed facts (kubeinit/facts/host.py), given parsed


def host_facts(answers: dict[str, str]) -> FactsStub:
    """The host's facts: the preflight probe's key=value answers, and the shared facts parsed."""
    probe = "".join(f"{k}={v}\n" for k, v in answers.items() if k not in SHARED and not k.startswith("sysctl:"))
    arch = answers.get("arch", "")
    return FactsStub(
        {
            Command(("sh", "-c", preflight.PROBE)): Result(0, probe.encode(), b""),
            Arch(): GOARCH.get(arch, arch),
            **{Sysctl(k): answers.get(f"sysctl:/proc/sys/{k}", "missing") for k in preflight.SYSCTLS},
            OsRelease(): OS(
                answers.get("os_id", ""), answers.get("os_version", ""), tuple(answers.get("os_like", "").split())
            ),
        }
    )


def checks(answers, fn=preflight.INIT, ignore=frozenset(), role="control-plane", spec=None):
    spec = spec or specmod.ClusterSpec(hosts=[specmod.Host("n1", "10.0.0.1", role)])
    facts = host_facts(answers)
    t = Target(spec.hosts[0], lambda h: facts.conn, facts=facts)
    ctx = Context(spec, [t], Options(ignore_preflight_errors=ignore))
    facts.gather(fn.facts(ctx, t))
    facts.declared = set(fn.facts(ctx, t))
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
            "uid": "1000",
            "nproc": "1",
            "mem_kb": "1000000",
            "sysctl:/proc/sys/net/ipv4/ip_forward": "0",
            "bin:iptables": "no",
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
    cs = checks({**HEALTHY, "bin:socat": "no"})
    assert failing(cs) == []
    assert not cs["FileExisting-socat"].passed


def test_swap_is_an_error_unless_the_kubelet_may_run_with_it():
    """The kubelet refuses to start with swap on (failSwapOn, true unless set otherwise)."""
    cs = checks({**HEALTHY, "swap_lines": "1"})
    assert failing(cs) == ["Swap"]
    assert "swapoff -a" in cs["Swap"].message and "fail-swap-on" in cs["Swap"].message
    spec = specmod.ClusterSpec(
        hosts=[specmod.Host("n1", "10.0.0.1", "control-plane")], extra_args={"kubelet": {"fail-swap-on": "false"}}
    )
    cs = checks({**HEALTHY, "swap_lines": "1"}, spec=spec)
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
        "tunable:vm/overcommit_memory": "1 no",
        "tunable:kernel/panic": "10 no",
        "tunable:kernel/panic_on_oops": "1 no",
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
    assert "OOMScoreAdj" not in failing(checks({**CONTAINER, "containerd:restrict_oom_score_adj": "yes"}))


def test_cgroup_driver_agreement_is_checked_when_containerds_config_is_not_kubeinits():
    cs = checks({**HEALTHY, "containerd:systemd_cgroup": "no"})
    assert failing(cs) == ["CgroupDriver"]
    assert "`SystemdCgroup = true`" in cs["CgroupDriver"].message
    no_config = {k: v for k, v in HEALTHY.items() if not k.startswith("containerd:")}
    assert "containerd uses the cgroupfs driver" in checks(no_config)["CgroupDriver"].message
    # `up` writes containerd's config itself (SystemdCgroup = true): nothing to check
    assert "CgroupDriver" not in checks({**HEALTHY, "containerd:systemd_cgroup": "no"}, fn=preflight.UP, spec=up_spec())
    own = up_spec(artifacts={"containerd": {"enabled": False}})
    assert failing(checks({**HEALTHY, "containerd:systemd_cgroup": "no"}, fn=preflight.UP, spec=own)) == [
        "CgroupDriver"
    ]


def test_busy_port_fails_unless_our_own_component_holds_it():
    listen = f"{6443:04X} {2379:04X}"
    cs = checks({**HEALTHY, "listen": listen})
    assert failing(cs) == ["Port-2379", "Port-6443"]
    converged = checks(
        {
            **HEALTHY,
            "listen": listen,
            "file:/etc/kubernetes/manifests/kube-apiserver.yaml": "yes",
            "file:/etc/systemd/system/etcd.service": "yes",
        }
    )
    assert failing(converged) == []


def test_ignore_preflight_errors_turns_errors_into_warnings():
    cs = checks({**HEALTHY, "nproc": "1", "listen": f"{6443:04X}"}, ignore=frozenset({"numcpu", "port-6443"}))
    assert failing(cs) == []
    assert not cs["NumCPU"].passed and not cs["Port-6443"].passed
    assert failing(checks({**HEALTHY, "nproc": "1"}, ignore=frozenset({"all"}))) == []


def test_up_preflight_leaves_forwarding_to_the_runtime_phase():
    cs = checks({**HEALTHY, "sysctl:/proc/sys/net/ipv4/ip_forward": "0"}, fn=preflight.UP, role="worker")
    assert failing(cs) == []
    assert not cs["FileContent--proc-sys-net-ipv4-ip_forward"].passed
    assert "Port-6443" not in cs  # a worker does not serve the API


def test_clock_skew_is_reported_for_up():
    import time

    cs = checks({**HEALTHY, "now": str(int(time.time()) - 120)}, fn=preflight.UP)
    assert not cs["Clock"].passed and not cs["Clock"].fatal


def test_the_probes_run_in_this_machines_shell_and_report_what_is_true_here():
    """The probe scripts themselves (not scripted answers): run by sh here, parsed by the phases."""
    import os
    import platform

    from kubeinit.connection import LocalConnection
    from kubeinit.facts import Facts
    from kubeinit.phases import runtime

    class Local:
        def __init__(self):
            self.facts = Facts(LocalConnection())

    t = Local()
    p = preflight.probe(t)
    assert p["_rc"] == "0"
    assert p["uid"] == str(os.geteuid())
    assert (p["arch"], p["kernel"]) == (GOARCH.get(platform.machine(), platform.machine()), platform.release())
    assert int(p["nproc"]) == len(os.sched_getaffinity(0))
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    assert p["mem_kb"] == meminfo["MemTotal"].split()[0]
    assert int(p["swap_lines"]) == len(open("/proc/swaps").read().splitlines()) - 1
    assert p["sysctl:/proc/sys/net/ipv4/ip_forward"] == open("/proc/sys/net/ipv4/ip_forward").read().strip()
    assert p["bin:mount"] == "yes"
    assert p["kmsg"] == ("yes" if os.path.exists("/dev/kmsg") else "no")
    value, writable = p["tunable:kernel/panic"].split()
    assert value == Path("/proc/sys/kernel/panic").read_text().strip()
    assert writable == ("yes" if os.access("/proc/sys/kernel/panic", os.W_OK) else "no")
    assert p["oom_score_adj"] in ("yes", "no")
    assert abs(int(p["now"]) - __import__("time").time()) < 5
    values, stamps = runtime.probe(t)
    assert values["arch"] == p["arch"]
    assert values["overlay"] in ("yes", "no") and values["modprobe"] in ("yes", "no")
    assert values["sysctl:net/ipv4/ip_forward"] == p["sysctl:/proc/sys/net/ipv4/ip_forward"]
