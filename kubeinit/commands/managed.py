"""CLI for managed clusters: create/get/scale/delete and kubeconfig (typer commands).

Thin: parse flags into a ManagedSpec and Options, call kubeinit.managed.ops. kubeinit.cli.managed
lists these commands and imports this module only when one of them runs: no cloud SDK is
imported here (it would slow down `kubeinit --help`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from kubeinit import ui
from kubeinit.commands import base, managed_flags
from kubeinit.errors import KubeinitError, UserError

ProviderName = Literal["eks", "gke", "aks"]


Provider = Annotated[ProviderName, typer.Option("--provider", "-p", help="eks, gke or aks.")]
OptionalProvider = Annotated[ProviderName | None, typer.Option("--provider", "-p", help="eks, gke or aks.")]
Name = Annotated[str, typer.Option("--name", "-n", help="Cluster name.")]
Nodes = Annotated[int | None, typer.Option("--nodes", "-N", min=0, help="Nodes in the first pool (GKE: per zone).")]
NodesMin = Annotated[int | None, typer.Option("--nodes-min", min=0, help="Autoscaling minimum.")]
NodesMax = Annotated[int | None, typer.Option("--nodes-max", min=0, help="Autoscaling maximum.")]
NodeType = Annotated[str | None, typer.Option("--node-type", "-t", help="Instance/machine/VM size.")]
Output = Annotated[str, typer.Option("--output", "-o", help="table, yaml or json.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Pool = Annotated[str, typer.Argument(help="Node pool (EKS nodegroup) name.", show_default=False)]


def _cli(fn: Callable[..., Any]) -> Callable[..., Any]:
    """KubeinitError → one line on stderr (+ what to do next) and its exit code; no traceback even
    with --verbose, which adds the cloud's detail to the line instead."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KubeinitError as e:
            ui.error(str(e))
            for hint in getattr(e, "hints", []):
                ui.info(hint)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:  # the command has said how to resume
            ui.error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _target(provider: str, name: str):
    """The spec (and record) of an existing cluster, with the given location flags on top."""
    from kubeinit.managed.ops import target

    return target(provider, name, managed_flags.where(provider))


def _ask_delete(what: str, yes: bool) -> None:
    """Ask before deleting `what`, unless --yes, or --dry-run (which deletes nothing)."""
    if not (yes or managed_flags.given().get("dry_run")):
        base.ask_first("deleting", what, f"Delete {what}?", "nothing was deleted")


@managed_flags.add(
    *managed_flags.WHERE,
    "kubeconfig",
    *managed_flags.RUN,
    "cleanup_on_failure",
    "tags",
    "labels",
    "node_volume_size",
    "zones",
    "spot",
    "profile",
    "no_wait",
    "write_kubeconfig",
    "set_context",
)
@_cli
def create_cluster(
    file: Annotated[
        str | None, typer.Option("--file", "-f", "--config", help="Cluster file with a `managed:` section.")
    ] = None,
    provider: OptionalProvider = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Cluster name.")] = None,
    version: Annotated[str | None, typer.Option("--version", help='Kubernetes version, e.g. "1.30".')] = None,
    nodes: Nodes = None,
    nodes_min: NodesMin = None,
    nodes_max: NodesMax = None,
    node_type: NodeType = None,
    subnets: Annotated[
        str | None, typer.Option("--subnets", help="EKS: comma-separated subnet ids to use instead of a new VPC.")
    ] = None,
) -> None:
    """Create a managed cluster (and what it needs), wait for it, write its kubeconfig."""
    from kubeinit.managed import ops
    from kubeinit.managed import spec as mspec

    if file:
        raw, top_name = mspec.load_file(file)
        path, source = "managed", file
    elif provider is None:
        raise UserError("pass --provider eks|gke|aks (or -f FILE)")
    else:
        raw, top_name, path, source = {}, None, "", "command line"
    given = managed_flags.given()
    flags = {
        "provider": provider,
        "name": name,
        "version": version,
        **{k: given[k] for k in ("region", "zone", "location", "project", "subscription")},
        "resourceGroup": given["resource_group"],
        "subnets": [s.strip() for s in subnets.split(",") if s.strip()] if subnets else None,
        "nodes": nodes,
        "node_type": node_type,
        "nodes_min": nodes_min,
        "nodes_max": nodes_max,
        **managed_flags.spec_flags(),
    }
    if isinstance(raw, dict):  # otherwise parse_managed says it must be a mapping
        raw = mspec.merge_flags(raw, flags)
    spec = mspec.parse_managed(raw, path, name=top_name, source=source)
    ops.create_cluster(spec, managed_flags.options())


@managed_flags.add(*managed_flags.WHERE, "profile")
@_cli
def get_clusters(
    provider: Provider,
    output: Output = "table",
) -> None:
    """List the provider's clusters in a region/project/subscription."""
    from kubeinit.managed import ops
    from kubeinit.managed.spec import ManagedSpec

    if output not in ("table", "yaml", "json"):
        raise UserError("--output must be table, yaml or json")
    spec = ManagedSpec(provider=provider, name="-", **managed_flags.where(provider))
    rows = ops.list_clusters(spec)
    if output != "table":
        managed_flags.dump(rows, output)
    elif not rows:
        ui.info(f"no {provider} clusters found")
    else:
        ui.table(
            ["NAME", "LOCATION", "VERSION", "STATUS", "RECORDED"],
            [[r["name"], r["location"], r["version"], r["status"], "yes" if r["recorded"] else ""] for r in rows],
        )


@managed_flags.add(*managed_flags.WHERE, *managed_flags.RUN, "profile")
@_cli
def scale_nodepool(
    pool: Pool,
    provider: Provider,
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="Cluster name.")],
    nodes: Annotated[int, typer.Option("--nodes", "-N", min=0, help="Desired nodes (GKE: per zone).")],
    nodes_min: Annotated[int | None, typer.Option("--nodes-min", min=0)] = None,
    nodes_max: Annotated[int | None, typer.Option("--nodes-max", min=0)] = None,
) -> None:
    """Set the node count of one node pool and wait until it applies."""
    from kubeinit.managed import ops

    spec, record = _target(provider, cluster)
    ops.scale_nodepool(spec, record, pool, nodes, nodes_min, nodes_max, managed_flags.options())


@managed_flags.add(*managed_flags.WHERE, *managed_flags.RUN, "profile", "no_wait", "keep_load_balancers")
@_cli
def delete_cluster(
    provider: Provider,
    name: Name,
    yes: Yes = False,
) -> None:
    """Delete a cluster and exactly what kubeinit recorded creating for it."""
    from kubeinit.managed import ops

    spec, record = _target(provider, name)
    _ask_delete(f"{provider} cluster {name}" + (" and everything kubeinit created for it" if record else ""), yes)
    ops.delete_cluster(spec, record, managed_flags.options())


@managed_flags.add(*managed_flags.WHERE, "kubeconfig", "profile", "print_")
@_cli
def kubeconfig_cmd(
    cluster_file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", help="A cluster file of hosts kubeinit built: fetch its admin's credentials over SSH."
        ),
    ] = None,
    known_hosts: Annotated[
        str | None, typer.Option("--known-hosts", help="With -f: known_hosts file (default ~/.ssh/known_hosts).")
    ] = None,
    trust_new_host_keys: Annotated[
        bool, typer.Option("--trust-new-host-keys", help="With -f: accept and record unknown host keys.")
    ] = False,
    provider: Annotated[
        ProviderName | None, typer.Option("--provider", "-p", help="eks, gke or aks (a managed cluster).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Managed cluster name.")] = None,
) -> None:
    """Write (merge) a cluster's admin entry into a kubeconfig (0600) and make it current: of a
    cluster file's cluster (-f, read from its control plane over SSH) or a managed one (-p, -n)."""
    from kubeinit.managed import ops

    if cluster_file:
        if provider or name:
            raise UserError("give either -f (a cluster file) or --provider and --name (a managed cluster), not both")
        from kubeinit.commands import admin_kubeconfig

        admin_kubeconfig.write(cluster_file, known_hosts, trust_new_host_keys, managed_flags.given()["kubeconfig"])
        return
    if not (provider and name):
        raise UserError("give -f cluster.yaml, or --provider and --name of a managed cluster")
    spec, _ = _target(provider, name)
    if managed_flags.given().get("print_"):
        return ops.print_kubeconfig(spec)
    path, context = ops.write_kubeconfig(spec, managed_flags.options())
    ui.ok(f"wrote context {context} to {path}")


def _group(help: str) -> typer.Typer:
    from kubeinit.cli.help import PanelGroup

    return typer.Typer(cls=PanelGroup, help=help, no_args_is_help=True, rich_markup_mode=None, add_completion=False)


def app(helps: dict[tuple[str, ...], str]) -> typer.Typer:
    """The managed commands as one typer app, under the names kubeinit.cli.managed lists them
    with (`helps`: a group's name -> its help)."""
    from kubeinit.commands import managed_pools, managed_token

    groups = {name: _group(helps.get((name,), "")) for name in ("create", "get", "scale", "delete", "upgrade", "token")}
    groups["create"].command("cluster")(create_cluster)
    groups["get"].command("clusters")(get_clusters)
    groups["scale"].command("nodepool")(scale_nodepool)
    groups["delete"].command("cluster")(delete_cluster)
    managed_pools.register(groups)
    managed_token.register(groups)
    root = typer.Typer(add_completion=False, rich_markup_mode=None)
    for name, group in groups.items():
        root.add_typer(group, name=name)
    root.command("kubeconfig")(kubeconfig_cmd)
    return root
