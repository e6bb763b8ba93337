"""What a host offers a kubelet and its containers, as preflight and the runtime phase ask it.

    Uid()               the effective user id kubeinit works as (None: the host did not answer)
    Clock()             the host's clock, in seconds since the epoch
    Resources()         CPUs, memory and active swap areas
    CanLowerOomScore()  whether a process here may lower its oom_score_adj (CAP_SYS_RESOURCE)
    KernelModules()     overlay and br_netfilter: there already, or loadable by modprobe

Builtins where a fork is not needed: these run on every host on every `up`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.facts import Fact


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Uid(Fact["int | None"]):
    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", 'while read -r k _ e _; do [ "$k" = Uid: ] && echo "$e" && break; done < /proc/self/status')

    def parse(self, r: Result) -> int | None:
        return _int(r.out)


@dataclass(frozen=True)
class Clock(Fact["int | None"]):
    def argv(self) -> tuple[str, ...]:
        return ("date", "+%s")

    def parse(self, r: Result) -> int | None:
        return _int(r.out)


@dataclass(frozen=True)
class Machine:
    cpus: int = 0
    mem_kb: int = 0
    swaps: int = 0  # active swap areas


@dataclass(frozen=True)
class Resources(Fact[Machine]):
    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            "{ nproc || grep -c ^processor /proc/cpuinfo; } 2>/dev/null\n"
            'm=0; while read -r k v _; do [ "$k" = MemTotal: ] && m=$v && break; done < /proc/meminfo; echo $m\n'
            "n=0; [ -r /proc/swaps ] && while read -r _; do n=$((n+1)); done < /proc/swaps\n"
            "echo $((n > 0 ? n - 1 : 0))",
        )

    def parse(self, r: Result) -> Machine:
        cpus, mem, swaps = ([_int(v) or 0 for v in r.out.splitlines()] + [0, 0, 0])[:3]
        return Machine(cpus, mem, swaps)


@dataclass(frozen=True)
class CanLowerOomScore(Fact[bool]):
    def argv(self) -> tuple[str, ...]:
        # in a subshell of its own: the score it sets goes with it
        return ("sh", "-c", "(echo -998 > /proc/self/oom_score_adj) 2>/dev/null && echo yes; true")

    def parse(self, r: Result) -> bool:
        return r.out.strip() == "yes"


@dataclass(frozen=True)
class Modules:
    present: frozenset[str] = frozenset()  # built in or loaded
    loadable: frozenset[str] = frozenset()  # not present, but `modprobe -n` finds it


@dataclass(frozen=True)
class KernelModules(Fact[Modules]):
    """overlay (containerd's snapshotter: a filesystem in /proc/filesystems) and br_netfilter (its
    sysctls under /proc/sys/net/bridge); modprobe is asked only about what is not there."""

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            'o=; while read -r a b; do [ "$a" = overlay ] || [ "$b" = overlay ] && o=1 && break; done'
            " < /proc/filesystems\n"
            '[ -n "$o" ] && echo "present overlay" ||'
            ' { modprobe -n -q overlay 2>/dev/null && echo "loadable overlay"; }\n'
            "[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ] && echo 'present br_netfilter' ||"
            " { modprobe -n -q br_netfilter 2>/dev/null && echo 'loadable br_netfilter'; }\n"
            "true",
        )

    def parse(self, r: Result) -> Modules:
        found: dict[str, set[str]] = {"present": set(), "loadable": set()}
        for line in r.out.splitlines():
            kind, _, module = line.partition(" ")
            if kind in found and module in ("overlay", "br_netfilter"):
                found[kind].add(module)
        return Modules(frozenset(found["present"]), frozenset(found["loadable"]))
