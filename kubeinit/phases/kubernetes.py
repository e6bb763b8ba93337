"""kubernetes: the pinned kubelet and kubectl (and kubeadm, opt-in) from dl.k8s.io, on every host.

Each is a single binary, installed as runc is (kubeinit/hostops/install.py): downloaded and
verified where kubeinit runs first (Local steps: a wrong checksum stops the run before any
host was touched), uploaded straight into /usr/local/bin (verified on arrival, 0755), then a
stamp records it, so a re-run checks it by one `stat` instead of hashing it.

The versions are the cluster's kubernetesVersion unless artifacts.<name>.version says
otherwise. kubectl goes to every host, as kubeadm's install guide puts it on every machine:
a worker's operator can use it with an admin kubeconfig. kubeadm is left out unless
artifacts.kubeadm.enabled is true (kubeinit does kubeadm's work; the binary only lets
kubeadm's own tools, such as `kubeadm certs check-expiration`, work on the node).

The kubelet is only installed here: its config, unit and start are the kubelet-start phase.

Facts: the architecture and the install stamps with their files' fingerprints now (kubeinit/facts/host.py),
shared with the runtime phase: on a re-run where that changed nothing, they are known already.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kubeinit import artifacts
from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.facts.host import Arch, Stamps
from kubeinit.hostops import install
from kubeinit.phases import PhaseImpl
from kubeinit.steps import Skip, Step

BIN = "/usr/local/bin"
COMPONENTS = ("kubelet", "kubectl", "kubeadm")
PATHS = {n: f"{BIN}/{n}" for n in COMPONENTS}


def facts(ctx: Context, target: Target) -> list[Fact]:
    # Stamps() as the runtime phase asks it: on a re-run that changed nothing, already known
    return [Arch(), Stamps()]


@dataclass
class Wanted:
    """The binaries this host gets (artifacts enabled): their releases, digests, and which of them
    this run installs (`todo`: not installed with that digest)."""

    rels: dict[str, artifacts.Release]
    digests: dict[str, str]
    todo: list[str]
    notices: list[Step]  # a checksum file that cannot be fetched yet (Unknown)


def wanted(ctx: Context, target: Target) -> Wanted:
    """Also asked by upgrade's drain: a kubelet this run installs is a kubelet that restarts."""
    spec = ctx.spec
    stamps = target.facts.get(Stamps())
    arch = install.host_arch(spec, target.name, target.facts.get(Arch()))
    rels = {n: artifacts.release(spec, n, arch) for n in COMPONENTS if spec.artifact(n).enabled}
    notices: list[Step] = []
    digests = {n: install.expected_sha256(ctx, r, notices) for n, r in rels.items()}
    todo = [n for n in rels if not _installed(stamps.get(n), digests[n], PATHS[n])]
    return Wanted(rels, digests, todo, notices)


def plan_kubernetes(ctx: Context, target: Target) -> Iterator[Step]:
    w = wanted(ctx, target)
    rels, digests, todo = w.rels, w.digests, w.todo
    yield from w.notices
    for n in todo:  # downloads, all before any host is changed
        yield from install.download(rels[n], digests[n])
    for n in COMPONENTS:
        if n == "kubeadm" and n not in rels:
            yield Skip("kubeadm is not installed (opt in with artifacts.kubeadm.enabled: true)")
        elif n not in rels:
            yield Skip(f"{n} is left out (artifacts.{n}.enabled: false)")
        elif n not in todo:
            yield Skip(f"{rels[n].label} is installed")
        else:
            yield from install.install_binary(rels[n], digests[n], PATHS[n])
            target.facts.plan_transfer(PATHS[n], digests[n], 0o755)  # kubelet-start plans with it


def _installed(stamp: install.Stamp | None, digest: str, path: str) -> bool:
    return stamp is not None and install.installed(stamp, digest) and path in stamp.files


KUBERNETES = PhaseImpl(plan_kubernetes, facts)
