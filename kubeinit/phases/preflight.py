"""preflight: read-only checks of a host, kubeadm's names where they exist.

The checks are pure functions of the host's facts (typed: kubeinit/facts/host.py, node.py,
containerd.py), asked in a single round trip, so they are unit-tested with facts given parsed.
A check that already holds on a converged host passes (ports held by our own
components, manifests we wrote): re-running kubeinit never trips on itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.facts.containerd import ContainerdConfig, CriSettings
from kubeinit.facts.host import OS, Arch, Commands, Exists, Listening, OsRelease, Sysctl, Writable
from kubeinit.facts.node import CanLowerOomScore, Clock, Machine, Resources, Uid
from kubeinit.phases import PhaseImpl, upgrade_check
from kubeinit.steps import Check

SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")  # as the runtime phase asks them
SUPPORTED_OS = {"debian", "ubuntu", "rhel", "centos", "rocky", "almalinux", "fedora", "amzn", "sles", "opensuse-leap"}
# Port -> the file that shows our own component holds it on a converged host.
CONTROL_PLANE_PORTS = {
    6443: "/etc/kubernetes/manifests/kube-apiserver.yaml",
    10259: "/etc/kubernetes/manifests/kube-scheduler.yaml",
    10257: "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    2379: "/etc/systemd/system/etcd.service",
    2380: "/etc/systemd/system/etcd.service",
}
KUBELET_PORT = {10250: "/etc/kubernetes/kubelet.conf"}
MAX_CLOCK_SKEW = 30
# What the kubelet sets these to at start (its ContainerManager), and exits when it cannot.
KUBELET_TUNABLES = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
REQUIRED = ("ip", "iptables", "mount", "nsenter", "tar")  # commands kubeadm requires
OPTIONAL = ("ebtables", "ethtool", "socat", "tc", "touch")  # and those it warns about
SYSTEMD = "/run/systemd/system"  # there when systemd is PID 1
KMSG = "/dev/kmsg"
COMMANDS = Commands(REQUIRED + OPTIONAL)
PATHS = Exists((SYSTEMD, KMSG, *dict.fromkeys([*CONTROL_PLANE_PORTS.values(), *KUBELET_PORT.values()])))
TUNABLES = Writable(tuple(f"/proc/sys/{k}" for k in KUBELET_TUNABLES))
CONTAINERD = ContainerdConfig(CONTAINERD_CONFIG)


@dataclass
class Node:
    """What preflight reads of a host, from its facts."""

    uid: int | None  # None: the host did not answer
    os: OS
    arch: str
    machine: Machine
    clock: int | None
    commands: frozenset[str]  # which of COMMANDS are on the PATH
    paths: frozenset[str]  # which of PATHS exist
    listening: frozenset[int]
    sysctls: dict[str, str]  # SYSCTLS and KUBELET_TUNABLES -> value ("missing")
    writable: frozenset[str]  # which of TUNABLES' files may be written
    oom_score_adj: bool  # a process may lower its oom_score_adj
    containerd: CriSettings | None  # the host's containerd config (None: there is none)


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [
        Uid(),
        Arch(),
        OsRelease(),
        Resources(),
        Clock(),
        COMMANDS,
        PATHS,
        Listening(),
        *(Sysctl(k) for k in (*SYSCTLS, *KUBELET_TUNABLES)),
        TUNABLES,
        CanLowerOomScore(),
        CONTAINERD,
    ]


def node(target: Target) -> Node:
    f = target.facts
    return Node(
        uid=f.get(Uid()),
        os=f.get(OsRelease()),
        arch=f.get(Arch()),
        machine=f.get(Resources()),
        clock=f.get(Clock()),
        commands=f.get(COMMANDS),
        paths=f.get(PATHS),
        listening=f.get(Listening()),
        sysctls={k: f.get(Sysctl(k)) for k in (*SYSCTLS, *KUBELET_TUNABLES)},
        writable=f.get(TUNABLES),
        oom_score_adj=f.get(CanLowerOomScore()),
        containerd=f.get(CONTAINERD),
    )


def checker(ignore: frozenset[str]):
    """check(name, ok, message, fatal) -> Check, where --ignore-preflight-errors turns an error into a warning."""

    def check(name: str, ok: bool, msg: str = "", fatal: bool = True) -> Check:
        ignored = name.lower() in ignore or "all" in ignore
        return Check(name, ok, msg + (" (ignored)" if ignored and not ok else ""), fatal and not ignored)

    return check


def common_checks(n: Node, ignore: frozenset[str], now: float | None = None) -> Iterator[Check]:
    check = checker(ignore)
    yield check(
        "IsPrivilegedUser",
        n.uid == 0,
        "" if n.uid == 0 else "kubeinit must work as root; log in as root or give the user passwordless sudo",
    )
    os_id = n.os.id
    like = set(n.os.like)
    yield check(
        "OperatingSystem",
        os_id in SUPPORTED_OS or bool(like & SUPPORTED_OS),
        f"{os_id} {n.os.version}".strip()
        if os_id in SUPPORTED_OS or like & SUPPORTED_OS
        else f"{os_id or 'unknown'} is not a supported Linux distribution",
        fatal=False,
    )
    arch = n.arch
    yield check(
        "Architecture",
        arch in ("amd64", "arm64"),
        arch if arch in ("amd64", "arm64") else f"{arch or 'an unknown architecture'} is not amd64 or arm64",
    )
    systemd = SYSTEMD in n.paths
    yield check(
        "Systemd",
        systemd,
        "" if systemd else "systemd is not running as PID 1; kubeinit manages services with systemd",
    )
    for b in REQUIRED:
        ok = b in n.commands
        yield check(f"FileExisting-{b}", ok, "" if ok else f"{b} not found in PATH; install it")
    for b in OPTIONAL:
        ok = b in n.commands
        yield check(f"FileExisting-{b}", ok, "" if ok else f"{b} not found in PATH", fatal=False)
    if now is not None and n.clock is not None:
        skew = abs(n.clock - now)
        yield check(
            "Clock", skew <= MAX_CLOCK_SKEW, f"{skew:.0f}s from this machine's clock" if skew > 2 else "", fatal=False
        )


def kubelet_checks(n: Node, ctx: Context, ignore: frozenset[str], containerd_ours: bool) -> Iterator[Check]:
    """What a kubelet needs from its host, each failure with its fix: hosts that are containers
    themselves (LXC, systemd-nspawn, nested) lack several. `containerd_ours`: this run writes
    containerd's config (its settings come from the cluster file), else it is the host's own."""
    check = checker(ignore)
    kubelet = {k: str(v).lower() for k, v in ctx.spec.extra_args.get("kubelet", {}).items()}
    swap = n.machine.swaps
    fail_swap_on = kubelet.get("fail-swap-on", "true") != "false"
    yield check(
        "Swap",
        swap == 0,
        ""
        if swap == 0
        else "swap is on, and the kubelet refuses to start with it; turn it off (`swapoff -a`, and remove it from "
        '/etc/fstab), or let the kubelet use it with components.kubelet.extraArgs fail-swap-on: "false"'
        if fail_swap_on
        else "swap is on; the kubelet runs with it (fail-swap-on is false)",
        fatal=fail_swap_on,
    )
    ok = KMSG in n.paths
    yield check(
        "FileExisting--dev-kmsg",
        ok,
        ""
        if ok
        else "/dev/kmsg does not exist (a container?), and the kubelet exits without it; link it to the console "
        "as kind does: `echo 'L /dev/kmsg - - - - /dev/console' > /etc/tmpfiles.d/kmsg.conf && "
        "systemd-tmpfiles --create /etc/tmpfiles.d/kmsg.conf`",
    )
    protect = kubelet.get("protect-kernel-defaults") == "true"
    for key, want in KUBELET_TUNABLES.items():
        value, f, name = n.sysctls[key], f"/proc/sys/{key}", key.replace("/", ".")
        ok = value == want or (f in n.writable and not protect)
        why = (
            "and protect-kernel-defaults makes the kubelet refuse another value"
            if protect
            else "and read-only here (a container?): the kubelet sets it at start and exits when it cannot"
        )
        yield check(
            f"FileContent--proc-sys-{key.replace('/', '-')}",
            ok,
            ("" if value == want else f"the kubelet sets it to {want}")
            if ok
            else f"{f} is {value}, not {want}, {why}; set it where it can be written (`sysctl -w {name}={want}`, "
            "on the machine that hosts this one when it is a container), and persist it in /etc/sysctl.d",
        )
    settings = ctx.spec.runtime.containerd
    restricted = (
        settings.restrict_oom_score_adj or _sets_true(settings.config_patch, "restrict_oom_score_adj")
        if containerd_ours
        else n.containerd is not None and n.containerd.restrict_oom_score_adj
    )
    ok = n.oom_score_adj or restricted
    yield check(
        "OOMScoreAdj",
        ok,
        ("" if n.oom_score_adj else "containerd restricts oom_score_adj (restrict_oom_score_adj)")
        if ok
        else "this host may not lower /proc/self/oom_score_adj (no CAP_SYS_RESOURCE: a container?), so every "
        "pod sandbox would fail to start (runc: `can't get final child's PID from pipe: EOF`); set "
        "runtime.containerd.restrictOOMScoreAdj: true in the cluster file"
        if containerd_ours
        else "this host may not lower /proc/self/oom_score_adj (no CAP_SYS_RESOURCE: a container?), so every "
        f"pod sandbox would fail to start; set `restrict_oom_score_adj = true` in the CRI plugin's section "
        f"of {CONTAINERD_CONFIG} and restart containerd",
    )
    if not containerd_ours:
        if n.containerd is None:
            yield check(
                "CgroupDriver",
                False,
                f"{CONTAINERD_CONFIG} does not exist, so containerd uses the cgroupfs "
                "driver, and the kubelet uses systemd's (as kubeinit configures it); write containerd's "
                "config with `SystemdCgroup = true` in the runc runtime's options and restart containerd",
            )
        else:
            ok = n.containerd.systemd_cgroup
            yield check(
                "CgroupDriver",
                ok,
                ""
                if ok
                else f"containerd's {CONTAINERD_CONFIG} does not set `SystemdCgroup = true` in the runc runtime's "
                "options, and the kubelet uses the systemd cgroup driver (as kubeinit configures it); set it "
                "and restart containerd",
            )


def _sets_true(toml: str, key: str) -> bool:
    """Whether a TOML text sets `key` = true in any table."""
    import tomllib

    def find(table: dict) -> bool:
        return any(v is True if k == key else isinstance(v, dict) and find(v) for k, v in table.items())

    try:
        return bool(toml) and find(tomllib.loads(toml))
    except tomllib.TOMLDecodeError:
        return False


def port_checks(n: Node, ports: dict[int, str], ignore: frozenset[str]) -> Iterator[Check]:
    for port, ours in ports.items():
        name = f"Port-{port}"
        busy = port in n.listening and ours not in n.paths
        ignored = name.lower() in ignore or "all" in ignore
        yield Check(name, not busy, f"port {port} is in use by another program; free it" if busy else "", not ignored)


def forwarding_checks(n: Node, ignore: frozenset[str], fatal: bool = True) -> Iterator[Check]:
    """kubeadm requires IPv4 forwarding. `up` sets it itself (runtime phase), so there it only warns."""
    f = "/proc/sys/net/ipv4/ip_forward"
    v = n.sysctls["net/ipv4/ip_forward"]
    name = "FileContent--proc-sys-net-ipv4-ip_forward"
    ignored = name.lower() in ignore or "all" in ignore
    yield Check(
        name,
        v == "1",
        "" if v == "1" else f"{f} is {v}, not 1; run `sysctl -w net.ipv4.ip_forward=1` and persist it in /etc/sysctl.d",
        fatal and not ignored,
    )
    b = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    v = n.sysctls["net/bridge/bridge-nf-call-iptables"]
    yield Check(
        "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
        v == "1",
        "" if v == "1" else f"{b} is {v}; load br_netfilter and set it to 1",
        fatal=False,
    )


def plan_init(ctx: Context, target: Target) -> Iterator[Check]:
    n = node(target)
    ig = ctx.options.ignore_preflight_errors
    yield from common_checks(n, ig)
    cpus = n.machine.cpus
    yield Check(
        "NumCPU",
        cpus >= 2,
        f"{cpus} CPU; the control plane needs at least 2" if cpus < 2 else "",
        "numcpu" not in ig and "all" not in ig,
    )
    mem_mb = n.machine.mem_kb // 1024
    yield Check(
        "Mem",
        mem_mb >= 1700,
        f"{mem_mb} MB; the control plane needs at least 1700 MB" if mem_mb < 1700 else "",
        "mem" not in ig and "all" not in ig,
    )
    yield from port_checks(n, {**CONTROL_PLANE_PORTS, **KUBELET_PORT}, ig)
    yield from forwarding_checks(n, ig)
    yield from kubelet_checks(n, ctx, ig, containerd_ours=False)  # init, as kubeadm's, leaves containerd alone


def plan_join(ctx: Context, target: Target) -> Iterator[Check]:
    n = node(target)
    ig = ctx.options.ignore_preflight_errors
    yield from common_checks(n, ig)
    yield from kubelet_checks(n, ctx, ig, containerd_ours=False)
    yield from port_checks(n, KUBELET_PORT, ig)
    yield from forwarding_checks(n, ig)


def plan_up(ctx: Context, target: Target) -> Iterator[Check]:
    """Before installing anything: what must hold on every host of `up`."""
    n = node(target)
    ig = ctx.options.ignore_preflight_errors
    if n.uid is None:
        yield Check("Probe", False, "the host did not answer the probe; check that sh works there")
        return
    yield from common_checks(n, ig, now=time.time())
    yield from kubelet_checks(n, ctx, ig, containerd_ours=ctx.spec.artifact("containerd").enabled)
    ports = dict(KUBELET_PORT)
    if target.host.is_control_plane:
        ports.update(CONTROL_PLANE_PORTS)
        cpus = n.machine.cpus
        yield Check(
            "NumCPU", cpus >= 2, f"{cpus} CPU; a control plane needs at least 2" if cpus < 2 else "", fatal=False
        )
    yield from port_checks(n, ports, ig)
    yield from forwarding_checks(n, ig, fatal=False)
    yield from upgrade_check.up_guard(ctx, target)  # a running cluster at another version: upgrade apply's


def facts_up(ctx: Context, target: Target) -> list[Fact]:
    return facts(ctx, target) + upgrade_check.up_guard_facts(ctx, target)


INIT = PhaseImpl(plan_init, facts, read_only=True)
JOIN = PhaseImpl(plan_join, facts, read_only=True)
UP = PhaseImpl(plan_up, facts_up, read_only=True)
