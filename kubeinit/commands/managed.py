"""CLI for managed clusters: create/get/scale/delete and kubeconfig.

Thin: parse flags into a ManagedSpec and Options, call kubeinit.managed.ops.
No cloud SDK is imported here (it would slow down `kubeinit --help`).
"""

from __future__ import annotations

import functools
import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from kubeinit import ui
from kubeinit.errors import KubeinitError, UserError


class ProviderName(str, Enum):
    eks = "eks"
    gke = "gke"
    aks = "aks"


ProviderOpt = Annotated[ProviderName, typer.Option("--provider", "-p", help="eks, gke or aks.")]
Name = Annotated[str, typer.Option("--name", "-n", help="Cluster name.")]
Region = Annotated[Optional[str], typer.Option("--region", "-r", help="AWS region, GCP region or Azure location.")]
Zone = Annotated[Optional[str], typer.Option("--zone", help="GCP zone (zonal GKE cluster).")]
Location = Annotated[Optional[str], typer.Option("--location", "-l", help="GCP zone/region or Azure location.")]
Project = Annotated[Optional[str], typer.Option("--project", help="GKE: GCP project (default $GOOGLE_CLOUD_PROJECT).")]
Group = Annotated[Optional[str], typer.Option("--resource-group", "-g", help="AKS: resource group (default kubeinit-NAME).")]
Subscription = Annotated[Optional[str], typer.Option("--subscription", help="AKS: subscription id (default $AZURE_SUBSCRIPTION_ID).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the SDK calls, in order, without sending any.")]
Interval = Annotated[Optional[float], typer.Option("--poll-interval", min=0, help="Seconds between status checks while waiting.")]
Timeout = Annotated[float, typer.Option("--timeout", min=0, help="Minutes to wait for each cloud operation.")]
Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", help="Kubeconfig to merge into (default $KUBECONFIG or ~/.kube/config).")]


def _cli(fn):
    """KubeinitError → one line on stderr (+ what to do next) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KubeinitError as e:
            ui.error(str(e))
            for hint in getattr(e, "hints", []):
                ui.info(hint)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            ui.error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _place(region, zone, location) -> Optional[str]:
    given = [v for v in (region, zone, location) if v]
    if len(set(given)) > 1:
        raise UserError("give only one of --region, --zone or --location")
    return given[0] if given else None


def _options(dry_run=False, poll_interval=None, timeout=40.0, kubeconfig=None, cleanup=False):
    from kubeinit.managed.ops import Options

    return Options(dry_run=dry_run, cleanup_on_failure=cleanup, poll_interval=poll_interval,
                   timeout=timeout * 60, kubeconfig=kubeconfig)


def _target(provider, name, region, zone, location, project, group, subscription):
    from kubeinit.managed.ops import target

    return target(provider.value, name, {"region": _place(region, zone, location), "project": project,
                                         "resource_group": group, "subscription": subscription})


@_cli
def create_cluster(
    file: Annotated[Optional[str], typer.Option("--file", "-f", "--config", help="Cluster file with a `managed:` section.")] = None,
    provider: Annotated[Optional[ProviderName], typer.Option("--provider", "-p", help="eks, gke or aks.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Cluster name.")] = None,
    region: Region = None, zone: Zone = None, location: Location = None,
    version: Annotated[Optional[str], typer.Option("--version", help='Kubernetes version, e.g. "1.30".')] = None,
    nodes: Annotated[Optional[int], typer.Option("--nodes", "-N", min=0, help="Nodes in the first pool (GKE: per zone).")] = None,
    nodes_min: Annotated[Optional[int], typer.Option("--nodes-min", min=0, help="Autoscaling minimum.")] = None,
    nodes_max: Annotated[Optional[int], typer.Option("--nodes-max", min=0, help="Autoscaling maximum.")] = None,
    node_type: Annotated[Optional[str], typer.Option("--node-type", "-t", help="Instance/machine/VM size.")] = None,
    project: Project = None, resource_group: Group = None, subscription: Subscription = None,
    subnets: Annotated[Optional[str], typer.Option("--subnets", help="EKS: comma-separated subnet ids to use instead of a new VPC.")] = None,
    kubeconfig: Kubeconfig = None,
    dry_run: DryRun = False,
    cleanup_on_failure: Annotated[bool, typer.Option("--cleanup-on-failure", help="If creation fails, delete what was created at once.")] = False,
    poll_interval: Interval = None, timeout: Timeout = 40.0,
) -> None:
    """Create a managed cluster (and what it needs), wait for it, write its kubeconfig."""
    from kubeinit.managed import ops, spec as mspec

    if file:
        raw, top_name = mspec.load_file(file)
        path, source = "managed", file
    elif provider is None:
        raise UserError("pass --provider eks|gke|aks (or -f FILE)")
    else:
        raw, top_name, path, source = {}, None, "", "command line"
    flags = {"provider": provider.value if provider else None, "name": name, "version": version,
             "region": region, "zone": zone, "location": location, "project": project,
             "resourceGroup": resource_group, "subscription": subscription,
             "subnets": [s.strip() for s in subnets.split(",") if s.strip()] if subnets else None,
             "nodes": nodes, "node_type": node_type, "nodes_min": nodes_min, "nodes_max": nodes_max}
    if isinstance(raw, dict):  # otherwise parse_managed says it must be a mapping
        raw = mspec.merge_flags(raw, flags)
    spec = mspec.parse_managed(raw, path, name=top_name, source=source)
    ops.create_cluster(spec, _options(dry_run, poll_interval, timeout, kubeconfig, cleanup_on_failure))


@_cli
def get_clusters(
    provider: ProviderOpt, region: Region = None, zone: Zone = None, location: Location = None,
    project: Project = None, resource_group: Group = None, subscription: Subscription = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """List the provider's clusters in a region/project/subscription."""
    from kubeinit.managed import ops
    from kubeinit.managed.spec import ManagedSpec

    if output not in ("table", "json"):
        raise UserError("--output must be table or json")
    spec = ManagedSpec(provider=provider.value, name="-", region=_place(region, zone, location),
                       project=project, resource_group=resource_group, subscription=subscription)
    rows = ops.list_clusters(spec)
    if output == "json":
        ui.print_json(rows)
    elif not rows:
        ui.info(f"no {provider.value} clusters found")
    else:
        ui.table(["NAME", "LOCATION", "VERSION", "STATUS", "RECORDED"],
                 [[r["name"], r["location"], r["version"], r["status"], "yes" if r["recorded"] else ""] for r in rows])


@_cli
def scale_nodepool(
    pool: Annotated[str, typer.Argument(help="Node pool (EKS nodegroup) name.")],
    provider: ProviderOpt,
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="Cluster name.")],
    nodes: Annotated[int, typer.Option("--nodes", "-N", min=0, help="Desired nodes (GKE: per zone).")],
    nodes_min: Annotated[Optional[int], typer.Option("--nodes-min", min=0)] = None,
    nodes_max: Annotated[Optional[int], typer.Option("--nodes-max", min=0)] = None,
    region: Region = None, zone: Zone = None, location: Location = None,
    project: Project = None, resource_group: Group = None, subscription: Subscription = None,
    dry_run: DryRun = False, poll_interval: Interval = None, timeout: Timeout = 40.0,
) -> None:
    """Set the node count of one node pool and wait until it applies."""
    from kubeinit.managed import ops

    spec, record = _target(provider, cluster, region, zone, location, project, resource_group, subscription)
    ops.scale_nodepool(spec, record, pool, nodes, nodes_min, nodes_max, _options(dry_run, poll_interval, timeout))


@_cli
def delete_cluster(
    provider: ProviderOpt, name: Name,
    region: Region = None, zone: Zone = None, location: Location = None,
    project: Project = None, resource_group: Group = None, subscription: Subscription = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: DryRun = False, poll_interval: Interval = None, timeout: Timeout = 40.0,
) -> None:
    """Delete a cluster and exactly what kubeinit recorded creating for it."""
    from kubeinit.managed import ops

    spec, record = _target(provider, name, region, zone, location, project, resource_group, subscription)
    if not (yes or dry_run):
        what = f"{provider.value} cluster {name}" + (" and everything kubeinit created for it" if record else "")
        if not sys.stdin or not sys.stdin.isatty():
            raise UserError(f"not deleting {what} without confirmation: there is no terminal to ask on; pass --yes")
        if not typer.confirm(f"Delete {what}?"):
            raise KubeinitError("nothing was deleted")
    ops.delete_cluster(spec, record, _options(dry_run, poll_interval, timeout))


@_cli
def kubeconfig_cmd(
    provider: ProviderOpt, name: Name,
    region: Region = None, zone: Zone = None, location: Location = None,
    project: Project = None, resource_group: Group = None, subscription: Subscription = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Write (merge) a managed cluster's entry into a kubeconfig and make it current."""
    from kubeinit.managed import ops

    spec, _ = _target(provider, name, region, zone, location, project, resource_group, subscription)
    path, context = ops.write_kubeconfig(spec, _options(kubeconfig=kubeconfig))
    ui.ok(f"wrote context {context} to {path}")


def _group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The app's `name` sub-command group, made if it does not exist yet (others may add to it)."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)  # plain help is cheaper
    app.add_typer(sub, name=name)
    return sub


def register(app: typer.Typer) -> None:
    _group(app, "create", "Create resources.").command("cluster")(create_cluster)
    _group(app, "get", "List resources.").command("clusters")(get_clusters)
    _group(app, "scale", "Scale resources.").command("nodepool")(scale_nodepool)
    _group(app, "delete", "Delete resources.").command("cluster")(delete_cluster)
    app.command("kubeconfig")(kubeconfig_cmd)
