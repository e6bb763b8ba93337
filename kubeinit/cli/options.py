"""Options shared by several commands, declared once (kubeadm's flag names)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def comma_list(value: list[str] | None) -> list[str] | None:
    """kubeadm's string-slice flags: comma-separated or repeated; None when not given."""
    return [x.strip() for v in value for x in v.split(",") if x.strip()] if value else None


def ignore_set(values: list[str] | None) -> frozenset[str]:
    return frozenset(x.lower() for x in values or [])


def _list(help: str, *names: str) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, callback=comma_list, show_default=False)


Config = Annotated[
    Path | None,
    typer.Option(
        "--config", help="A cluster file (kubeinit Cluster, or kubeadm v1beta4 documents).", show_default=False
    ),
]
CertDir = Annotated[
    str | None,
    typer.Option("--cert-dir", help="Where certificates go (default /etc/kubernetes/pki).", show_default=False),
]
KubeconfigDir = Annotated[
    str | None,
    typer.Option("--kubeconfig-dir", help="Where kubeconfig files go (default /etc/kubernetes).", show_default=False),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan (phases, hosts, steps) and change nothing.")]
Skip = Annotated[list[str] | None, _list("Phases to skip, e.g. addon/kube-proxy,cni.", "--skip-phases")]
Ignore = Annotated[
    list[str] | None, _list("Preflight checks to show as warnings (or 'all').", "--ignore-preflight-errors")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _known_hosts(note: str) -> typer.models.OptionInfo:
    return typer.Option(
        "--known-hosts", help=f"{note}known_hosts file (default ~/.ssh/known_hosts).", show_default=False
    )


def _trust(note: str) -> typer.models.OptionInfo:
    return typer.Option(
        "--trust-new-host-keys",
        help=f"{note}{'accept' if note else 'Accept'} and record host keys not yet in known_hosts.",
    )


def _parallel(note: str) -> typer.models.OptionInfo:
    return typer.Option("--parallel", min=1, help=f"{note}{'hosts' if note else 'Hosts'} worked at once.")


# The options of every command that reaches hosts over SSH (--parallel's default is 10) ...
KnownHosts = Annotated[Path | None, _known_hosts("")]
TrustNewHostKeys = Annotated[bool, _trust("")]
Parallel = Annotated[int, _parallel("")]
# ... and of one that works on this host unless given a cluster file with -f.
FileKnownHosts = Annotated[Path | None, _known_hosts("With -f: ")]
FileTrustNewHostKeys = Annotated[bool, _trust("With -f: ")]
FileParallel = Annotated[int, _parallel("With -f: ")]


def ssh(known_hosts: Path | None, trust_new_host_keys: bool, parallel: int):
    from kubeinit.runner import SSH

    return SSH(str(known_hosts) if known_hosts else None, trust_new_host_keys, parallel)
