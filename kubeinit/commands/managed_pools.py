"""CLI for the node pools of a managed cluster: get nodepools, create nodepool, delete nodepool.

Thin, as kubeinit.commands.managed: no cloud SDK is imported here.
"""

from __future__ import annotations

import click

from kubeinit import ui
from kubeinit.commands import base, managed_flags
from kubeinit.commands.managed import (
    Account,
    DryRun,
    Interval,
    ProviderName,
    ProviderOpt,
    Timeout,
    Waiting,
    Where,
    _ask_delete,
    _cli,
    _options,
    _target,
)
from kubeinit.errors import UserError

Cluster = click.option("--cluster", "-c", required=True, help="Cluster name.")


@click.command("nodepools", cls=base.Command)
@ProviderOpt
@Cluster
@Where
@Account
@click.option("--output", "-o", default="table", help="table, yaml or json.")
@managed_flags.add("profile")
@_cli
def get_nodepools(
    provider: ProviderName,
    cluster: str,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    output: str,
) -> None:
    """List a cluster's node pools (EKS nodegroups)."""
    from kubeinit.managed import pools

    if output not in ("table", "yaml", "json"):
        raise UserError("--output must be table, yaml or json")
    spec, record = _target(provider, cluster, region, zone, location, project, resource_group, subscription)
    rows = pools.list_pools(spec, record)
    if output != "table":
        managed_flags.dump(rows, output)
    elif not rows:
        ui.info(f"{provider.value} cluster {cluster} has no node pools")
    else:

        def n(v):
            return "" if v is None else str(v)

        ui.table(
            ["NAME", "TYPE", "NODES", "MIN", "MAX", "SPOT", "VERSION", "STATUS", "KUBEINIT"],
            [
                [
                    r["name"],
                    r["instance_type"],
                    n(r["nodes"]),
                    n(r["min"]),
                    n(r["max"]),
                    "yes" if r["spot"] else "",
                    r["version"],
                    r["status"],
                    "yes" if r["recorded"] else "",
                ]
                for r in rows
            ],
        )


@click.command("nodepool", cls=base.Command)
@click.argument("pool", cls=base.Argument, help="Node pool (EKS nodegroup) name.")
@ProviderOpt
@Cluster
@click.option("--nodes", "-N", type=click.IntRange(min=0), required=True, help="Nodes (GKE: per zone).")
@click.option("--node-type", "-t", help="Instance/machine/VM size (default: the provider's).")
@click.option("--nodes-min", "--min", "nodes_min", type=click.IntRange(min=0), help="Autoscaling minimum.")
@click.option("--nodes-max", "--max", "nodes_max", type=click.IntRange(min=0), help="Autoscaling maximum.")
@Where
@Account
@DryRun
@Interval
@Timeout
@managed_flags.add("labels", "node_volume_size", "spot", "profile")
@_cli
def create_nodepool(
    pool: str,
    provider: ProviderName,
    cluster: str,
    nodes: int,
    node_type: str | None,
    nodes_min: int | None,
    nodes_max: int | None,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    dry_run: bool,
    poll_interval: float | None,
    timeout: float,
) -> None:
    """Add a node pool to a cluster and wait until it is ready; kubeinit records it, so
    `delete cluster` removes it too."""
    from kubeinit.managed import pools

    f = managed_flags.spec_flags()
    spec_pool = pools.parse_pool(
        provider.value,
        {
            "name": pool,
            "count": nodes,
            "instanceType": node_type,
            "min": nodes_min,
            "max": nodes_max,
            "diskSize": f["node_volume_size"],
            "labels": f["labels"],
            "spot": f["spot"],
        },
    )
    spec, record = _target(provider, cluster, region, zone, location, project, resource_group, subscription)
    pools.create_pool(spec, record, spec_pool, _options(dry_run, poll_interval, timeout))


@click.command("nodepool", cls=base.Command)
@click.argument("pool", cls=base.Argument, help="Node pool (EKS nodegroup) name.")
@ProviderOpt
@Cluster
@Where
@Account
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@Waiting
@managed_flags.add("profile")
@_cli
def delete_nodepool(
    pool: str,
    provider: ProviderName,
    cluster: str,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    yes: bool,
    dry_run: bool,
    poll_interval: float | None,
    timeout: float,
) -> None:
    """Delete one node pool of a cluster (its nodes are drained and removed by the cloud)."""
    from kubeinit.managed import pools

    spec, record = _target(provider, cluster, region, zone, location, project, resource_group, subscription)
    _ask_delete(f"node pool {pool} of {provider.value} cluster {cluster}", yes, dry_run)
    pools.delete_pool(spec, record, pool, _options(dry_run, poll_interval, timeout))


@click.command("cluster", cls=base.Command)
@ProviderOpt
@click.option("--name", "-n", required=True, help="Cluster name.")
@click.option("--version", required=True, help='Kubernetes version, e.g. "1.31" (one minor version up).')
@Where
@Account
@Waiting
@managed_flags.add("profile")
@_cli
def upgrade_cluster(
    provider: ProviderName,
    name: str,
    version: str,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    dry_run: bool,
    poll_interval: float | None,
    timeout: float,
) -> None:
    """Upgrade a managed cluster: the control plane first, then each node pool, waiting for each."""
    from kubeinit.managed import upgrade

    spec, record = _target(provider, name, region, zone, location, project, resource_group, subscription)
    upgrade.upgrade_cluster(spec, record, version, _options(dry_run, poll_interval, timeout))


def register(app: click.Group, group) -> None:
    group(app, "upgrade", "Upgrade a cluster.").add_command(upgrade_cluster, "cluster")
    group(app, "get", "List resources.").add_command(get_nodepools, "nodepools")
    group(app, "create", "Create resources.").add_command(create_nodepool, "nodepool")
    group(app, "delete", "Delete resources.").add_command(delete_nodepool, "nodepool")
