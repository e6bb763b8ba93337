"""preflight: read-only checks of a host, kubeadm's names where they exist.

One probe script answers everything in a single round trip; the checks are
pure functions of its answers, so they are unit-tested with scripted facts.
A check that already holds on a converged host passes (ports held by our own
components, manifests we wrote): re-running kubeinit never trips on itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.facts import Command, Fact
from kubeinit.facts.host import Arch, OsRelease, Sysctl
from kubeinit.phases import PhaseImpl
from kubeinit.steps import Check

# Read-only. Builtins (read, [ ], command -v) where a fork is not needed: it runs on every
# host on every `up`, and on a converged cluster it is most of what a re-run costs.
PROBE = r"""
while read -r k _ e _; do [ "$k" = Uid: ] && echo "uid=$e" && break; done < /proc/self/status
set -- $(uname -r; date +%s; { nproc || grep -c ^processor /proc/cpuinfo; } 2>/dev/null)
echo "kernel=$1"; echo "now=$2"; echo "nproc=$3"
while read -r k v _; do [ "$k" = MemTotal: ] && echo "mem_kb=$v" && break; done < /proc/meminfo
n=0; [ -r /proc/swaps ] && while read -r _; do n=$((n+1)); done < /proc/swaps; echo "swap_lines=$((n > 0 ? n - 1 : 0))"
[ -d /run/systemd/system ] && echo systemd=yes || echo systemd=no
for b in ip iptables mount nsenter ebtables ethtool socat tc touch conntrack tar; do
  command -v $b >/dev/null 2>&1 && echo "bin:$b=yes" || echo "bin:$b=no"
done
for f in /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/kube-controller-manager.yaml \
         /etc/kubernetes/manifests/kube-scheduler.yaml /etc/systemd/system/etcd.service /etc/kubernetes/kubelet.conf; do
  [ -e $f ] && echo "file:$f=yes" || echo "file:$f=no"
done
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
  awk 'BEGIN {printf "listen="} $4 == "0A" {split($2, a, ":"); if (!seen[a[2]]++) printf "%s ", a[2]} END {print ""}'
[ -e /dev/kmsg ] && echo kmsg=yes || echo kmsg=no
for k in vm/overcommit_memory kernel/panic kernel/panic_on_oops; do
  v=missing; [ -r /proc/sys/$k ] && read -r v < /proc/sys/$k; [ -w /proc/sys/$k ] && w=yes || w=no
  echo "tunable:$k=$v $w"
done
(echo -998 > /proc/self/oom_score_adj) 2>/dev/null && echo oom_score_adj=yes || echo oom_score_adj=no
c=/etc/containerd/config.toml; s=no; r=no
if [ -r $c ]; then
  while read -r l; do
    case $l in SystemdCgroup*=*true*) s=yes ;; restrict_oom_score_adj*=*true*) r=yes ;; esac
  done < $c
  echo "containerd:systemd_cgroup=$s"; echo "containerd:restrict_oom_score_adj=$r"
fi
"""

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


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [Arch(), OsRelease(), *(Sysctl(k) for k in SYSCTLS), Command(("sh", "-c", PROBE))]


def probe(target: Target) -> dict[str, str]:
    """The probe's key=value answers, with the shared facts' arch and OS (kubeinit/facts/host.py)."""
    r = target.facts.run("sh", "-c", PROBE)
    out: dict[str, str] = {"_rc": str(r.rc)}
    for line in r.out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip()
    os = target.facts.get(OsRelease())
    sysctls = {f"sysctl:/proc/sys/{k}": target.facts.get(Sysctl(k)) for k in SYSCTLS}
    return (
        out
        | sysctls
        | {"arch": target.facts.get(Arch()), "os_id": os.id, "os_version": os.version, "os_like": " ".join(os.like)}
    )


def _ports(p: dict[str, str]) -> set[int]:
    return {int(h, 16) for h in p.get("listen", "").split() if h}


def checker(ignore: frozenset[str]):
    """check(name, ok, message, fatal) -> Check, where --ignore-preflight-errors turns an error into a warning."""

    def check(name: str, ok: bool, msg: str = "", fatal: bool = True) -> Check:
        ignored = name.lower() in ignore or "all" in ignore
        return Check(name, ok, msg + (" (ignored)" if ignored and not ok else ""), fatal and not ignored)

    return check


def common_checks(p: dict[str, str], ignore: frozenset[str], now: float | None = None) -> Iterator[Check]:
    check = checker(ignore)
    uid = p.get("uid", "")
    yield check(
        "IsPrivilegedUser",
        uid == "0",
        "" if uid == "0" else "kubeinit must work as root; log in as root or give the user passwordless sudo",
    )
    os_id = p.get("os_id", "")
    like = set(p.get("os_like", "").split())
    yield check(
        "OperatingSystem",
        os_id in SUPPORTED_OS or bool(like & SUPPORTED_OS),
        f"{os_id} {p.get('os_version', '')}".strip()
        if os_id in SUPPORTED_OS or like & SUPPORTED_OS
        else f"{os_id or 'unknown'} is not a supported Linux distribution",
        fatal=False,
    )
    arch = p.get("arch", "")
    yield check(
        "Architecture",
        arch in ("amd64", "arm64"),
        arch if arch in ("amd64", "arm64") else f"{arch or 'an unknown architecture'} is not amd64 or arm64",
    )
    yield check(
        "Systemd",
        p.get("systemd") == "yes",
        "" if p.get("systemd") == "yes" else "systemd is not running as PID 1; kubeinit manages services with systemd",
    )
    for b in ("ip", "iptables", "mount", "nsenter", "tar"):
        ok = p.get(f"bin:{b}") == "yes"
        yield check(f"FileExisting-{b}", ok, "" if ok else f"{b} not found in PATH; install it")
    for b in ("ebtables", "ethtool", "socat", "tc", "touch"):
        ok = p.get(f"bin:{b}") == "yes"
        yield check(f"FileExisting-{b}", ok, "" if ok else f"{b} not found in PATH", fatal=False)
    if now is not None and p.get("now", "").isdigit():
        skew = abs(int(p["now"]) - now)
        yield check(
            "Clock", skew <= MAX_CLOCK_SKEW, f"{skew:.0f}s from this machine's clock" if skew > 2 else "", fatal=False
        )


def kubelet_checks(p: dict[str, str], ctx: Context, ignore: frozenset[str], containerd_ours: bool) -> Iterator[Check]:
    """What a kubelet needs from its host, each failure with its fix: hosts that are containers
    themselves (LXC, systemd-nspawn, nested) lack several. `containerd_ours`: this run writes
    containerd's config (its settings come from the cluster file), else it is the host's own."""
    check = checker(ignore)
    kubelet = {k: str(v).lower() for k, v in ctx.spec.extra_args.get("kubelet", {}).items()}
    swap = int(p.get("swap_lines", "0") or 0)
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
    if "kmsg" in p:
        ok = p["kmsg"] == "yes"
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
        if f"tunable:{key}" not in p:
            continue
        value, _, writable = p[f"tunable:{key}"].partition(" ")
        ok = value == want or (writable == "yes" and not protect)
        f, name = f"/proc/sys/{key}", key.replace("/", ".")
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
        else p.get("containerd:restrict_oom_score_adj") == "yes"
    )
    if "oom_score_adj" in p:
        ok = p["oom_score_adj"] == "yes" or restricted
        yield check(
            "OOMScoreAdj",
            ok,
            ("" if p["oom_score_adj"] == "yes" else "containerd restricts oom_score_adj (restrict_oom_score_adj)")
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
        if "containerd:systemd_cgroup" not in p:
            yield check(
                "CgroupDriver",
                False,
                f"{CONTAINERD_CONFIG} does not exist, so containerd uses the cgroupfs "
                "driver, and the kubelet uses systemd's (as kubeinit configures it); write containerd's "
                "config with `SystemdCgroup = true` in the runc runtime's options and restart containerd",
            )
        else:
            ok = p["containerd:systemd_cgroup"] == "yes"
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


def port_checks(p: dict[str, str], ports: dict[int, str], ignore: frozenset[str]) -> Iterator[Check]:
    used = _ports(p)
    for port, ours in ports.items():
        name = f"Port-{port}"
        busy = port in used and p.get(f"file:{ours}") != "yes"
        ignored = name.lower() in ignore or "all" in ignore
        yield Check(name, not busy, f"port {port} is in use by another program; free it" if busy else "", not ignored)


def forwarding_checks(p: dict[str, str], ignore: frozenset[str], fatal: bool = True) -> Iterator[Check]:
    """kubeadm requires IPv4 forwarding. `up` sets it itself (runtime phase), so there it only warns."""
    f = "/proc/sys/net/ipv4/ip_forward"
    v = p.get(f"sysctl:{f}", "missing")
    name = "FileContent--proc-sys-net-ipv4-ip_forward"
    ignored = name.lower() in ignore or "all" in ignore
    yield Check(
        name,
        v == "1",
        "" if v == "1" else f"{f} is {v}, not 1; run `sysctl -w net.ipv4.ip_forward=1` and persist it in /etc/sysctl.d",
        fatal and not ignored,
    )
    b = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    v = p.get(f"sysctl:{b}", "missing")
    yield Check(
        "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
        v == "1",
        "" if v == "1" else f"{b} is {v}; load br_netfilter and set it to 1",
        fatal=False,
    )


def plan_init(ctx: Context, target: Target) -> Iterator[Check]:
    p = probe(target)
    ig = ctx.options.ignore_preflight_errors
    yield from common_checks(p, ig)
    cpus = int(p.get("nproc", "0") or 0)
    yield Check(
        "NumCPU",
        cpus >= 2,
        f"{cpus} CPU; the control plane needs at least 2" if cpus < 2 else "",
        "numcpu" not in ig and "all" not in ig,
    )
    mem_mb = int(p.get("mem_kb", "0") or 0) // 1024
    yield Check(
        "Mem",
        mem_mb >= 1700,
        f"{mem_mb} MB; the control plane needs at least 1700 MB" if mem_mb < 1700 else "",
        "mem" not in ig and "all" not in ig,
    )
    yield from port_checks(p, {**CONTROL_PLANE_PORTS, **KUBELET_PORT}, ig)
    yield from forwarding_checks(p, ig)
    yield from kubelet_checks(p, ctx, ig, containerd_ours=False)  # init, as kubeadm's, leaves containerd alone


def plan_join(ctx: Context, target: Target) -> Iterator[Check]:
    p = probe(target)
    ig = ctx.options.ignore_preflight_errors
    yield from common_checks(p, ig)
    yield from kubelet_checks(p, ctx, ig, containerd_ours=False)
    yield from port_checks(p, KUBELET_PORT, ig)
    yield from forwarding_checks(p, ig)


def plan_up(ctx: Context, target: Target) -> Iterator[Check]:
    """Before installing anything: what must hold on every host of `up`."""
    p = probe(target)
    ig = ctx.options.ignore_preflight_errors
    if p.get("_rc") != "0" and "uid" not in p:
        yield Check("Probe", False, "the host did not answer the probe; check that sh works there")
        return
    yield from common_checks(p, ig, now=time.time())
    yield from kubelet_checks(p, ctx, ig, containerd_ours=ctx.spec.artifact("containerd").enabled)
    ports = dict(KUBELET_PORT)
    if target.host.is_control_plane:
        ports.update(CONTROL_PLANE_PORTS)
        cpus = int(p.get("nproc", "0") or 0)
        yield Check(
            "NumCPU", cpus >= 2, f"{cpus} CPU; a control plane needs at least 2" if cpus < 2 else "", fatal=False
        )
    yield from port_checks(p, ports, ig)
    yield from forwarding_checks(p, ig, fatal=False)


INIT = PhaseImpl(plan_init, facts, read_only=True)
JOIN = PhaseImpl(plan_join, facts, read_only=True)
UP = PhaseImpl(plan_up, facts, read_only=True)
