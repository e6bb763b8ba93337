"""CLI for the node pools of a managed cluster: get nodepools, create nodepool, delete nodepool,
and upgrade cluster (typer commands).

Thin, as kubeinit.commands.managed: no cloud SDK is imported here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kubeinit import ui
from kubeinit.commands import managed_flags
from kubeinit.commands.managed import Name, Output, Pool, Provider, Yes, _ask_delete, _cli, _target
from kubeinit.commands.managed_flags import RUN, WHERE
from kubeinit.errors import UserError

Cluster = Annotated[str, typer.Option("--cluster", "-c", help="Cluster name.")]


@managed_flags.add(*WHERE, "profile")
@_cli
def get_nodepools(
    provider: Provider,
    cluster: Cluster,
    output: Output = "table",
) -> None:
    """List a cluster's node pools (EKS nodegroups)."""
    from kubeinit.managed import pools

    if output not in ("table", "yaml", "json"):
        raise UserError("--output must be table, yaml or json")
    spec, record = _target(provider, cluster)
    rows = pools.list_pools(spec, record)
    if output != "table":
        managed_flags.dump(rows, output)
    elif not rows:
        ui.info(f"{provider} cluster {cluster} has no node pools")
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


@managed_flags.add(*WHERE, *RUN, "labels", "node_volume_size", "spot", "profile")
@_cli
def create_nodepool(
    pool: Pool,
    provider: Provider,
    cluster: Cluster,
    nodes: Annotated[int, typer.Option("--nodes", "-N", min=0, help="Nodes (GKE: per zone).")],
    node_type: Annotated[
        str | None, typer.Option("--node-type", "-t", help="Instance/machine/VM size (default: the provider's).")
    ] = None,
    nodes_min: Annotated[int | None, typer.Option("--nodes-min", "--min", min=0, help="Autoscaling minimum.")] = None,
    nodes_max: Annotated[int | None, typer.Option("--nodes-max", "--max", min=0, help="Autoscaling maximum.")] = None,
) -> None:
    """Add a node pool to a cluster and wait until it is ready; kubeinit records it, so
    `delete cluster` removes it too."""
    from kubeinit.managed import pools

    f = managed_flags.spec_flags()
    spec_pool = pools.parse_pool(
        provider,
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
    spec, record = _target(provider, cluster)
    pools.create_pool(spec, record, spec_pool, managed_flags.options())


@managed_flags.add(*WHERE, *RUN, "profile")
@_cli
def delete_nodepool(
    pool: Pool,
    provider: Provider,
    cluster: Cluster,
    yes: Yes = False,
) -> None:
    """Delete one node pool of a cluster (its nodes are drained and removed by the cloud)."""
    from kubeinit.managed import pools

    spec, record = _target(provider, cluster)
    _ask_delete(f"node pool {pool} of {provider} cluster {cluster}", yes)
    pools.delete_pool(spec, record, pool, managed_flags.options())


@managed_flags.add(*WHERE, *RUN, "profile")
@_cli
def upgrade_cluster(
    provider: Provider,
    name: Name,
    version: Annotated[str, typer.Option("--version", help='Kubernetes version, e.g. "1.31" (one minor version up).')],
) -> None:
    """Upgrade a managed cluster: the control plane first, then each node pool, waiting for each."""
    from kubeinit.managed import upgrade

    spec, record = _target(provider, name)
    upgrade.upgrade_cluster(spec, record, version, managed_flags.options())


def register(groups: dict[str, typer.Typer]) -> None:
    groups["upgrade"].command("cluster")(upgrade_cluster)
    groups["get"].command("nodepools")(get_nodepools)
    groups["create"].command("nodepool")(create_nodepool)
    groups["delete"].command("nodepool")(delete_nodepool)
