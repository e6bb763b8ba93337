"""The facts phases share: each a command and a parser, asked once per host and run (Facts.get),
batched with the rest of a phase's facts into its one round trip.

    Arch()             amd64 / arm64 as Go names them (else what `uname -m` says)   stable
    OsRelease()        /etc/os-release's ID, VERSION_ID and ID_LIKE                   stable
    UnitState(unit)    systemd's ActiveState and UnitFileState of a unit ("" when unknown)
    Sysctl(key)        a kernel setting under /proc/sys (net/ipv4/ip_forward), "missing" when absent
    Hostname()         the kernel's hostname (what a node is named after when no name is given)
    Addresses()        the host's own IP addresses, every interface
    Stamps(glob)       kubeinit's install stamps (hostops/install.py), with each installed file's
                       fingerprint now: whether what was installed is still as it was
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.facts import Fact

GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Arch(Fact[str]):
    stable = True

    def argv(self) -> tuple[str, ...]:
        return ("uname", "-m")

    def parse(self, r: Result) -> str:
        machine = r.out.strip()
        return GOARCH.get(machine, machine)


@dataclass(frozen=True)
class OS:
    id: str = ""
    version: str = ""
    like: tuple[str, ...] = ()


@dataclass(frozen=True)
class OsRelease(Fact[OS]):
    stable = True

    def argv(self) -> tuple[str, ...]:
        # sourced in the batch's own subshell: its variables go with it
        return ("sh", "-c", '. /etc/os-release 2>/dev/null; echo "$ID"; echo "$VERSION_ID"; echo "$ID_LIKE"')

    def parse(self, r: Result) -> OS:
        lines = (r.out.splitlines() + ["", "", ""])[:3]
        return OS(lines[0].strip(), lines[1].strip(), tuple(lines[2].split()))


@dataclass(frozen=True)
class Unit:
    active: str = ""  # ActiveState: active, inactive, failed, activating ...
    enabled: str = ""  # UnitFileState: enabled, disabled, static ...; "" for no such unit

    @property
    def running(self) -> bool:
        return self.active in ("active", "activating", "reloading")


@dataclass(frozen=True)
class UnitState(Fact[Unit]):
    unit: str

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f"systemctl show {self.unit} -p ActiveState -p UnitFileState 2>/dev/null; true")

    def parse(self, r: Result) -> Unit:
        values = dict(line.partition("=")[::2] for line in r.out.splitlines() if "=" in line)
        return Unit(values.get("ActiveState", "").strip(), values.get("UnitFileState", "").strip())


@dataclass(frozen=True)
class Stamps(Fact[dict]):
    """component -> hostops.install.Stamp, for the stamps matching STAMPS/<glob>.stamp."""

    glob: str = "*"

    def argv(self) -> tuple[str, ...]:
        from kubeinit.hostops import install

        return ("sh", "-c", install.stamps_probe(self.glob) + "true\n")

    def parse(self, r: Result) -> dict:
        from kubeinit.hostops import install

        return install.parse_probe(r.out)[1]


@dataclass(frozen=True)
class Sysctl(Fact[str]):
    key: str  # under /proc/sys, as net/ipv4/ip_forward

    def argv(self) -> tuple[str, ...]:
        f = f"/proc/sys/{self.key}"
        return ("sh", "-c", f'v=missing; [ -r {f} ] && read -r v < {f}; echo "$v"')

    def parse(self, r: Result) -> str:
        return r.out.strip() or "missing"


@dataclass(frozen=True)
class Hostname(Fact[str]):
    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", 'read -r h < /proc/sys/kernel/hostname && echo "$h"; true')

    def parse(self, r: Result) -> str:
        return r.out.strip()


@dataclass(frozen=True)
class Addresses(Fact[frozenset]):
    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", 'ip -o addr show 2>/dev/null | while read -r _ _ fam addr _; do echo "${addr%/*}"; done')

    def parse(self, r: Result) -> frozenset:
        return frozenset(line.strip() for line in r.out.splitlines() if line.strip())
