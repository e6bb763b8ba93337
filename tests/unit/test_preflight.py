"""preflight over scripted facts: what a host reports in, which checks come out."""

from __future__ import annotations

from kubeinit import spec as specmod
from kubeinit.connection import Result
from kubeinit.phases import preflight
from kubeinit.plan import Context, Options, Target

HEALTHY = {
    "uid": "0", "nproc": "4", "mem_kb": "8000000", "swap_lines": "0", "arch": "x86_64", "now": "0",
    "systemd": "yes", "sysctl:/proc/sys/net/ipv4/ip_forward": "1",
    "sysctl:/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
    **{f"bin:{b}": "yes" for b in ("ip", "iptables", "mount", "nsenter", "ebtables", "ethtool", "socat", "tc",
                                   "touch", "conntrack", "tar")},
    "listen": "", "os_id": "debian", "os_version": "12", "os_like": "",
}


class ScriptedHost:
    """A connection whose probe answers are given by the test (no real host)."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def run(self, argv, stdin=None, timeout=600):
        return Result(0, "".join(f"{k}={v}\n" for k, v in self.answers.items()).encode(), b"")

    def read(self, path):
        return None

    def close(self):
        pass


def checks(answers, fn=preflight.plan_init, ignore=frozenset(), role="control-plane"):
    spec = specmod.ClusterSpec(hosts=[specmod.Host("n1", "10.0.0.1", role)])
    t = Target(spec.hosts[0], lambda h: ScriptedHost(answers))
    ctx = Context(spec, [t], Options(ignore_preflight_errors=ignore))
    return {c.name: c for c in fn(ctx, t)}


def failing(cs):
    return sorted(n for n, c in cs.items() if not c.passed and c.fatal)


def test_healthy_host_passes_everything():
    cs = checks(HEALTHY)
    assert failing(cs) == []
    assert {"IsPrivilegedUser", "NumCPU", "Mem", "Port-6443", "Port-10250", "Swap",
            "FileContent--proc-sys-net-ipv4-ip_forward"} <= set(cs)


def test_kubeadm_errors_on_a_small_non_root_host():
    cs = checks({**HEALTHY, "uid": "1000", "nproc": "1", "mem_kb": "1000000",
                 "sysctl:/proc/sys/net/ipv4/ip_forward": "0", "bin:iptables": "no"})
    assert failing(cs) == ["FileContent--proc-sys-net-ipv4-ip_forward", "FileExisting-iptables",
                           "IsPrivilegedUser", "Mem", "NumCPU"]
    assert "sysctl -w net.ipv4.ip_forward=1" in cs["FileContent--proc-sys-net-ipv4-ip_forward"].message


def test_swap_and_optional_binaries_only_warn():
    cs = checks({**HEALTHY, "swap_lines": "1", "bin:socat": "no"})
    assert failing(cs) == []
    assert not cs["Swap"].passed and not cs["FileExisting-socat"].passed


def test_busy_port_fails_unless_our_own_component_holds_it():
    listen = f"{6443:04X} {2379:04X}"
    cs = checks({**HEALTHY, "listen": listen})
    assert failing(cs) == ["Port-2379", "Port-6443"]
    converged = checks({**HEALTHY, "listen": listen,
                        "file:/etc/kubernetes/manifests/kube-apiserver.yaml": "yes",
                        "file:/etc/systemd/system/etcd.service": "yes"})
    assert failing(converged) == []


def test_ignore_preflight_errors_turns_errors_into_warnings():
    cs = checks({**HEALTHY, "nproc": "1", "listen": f"{6443:04X}"}, ignore=frozenset({"numcpu", "port-6443"}))
    assert failing(cs) == []
    assert not cs["NumCPU"].passed and not cs["Port-6443"].passed
    assert failing(checks({**HEALTHY, "nproc": "1"}, ignore=frozenset({"all"}))) == []


def test_up_preflight_leaves_forwarding_to_the_runtime_phase():
    cs = checks({**HEALTHY, "sysctl:/proc/sys/net/ipv4/ip_forward": "0"}, fn=preflight.plan_up, role="worker")
    assert failing(cs) == []
    assert not cs["FileContent--proc-sys-net-ipv4-ip_forward"].passed
    assert "Port-6443" not in cs  # a worker does not serve the API


def test_clock_skew_is_reported_for_up():
    import time

    cs = checks({**HEALTHY, "now": str(int(time.time()) - 120)}, fn=preflight.plan_up)
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
    assert (p["arch"], p["kernel"]) == (platform.machine(), platform.release())
    assert int(p["nproc"]) == len(os.sched_getaffinity(0))
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    assert p["mem_kb"] == meminfo["MemTotal"].split()[0]
    assert int(p["swap_lines"]) == len(open("/proc/swaps").read().splitlines()) - 1
    assert p["sysctl:/proc/sys/net/ipv4/ip_forward"] == open("/proc/sys/net/ipv4/ip_forward").read().strip()
    assert p["bin:mount"] == "yes"
    assert abs(int(p["now"]) - __import__("time").time()) < 5
    values, stamps = runtime.probe(t)
    assert values["arch"] == platform.machine()
    assert values["overlay"] in ("yes", "no") and values["modprobe"] in ("yes", "no")
    assert values["sysctl:net/ipv4/ip_forward"] == p["sysctl:/proc/sys/net/ipv4/ip_forward"]
