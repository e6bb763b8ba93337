"""`kubeinit upgrade`: plan and apply for a cluster kubeinit made from a cluster file (the managed
clouds' `upgrade cluster` joins this group from managed.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import help as helpmod
from .options import DryRun, Ignore, KnownHosts, TrustNewHostKeys, Yes, ignore_set, ssh

HELP = "Upgrade a cluster: `plan -f` and `apply -f` on hosts, `cluster` for a managed one."

upgrade_app = typer.Typer(cls=helpmod.PanelGroup, no_args_is_help=True, rich_markup_mode=None)

File = Annotated[
    Path,
    typer.Option(
        "--file", "-f", help="The cluster file, with the kubernetesVersion to upgrade to.", show_default=False
    ),
]


@upgrade_app.command("plan")
def upgrade_plan(file: File, known_hosts: KnownHosts = None, trust_new_host_keys: TrustNewHostKeys = False):
    """Show what `upgrade apply` would do: the cluster's version and each node's kubelet now and after,
    read through the first control plane over SSH; changes nothing."""
    from kubeinit.commands import upgrade_plan as cmd

    cmd.plan(str(file), str(known_hosts) if known_hosts else None, trust_new_host_keys)


@upgrade_app.command("apply")
def upgrade_apply(
    file: File,
    yes: Yes = False,
    ignore_preflight_errors: Ignore = None,
    known_hosts: KnownHosts = None,
    trust_new_host_keys: TrustNewHostKeys = False,
    dry_run: DryRun = False,
):
    """Upgrade the cluster to the file's kubernetesVersion, one host at a time: the first control plane,
    the other control planes, then the workers; each node drained while its kubelet restarts."""
    from kubeinit import upgrade

    upgrade.apply(file, ssh(known_hosts, trust_new_host_keys, 10), dry_run, yes, ignore_set(ignore_preflight_errors))
