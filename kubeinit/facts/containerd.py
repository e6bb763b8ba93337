"""What a host's containerd has, as preflight, the runtime phase and the images phase ask it.

    ContainerdConfig(path)               the settings of its config file the kubelet depends on (None: no file)
    KubeinitMirrors(certs_d, header)     the registry hosts.toml files starting with kubeinit's header
    ContainerdImages(namespace, socket)  the images it holds in a namespace (none while it is not running)

The paths are the runtime phase's (kubeinit/phases/runtime.py), given by the phases that ask.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.facts import Fact


@dataclass(frozen=True)
class CriSettings:
    systemd_cgroup: bool = False  # SystemdCgroup = true (runc's options)
    restrict_oom_score_adj: bool = False


@dataclass(frozen=True)
class ContainerdConfig(Fact["CriSettings | None"]):
    path: str

    def argv(self) -> tuple[str, ...]:
        # a line match, as containerd's own config is written (one key a line), not a TOML parse
        c = shlex.quote(self.path)
        return (
            "sh",
            "-c",
            f"[ -r {c} ] || exit 0; echo config\n"
            "while read -r l; do case $l in\n"
            "  SystemdCgroup*=*true*) echo systemd_cgroup ;; restrict_oom_score_adj*=*true*) echo restrict_oom ;;\n"
            f"esac; done < {c}; true",
        )

    def parse(self, r: Result) -> CriSettings | None:
        lines = r.out.splitlines()
        if "config" not in lines:
            return None
        return CriSettings("systemd_cgroup" in lines, "restrict_oom" in lines)


@dataclass(frozen=True)
class KubeinitMirrors(Fact[frozenset[str]]):
    certs_d: str
    header: str  # the first line of a hosts.toml of kubeinit's starts so

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            f'for f in {shlex.quote(self.certs_d)}/*/hosts.toml; do [ -f "$f" ] && read -r l < "$f" &&\n'
            f'  case $l in {shlex.quote(self.header)}*) echo "$f";; esac; done; true',
        )

    def parse(self, r: Result) -> frozenset[str]:
        return frozenset(line for line in r.out.splitlines() if line.endswith("/hosts.toml"))


@dataclass(frozen=True)
class ContainerdImages(Fact[frozenset[str]]):
    namespace: str
    socket: str

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            f"[ -S {shlex.quote(self.socket)} ] && command -v ctr >/dev/null 2>&1 && "
            f"ctr -n {shlex.quote(self.namespace)} images ls -q 2>/dev/null; true",
        )

    def parse(self, r: Result) -> frozenset[str]:
        return frozenset(line.strip() for line in r.out.splitlines() if line.strip())
