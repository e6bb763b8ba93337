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
    Leftovers()        temp files a killed run left in kubeinit's directories (hostops/install.py)
    Commands(names)    which of these commands are on the PATH
    Which(name, path)  a command's path (`path` when executable there, else the PATH's) and fingerprint
    Exists(paths)      which of these paths exist
    Writable(paths)    which of these paths may be written
    Mode(path)         a file's or directory's permission bits, None when absent
    RealPath(path)     the path with every symlink resolved (`realpath -m`: it need not exist)
    Listening()        the TCP ports something listens on (IPv4 and IPv6)

Each answer is typed (a set, an int, a dataclass), so a plan test gives it parsed (tests/unit/factsstub.py).
"""

from __future__ import annotations

import shlex
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

        return install.parse_stamps(r.out)


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


@dataclass(frozen=True)
class Leftovers(Fact[tuple[str, ...]]):
    """Stale `.kubeinit.*` temp files in `dirs` (default: every directory kubeinit writes in), sorted."""

    dirs: tuple[str, ...] = ()

    def argv(self) -> tuple[str, ...]:
        from kubeinit.hostops import install

        return ("sh", "-c", install.leftovers_probe(self.dirs or install.TEMP_DIRS) + "true\n")

    def parse(self, r: Result) -> tuple[str, ...]:
        return tuple(sorted(line for line in r.out.splitlines() if line))


def _words(items: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(i) for i in items)


def _lines(r: Result, asked: tuple[str, ...]) -> frozenset[str]:
    """The asked items the command printed, one a line (anything else printed is not an answer)."""
    return frozenset(r.out.splitlines()) & frozenset(asked)


@dataclass(frozen=True)
class Commands(Fact[frozenset[str]]):
    names: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        # `command -v`, a builtin: no process per name
        script = f'for c in {_words(self.names)}; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done; true'
        return ("sh", "-c", script)

    def parse(self, r: Result) -> frozenset[str]:
        return _lines(r, self.names)


@dataclass(frozen=True)
class Program:
    path: str
    fingerprint: str  # hostops/install.py's FINGERPRINT: size, mtime, inode, ctime; "" when stat failed


@dataclass(frozen=True)
class Which(Fact["Program | None"]):
    name: str
    path: str = ""  # looked at first

    def argv(self) -> tuple[str, ...]:
        from kubeinit.hostops.install import FINGERPRINT

        first = f'k={shlex.quote(self.path)}; [ -x "$k" ] || ' if self.path else ""
        return (
            "sh",
            "-c",
            f"{first}k=$(command -v {shlex.quote(self.name)} 2>/dev/null) || k=\n"
            f'[ -z "$k" ] || {{ echo "$k"; stat -c "{FINGERPRINT}" -- "$k" 2>/dev/null; }}; true',
        )

    def parse(self, r: Result) -> Program | None:
        lines = r.out.splitlines()
        return Program(lines[0], lines[1] if len(lines) > 1 else "") if lines and lines[0] else None


@dataclass(frozen=True)
class Exists(Fact[frozenset[str]]):
    paths: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f'for p in {_words(self.paths)}; do [ -e "$p" ] && echo "$p"; done; true')

    def parse(self, r: Result) -> frozenset[str]:
        return _lines(r, self.paths)


@dataclass(frozen=True)
class Writable(Fact[frozenset[str]]):
    paths: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f'for p in {_words(self.paths)}; do [ -w "$p" ] && echo "$p"; done; true')

    def parse(self, r: Result) -> frozenset[str]:
        return _lines(r, self.paths)


@dataclass(frozen=True)
class Mode(Fact["int | None"]):
    path: str

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f"stat -c %a -- {shlex.quote(self.path)} 2>/dev/null; true")

    def parse(self, r: Result) -> int | None:
        mode = r.out.strip()
        return int(mode, 8) if mode else None


@dataclass(frozen=True)
class RealPath(Fact[str]):
    """ "" when the host could not resolve it."""

    path: str

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f"realpath -m -- {shlex.quote(self.path)} 2>/dev/null; true")

    def parse(self, r: Result) -> str:
        return r.out.strip("\n")


@dataclass(frozen=True)
class Listening(Fact[frozenset[int]]):
    def argv(self) -> tuple[str, ...]:
        # state 0A is LISTEN; the local address is hex ip:port
        return (
            "sh",
            "-c",
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
            'awk \'$4 == "0A" {split($2, a, ":"); if (!seen[a[2]]++) print a[2]}\'',
        )

    def parse(self, r: Result) -> frozenset[int]:
        return frozenset(int(h, 16) for h in r.out.split() if all(c in "0123456789ABCDEFabcdef" for c in h))
