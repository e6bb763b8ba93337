"""CLI for managed clusters: create/get/scale/delete and kubeconfig.

Thin: parse flags into a ManagedSpec and Options, call kubeinit.managed.ops.
No cloud SDK is imported here (it would slow down `kubeinit --help`).
"""

from __future__ import annotations

import functools
from enum import StrEnum

import click

from kubeinit import ui
from kubeinit.commands import base, managed_flags
from kubeinit.errors import KubeinitError, UserError


class ProviderName(StrEnum):
    eks = "eks"
    gke = "gke"
    aks = "aks"


def _provider(ctx, param, value) -> ProviderName | None:
    return None if value is None else ProviderName(value)


_PROVIDERS = click.Choice([p.value for p in ProviderName])
ProviderOpt = click.option(
    "--provider", "-p", type=_PROVIDERS, required=True, callback=_provider, help="eks, gke or aks."
)
Name = click.option("--name", "-n", required=True, help="Cluster name.")
Region = click.option("--region", "-r", help="AWS region, GCP region or Azure location.")
Zone = click.option("--zone", help="GCP zone (zonal GKE cluster).")
Location = click.option("--location", "-l", help="GCP zone/region or Azure location.")
Project = click.option("--project", help="GKE: GCP project (default $GOOGLE_CLOUD_PROJECT).")
Group = click.option("--resource-group", "-g", help="AKS: resource group (default kubeinit-NAME).")
Subscription = click.option("--subscription", help="AKS: subscription id (default $AZURE_SUBSCRIPTION_ID).")
DryRun = click.option("--dry-run", is_flag=True, help="Print the SDK calls, in order, without sending any.")
Interval = click.option(
    "--poll-interval", type=click.FloatRange(min=0), help="Seconds between status checks while waiting."
)
Timeout = click.option(
    "--timeout", type=click.FloatRange(min=0), default=40.0, help="Minutes to wait for each cloud operation."
)
Kubeconfig = click.option("--kubeconfig", help="Kubeconfig to merge into (default $KUBECONFIG or ~/.kube/config).")
Where = base.options(Region, Zone, Location)
Account = base.options(Project, Group, Subscription)
Waiting = base.options(DryRun, Interval, Timeout)


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
            raise click.exceptions.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            ui.error("interrupted")
            raise click.exceptions.Exit(130) from None

    return wrapper


def _place(region, zone, location) -> str | None:
    given = [v for v in (region, zone, location) if v]
    if len(set(given)) > 1:
        raise UserError("give only one of --region, --zone or --location")
    return given[0] if given else None


def _options(dry_run=False, poll_interval=None, timeout=40.0, kubeconfig=None, cleanup=False):
    from kubeinit.managed.ops import Options

    return Options(
        dry_run=dry_run,
        cleanup_on_failure=cleanup,
        poll_interval=poll_interval,
        timeout=timeout * 60,
        kubeconfig=kubeconfig,
    )


def _target(provider, name, region, zone, location, project, group, subscription):
    from kubeinit.managed.ops import target

    return target(
        provider.value,
        name,
        {
            "region": _place(region, zone, location),
            "project": project,
            "resource_group": group,
            "subscription": subscription,
            **managed_flags.profile_override(provider.value),
        },
    )


def _ask_delete(what, yes, dry_run):
    """Ask before deleting `what`, unless --yes, or --dry-run (which deletes nothing)."""
    if not (yes or dry_run):
        base.ask_first("deleting", what, f"Delete {what}?", "nothing was deleted")


@click.command("cluster", cls=base.Command)
@click.option("--file", "-f", "--config", "file", help="Cluster file with a `managed:` section.")
@click.option("--provider", "-p", type=_PROVIDERS, callback=_provider, help="eks, gke or aks.")
@click.option("--name", "-n", help="Cluster name.")
@Where
@click.option("--version", help='Kubernetes version, e.g. "1.30".')
@click.option("--nodes", "-N", type=click.IntRange(min=0), help="Nodes in the first pool (GKE: per zone).")
@click.option("--nodes-min", type=click.IntRange(min=0), help="Autoscaling minimum.")
@click.option("--nodes-max", type=click.IntRange(min=0), help="Autoscaling maximum.")
@click.option("--node-type", "-t", help="Instance/machine/VM size.")
@Account
@click.option("--subnets", help="EKS: comma-separated subnet ids to use instead of a new VPC.")
@Kubeconfig
@DryRun
@click.option("--cleanup-on-failure", is_flag=True, help="If creation fails, delete what was created at once.")
@Interval
@Timeout
@managed_flags.add(
    "tags", "labels", "node_volume_size", "zones", "spot", "profile", "no_wait", "write_kubeconfig", "set_context"
)
@_cli
def create_cluster(
    file: str | None,
    provider: ProviderName | None,
    name: str | None,
    region: str | None,
    zone: str | None,
    location: str | None,
    version: str | None,
    nodes: int | None,
    nodes_min: int | None,
    nodes_max: int | None,
    node_type: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    subnets: str | None,
    kubeconfig: str | None,
    dry_run: bool,
    cleanup_on_failure: bool,
    poll_interval: float | None,
    timeout: float,
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
    flags = {
        "provider": provider.value if provider else None,
        "name": name,
        "version": version,
        "region": region,
        "zone": zone,
        "location": location,
        "project": project,
        "resourceGroup": resource_group,
        "subscription": subscription,
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
    ops.create_cluster(
        spec, managed_flags.options(_options(dry_run, poll_interval, timeout, kubeconfig, cleanup_on_failure))
    )


@click.command("clusters", cls=base.Command)
@ProviderOpt
@Where
@Account
@click.option("--output", "-o", default="table", help="table, yaml or json.")
@managed_flags.add("profile")
@_cli
def get_clusters(
    provider: ProviderName,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    output: str,
) -> None:
    """List the provider's clusters in a region/project/subscription."""
    from kubeinit.managed import ops
    from kubeinit.managed.spec import ManagedSpec

    if output not in ("table", "yaml", "json"):
        raise UserError("--output must be table, yaml or json")
    spec = ManagedSpec(
        provider=provider.value,
        name="-",
        region=_place(region, zone, location),
        project=project,
        resource_group=resource_group,
        subscription=subscription,
        **managed_flags.profile_override(provider.value),
    )
    rows = ops.list_clusters(spec)
    if output != "table":
        managed_flags.dump(rows, output)
    elif not rows:
        ui.info(f"no {provider.value} clusters found")
    else:
        ui.table(
            ["NAME", "LOCATION", "VERSION", "STATUS", "RECORDED"],
            [[r["name"], r["location"], r["version"], r["status"], "yes" if r["recorded"] else ""] for r in rows],
        )


@click.command("nodepool", cls=base.Command)
@click.argument("pool", cls=base.Argument, help="Node pool (EKS nodegroup) name.")
@ProviderOpt
@click.option("--cluster", "-c", required=True, help="Cluster name.")
@click.option("--nodes", "-N", type=click.IntRange(min=0), required=True, help="Desired nodes (GKE: per zone).")
@click.option("--nodes-min", type=click.IntRange(min=0))
@click.option("--nodes-max", type=click.IntRange(min=0))
@Where
@Account
@Waiting
@managed_flags.add("profile")
@_cli
def scale_nodepool(
    pool: str,
    provider: ProviderName,
    cluster: str,
    nodes: int,
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
    """Set the node count of one node pool and wait until it applies."""
    from kubeinit.managed import ops

    spec, record = _target(provider, cluster, region, zone, location, project, resource_group, subscription)
    ops.scale_nodepool(spec, record, pool, nodes, nodes_min, nodes_max, _options(dry_run, poll_interval, timeout))


@click.command("cluster", cls=base.Command)
@ProviderOpt
@Name
@Where
@Account
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@Waiting
@managed_flags.add("profile", "no_wait", "keep_load_balancers")
@_cli
def delete_cluster(
    provider: ProviderName,
    name: str,
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
    """Delete a cluster and exactly what kubeinit recorded creating for it."""
    from kubeinit.managed import ops

    spec, record = _target(provider, name, region, zone, location, project, resource_group, subscription)
    _ask_delete(
        f"{provider.value} cluster {name}" + (" and everything kubeinit created for it" if record else ""), yes, dry_run
    )
    ops.delete_cluster(spec, record, managed_flags.options(_options(dry_run, poll_interval, timeout)))


@click.command("kubeconfig", cls=base.Command)
@click.option(
    "--file",
    "-f",
    "cluster_file",
    type=click.Path(dir_okay=False),
    help="A cluster file of hosts kubeinit built: fetch its admin's credentials over SSH.",
)
@click.option("--known-hosts", help="With -f: known_hosts file (default ~/.ssh/known_hosts).")
@click.option("--trust-new-host-keys", is_flag=True, help="With -f: accept and record unknown host keys.")
@click.option("--provider", "-p", type=_PROVIDERS, callback=_provider, help="eks, gke or aks (a managed cluster).")
@click.option("--name", "-n", help="Managed cluster name.")
@Where
@Account
@Kubeconfig
@managed_flags.add("profile", "print_")
@_cli
def kubeconfig_cmd(
    cluster_file: str | None,
    known_hosts: str | None,
    trust_new_host_keys: bool,
    provider: ProviderName | None,
    name: str | None,
    region: str | None,
    zone: str | None,
    location: str | None,
    project: str | None,
    resource_group: str | None,
    subscription: str | None,
    kubeconfig: str | None,
) -> None:
    """Write (merge) a cluster's admin entry into a kubeconfig (0600) and make it current: of a
    cluster file's cluster (-f, read from its control plane over SSH) or a managed one (-p, -n)."""
    from kubeinit.errors import UserError
    from kubeinit.managed import ops

    if cluster_file:
        if provider or name:
            raise UserError("give either -f (a cluster file) or --provider and --name (a managed cluster), not both")
        from kubeinit.commands import admin_kubeconfig

        admin_kubeconfig.write(cluster_file, known_hosts, trust_new_host_keys, kubeconfig)
        return
    if not (provider and name):
        raise UserError("give -f cluster.yaml, or --provider and --name of a managed cluster")
    spec, _ = _target(provider, name, region, zone, location, project, resource_group, subscription)
    if managed_flags.given().get("print_"):
        return ops.print_kubeconfig(spec)
    path, context = ops.write_kubeconfig(spec, _options(kubeconfig=kubeconfig))
    ui.ok(f"wrote context {context} to {path}")


def _group(app: click.Group, name: str, help: str) -> click.Group:
    """The app's `name` sub-command group, made if it does not exist yet (others may add to it)."""
    sub = app.commands.get(name)
    if isinstance(sub, click.Group):
        return sub
    sub = base.Group(name, help=help, no_args_is_help=True)
    app.add_command(sub)
    return sub


def register(app: click.Group) -> None:
    _group(app, "create", "Create resources.").add_command(create_cluster, "cluster")
    _group(app, "get", "List resources.").add_command(get_clusters, "clusters")
    _group(app, "scale", "Scale resources.").add_command(scale_nodepool, "nodepool")
    _group(app, "delete", "Delete resources.").add_command(delete_cluster, "cluster")
    app.add_command(kubeconfig_cmd, "kubeconfig")
    from kubeinit.commands import managed_pools

    managed_pools.register(app, _group)
    from kubeinit.commands import managed_token

    managed_token.register(app, _group)
