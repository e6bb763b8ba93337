"""What of kubeinit's (and kubeadm's) state a host has, as reset reads it: typed facts, asked in
one round trip for all of reset's phases, and the files by kubeinit's own names they find.

Only kubeinit's names are looked for in the cert, kubeconfig and manifests dirs, never
"everything in a directory"; the cert and kubeconfig dirs are resolved on the host
(`realpath -m`) and refused when that is a system directory (reset_guard.py).
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.facts.host import Exists, RealPath, Unit, UnitState
from kubeinit.hostops.install import STAMPS
from kubeinit.phases import etcd
from kubeinit.phases.certs import all_pki_paths
from kubeinit.phases.control_plane import MANIFESTS
from kubeinit.phases.reset_guard import given, resolved

KUBELET_DIR = "/var/lib/kubelet"
ETCD_STAMP = f"{STAMPS}/etcd.stamp"
KUBECONFIG_FILES = (
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "bootstrap-kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
)
MANIFEST_FILES = ("kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml", "etcd.yaml")
PKI_FILES = tuple(all_pki_paths())  # relative to the cert dir: ca.crt ... etcd/ca.key ... sa.pub
ETCD_FILES = Exists((etcd.UNIT, etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED, etcd.JOIN_ENV))


@dataclass(frozen=True)
class Named(Fact[tuple[str, ...]]):
    """Which of `names` are a regular file or a symlink in `directory` (a directory by such a
    name is not kubeinit's), in the order of `names`."""

    directory: str
    names: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        d, names = shlex.quote(self.directory), " ".join(shlex.quote(n) for n in self.names)
        return ("sh", "-c", f'for f in {names}; do {{ [ -f {d}/"$f" ] || [ -L {d}/"$f" ]; }} && echo "$f"; done; true')

    def parse(self, r: Result) -> tuple[str, ...]:
        printed = set(r.out.splitlines())
        return tuple(n for n in self.names if n in printed)


@dataclass(frozen=True)
class Dir:
    link: bool  # a symlink (to a directory, or to nothing)
    entries: int  # in the directory it is or points at, dotfiles too


@dataclass(frozen=True)
class Directory(Fact["Dir | None"]):
    """A directory and how many entries it has (None: no directory and no symlink by that name)."""

    path: str

    def argv(self) -> tuple[str, ...]:
        d = shlex.quote(self.path)
        return (
            "sh",
            "-c",
            f"[ -L {d} ] && k=link || k=dir\n"
            f'if [ -d {d} ]; then echo "$k $(ls -A -- {d} 2>/dev/null | wc -l)"; '
            'elif [ "$k" = link ]; then echo "link 0"; fi; true',
        )

    def parse(self, r: Result) -> Dir | None:
        kind, _, n = r.out.strip().partition(" ")
        return Dir(kind == "link", int(n.strip())) if kind in ("link", "dir") and n.strip().isdigit() else None


@dataclass(frozen=True)
class MountsUnder(Fact[int]):
    """How many filesystems are mounted below `path` (pods' volumes under the kubelet's dir)."""

    path: str

    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", f"awk '$2 ~ \"^{self.path}/\"' /proc/mounts 2>/dev/null | wc -l")

    def parse(self, r: Result) -> int:
        return int(r.out.strip()) if r.out.strip().isdigit() else 0


@dataclass(frozen=True)
class PodSandboxes(Fact[int]):
    """How many pod sandboxes the CRI lists (0 without crictl)."""

    def argv(self) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            "command -v crictl >/dev/null 2>&1 && crictl --timeout 5s pods -q 2>/dev/null | wc -l; true",
        )

    def parse(self, r: Result) -> int:
        return int(r.out.strip()) if r.out.strip().isdigit() else 0


@dataclass(frozen=True)
class State:
    etcd: Unit
    kubelet: Unit
    exists: frozenset[str]  # which of ETCD_FILES exist
    certdir: str  # the cert dir as the host resolves it ("" when it could not)
    kubeconfigdir: str
    kubeletdir: str
    pki: tuple[str, ...]  # which of PKI_FILES the cert dir has
    kubeconfigs: tuple[str, ...]  # which of KUBECONFIG_FILES the kubeconfig dir has
    manifests: tuple[str, ...]  # which of MANIFEST_FILES the manifests dir has
    pki_etcd: Dir | None  # the cert dir's etcd subdirectory
    kubelet_dir: Dir | None
    mounts: int  # below the kubelet's dir
    pods: int

    @property
    def etcd_active(self) -> bool:
        return self.etcd.running

    @property
    def kubelet_active(self) -> bool:
        return self.kubelet.running

    @property
    def kubelet_dir_used(self) -> bool:
        return self.kubelet_dir is not None and self.kubelet_dir.entries > 0


def _dirs(ctx: Context) -> tuple[str, str]:
    """The cert and kubeconfig dirs as given, refused before the host is asked unless each is one absolute path."""
    return given(ctx.cert_dir, "cert dir"), given(ctx.kubeconfig_dir, "kubeconfig dir")


def facts(ctx: Context, target: Target) -> list[Fact]:
    cert, confs = _dirs(ctx)
    return [
        UnitState("etcd"),
        UnitState("kubelet"),
        ETCD_FILES,
        RealPath(cert),
        RealPath(confs),
        RealPath(KUBELET_DIR),
        Named(cert, PKI_FILES),
        Directory(posixpath.join(cert, "etcd")),
        Named(confs, KUBECONFIG_FILES),
        Named(MANIFESTS, MANIFEST_FILES),
        Directory(KUBELET_DIR),
        MountsUnder(KUBELET_DIR),
        PodSandboxes(),
    ]


def state(ctx: Context, target: Target) -> State:
    f = target.facts
    cert, confs = _dirs(ctx)
    return State(
        etcd=f.get(UnitState("etcd")),
        kubelet=f.get(UnitState("kubelet")),
        exists=f.get(ETCD_FILES),
        certdir=f.get(RealPath(cert)),
        kubeconfigdir=f.get(RealPath(confs)),
        kubeletdir=f.get(RealPath(KUBELET_DIR)),
        pki=f.get(Named(cert, PKI_FILES)),
        kubeconfigs=f.get(Named(confs, KUBECONFIG_FILES)),
        manifests=f.get(Named(MANIFESTS, MANIFEST_FILES)),
        pki_etcd=f.get(Directory(posixpath.join(cert, "etcd"))),
        kubelet_dir=f.get(Directory(KUBELET_DIR)),
        mounts=f.get(MountsUnder(KUBELET_DIR)),
        pods=f.get(PodSandboxes()),
    )


def pki_files(ctx: Context, s: State) -> tuple[str, list[str]]:
    """The resolved cert dir and the catalogue's files in it; etcd/* only when `etcd` is a real
    directory there (through a symlink it could be anywhere)."""
    d = resolved(ctx, s.certdir)
    names = s.pki
    if s.pki_etcd is not None and s.pki_etcd.link:
        names = tuple(f for f in names if not f.startswith("etcd/"))
    return d, [posixpath.join(d, f) for f in names]


def kubeconfig_files(ctx: Context, s: State) -> tuple[str, list[str]]:
    d = resolved(ctx, s.kubeconfigdir, kubeconfigs=True)
    return d, [posixpath.join(d, f) for f in s.kubeconfigs]


def manifest_files(s: State) -> list[str]:
    return [posixpath.join(MANIFESTS, f) for f in s.manifests]
