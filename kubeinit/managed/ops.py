"""create / delete / scale / kubeconfig / list: the orchestration around a provider.

Pick the context (live or dry run), load or start the record, and turn a
failure into one sentence plus what to do next.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from kubeinit import kubeconfig as kcfg
from kubeinit import ui
from kubeinit.errors import KubeinitError, UserError
from kubeinit.managed import checks, zones
from kubeinit.managed.record import Record, record_path
from kubeinit.managed.run import DryRunCtx, LiveCtx, StopWaiting
from kubeinit.managed.spec import ManagedSpec
from kubeinit.providers import get_provider

_PLACE = ("region", "project", "resource_group", "subscription")


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    cleanup_on_failure: bool = False
    poll_interval: float | None = None  # seconds; None: the provider's default
    timeout: float = 40 * 60  # seconds, per wait
    kubeconfig: str | None = None
    no_wait: bool = False  # start the cloud's work and return
    write_kubeconfig: bool = True
    set_context: bool = True  # make the written context current
    keep_load_balancers: bool = False  # delete: leave Services of type LoadBalancer alone


class Interrupted(KubeinitError):
    """Ctrl-C while waiting: nothing is deleted; the message says how to go on."""

    exit_code = 130


def _ctx(provider, spec, record, opts):
    cls = DryRunCtx if opts.dry_run else LiveCtx
    if opts.dry_run:
        ui.heading(f"Dry run: the {provider.title} calls kubeinit would send, in order (nothing is sent):")
    return cls(provider, spec, record, interval=opts.poll_interval, timeout=opts.timeout)


def _delete_cmd(spec: ManagedSpec) -> str:
    return f"kubeinit delete cluster --provider {spec.provider} --name {spec.name}"


def _with_hints(err: KubeinitError, *hints: str) -> KubeinitError:
    err.hints = (*err.hints, *hints)
    return err


def create_cluster(spec: ManagedSpec, opts: Options) -> None:
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec)
    zones.check(spec)
    record = Record.load(spec.provider, spec.name)
    if record is None:
        record = Record(record_path(spec.provider, spec.name), spec)
    else:
        moved = [f for f in _PLACE if getattr(record.spec, f) != getattr(spec, f)]
        if moved:
            f = moved[0]
            raise UserError(
                f"{record.path} records {spec.provider} cluster {spec.name} with {f} "
                f"{getattr(record.spec, f)}, not {getattr(spec, f)}: use that {f}, "
                f"or delete it first with `{_delete_cmd(spec)}`"
            )
        said, commands = checks.changes(record.spec, spec)
        if said and record.status == "ready":  # the cloud would keep what it has: say so rather than pretend
            raise _with_hints(
                UserError(
                    f"{provider.title} cluster {spec.name} is ready and was created with other settings ("
                    + "; ".join(said)
                    + "): create does not change an existing cluster, and nothing was changed"
                ),
                *([f"to change it: `{c}`" for c in commands] or []),
                *(
                    ["other settings are fixed once made: delete the cluster and create it again"]
                    if len(commands) < len(said)
                    else []
                ),
            )
        if said:
            ui.warn(
                "the settings differ from the record's (" + "; ".join(said) + "): what is already made keeps "
                "its settings, the rest is made with the new ones"
            )
        ui.info(f"resuming from {record.path}: {len(record.resources)} recorded resources are reused")
        record.spec = spec
    ctx = _ctx(provider, spec, record, opts)
    if opts.no_wait:  # return at the first wait once the cluster itself is asked for
        ctx.no_wait = lambda: ctx.record.get("cluster", spec.name) is not None
    try:
        provider.create(ctx)
        _created(provider, ctx, record, opts)
    except StopWaiting as stop:
        _started(provider, record, spec, opts, stop)
    except KeyboardInterrupt:
        err = Interrupted(f"interrupted while {ctx.stopped_at or ctx.label}; nothing was deleted")
        if record.resources and not opts.dry_run:
            _with_hints(
                err,
                f"what kubeinit created so far is recorded in {record.path}",
                f"run the same create command again to resume, or `{_delete_cmd(spec)}` to remove it",
            )
        raise err from None
    except KubeinitError as e:
        if opts.dry_run:
            raise
        if not record.resources:
            record.discard()
            raise
        record.set("failed")
        if not opts.cleanup_on_failure:
            raise _with_hints(
                e,
                f"what kubeinit created is recorded in {record.path}",
                f"fix the cause and run the same command again to resume, or `{_delete_cmd(spec)}` to remove it",
            ) from None
        ui.error(str(e))
        ui.warn(f"removing the {len(record.resources)} resources kubeinit created (--cleanup-on-failure)")
        cleanup = LiveCtx(provider, spec, record, interval=opts.poll_interval, timeout=opts.timeout)
        try:
            provider.delete(cleanup, list(record.resources))
        except KubeinitError as failed:
            raise _with_hints(
                e,
                f"the clean-up failed too ({failed}); {record.path} lists what is left",
                f"run `{_delete_cmd(spec)}` to retry",
            ) from None
        record.discard()
        raise _with_hints(e, f"cleaned up: removed {cleanup.removed} resources kubeinit had created") from None


def _created(provider, ctx, record: Record, opts: Options) -> None:
    """The cluster is ready: write its kubeconfig unless told not to, and say so."""
    spec = ctx.spec
    if not opts.write_kubeconfig:
        if not opts.dry_run:
            record.set("ready")
            ui.ok(
                f"{provider.title} cluster {spec.name} is ready; no kubeconfig written (--write-kubeconfig=false): "
                f"`kubeinit kubeconfig --provider {spec.provider} --name {spec.name}` writes it"
            )
        return
    path = opts.kubeconfig or kcfg.default_path()
    context = ctx.write_kubeconfig(str(path), provider.kubeconfig(ctx), current=opts.set_context)
    if not opts.dry_run:
        record.set("ready", kubeconfig={"path": str(path), "context": context})
        current = "" if opts.set_context else " (not made current: --set-context=false)"
        ui.ok(f"{provider.title} cluster {spec.name} is ready; kubeconfig {path}, context {context}{current}")


def _started(provider, record: Record, spec: ManagedSpec, opts: Options, stop: StopWaiting) -> None:
    """--no-wait on create: the cloud is working on it; say how to follow up."""
    if opts.dry_run:
        return
    record.set("creating")
    ui.ok(f"started: {stop.what} is what the cloud is now working on (--no-wait)")
    ui.info(
        f"follow it with `kubeinit get clusters --provider {spec.provider}`; run the same create command again "
        "(without --no-wait) to wait for it, create the rest and write the kubeconfig"
    )


def _delete_first(provider, ctx, opts: Options) -> None:
    """Before any deletion: refuse --no-wait where the order needs waiting; free load balancers."""
    if opts.no_wait:
        if ctx.spec.provider == "eks":
            raise UserError(
                "EKS deletes in order (nodegroups, then the cluster, then its VPC and roles), each after the "
                "one before is gone: --no-wait is not available for EKS; run the delete without it"
            )
        ctx.no_wait = lambda: True  # every wait in a delete follows a deletion call: return at the first
    ctx.deleting_cluster = True  # GKE/AKS: the cluster's deletion takes its node pools, no need to wait for each
    if not opts.keep_load_balancers:
        from kubeinit.managed import loadbalancers

        loadbalancers.free(provider, ctx)


def _delete_started(record: Record, spec: ManagedSpec, opts: Options, stop: StopWaiting) -> None:
    """--no-wait on delete: the deletion is under way; the record stays until a delete sees it gone."""
    if opts.dry_run:
        return
    if record.resources:
        record.resources[-1]["data"]["deleting"] = True  # the entry being deleted: a re-run waits for it
    record.set("deleting")
    ui.ok(f"started: the cloud is deleting {spec.provider} cluster {spec.name} (--no-wait)")
    ui.info(
        f"follow it with `kubeinit get clusters --provider {spec.provider}`; run `{_delete_cmd(spec)}` again "
        "(without --no-wait) to wait until it is gone and remove the rest and kubeinit's record"
    )


def print_kubeconfig(spec: ManagedSpec) -> None:
    """kubeconfig --print: the cluster's entry on stdout and nowhere else (no file, no log). Not masked:
    AKS's holds the user's credentials, which is what was asked for."""
    import sys

    import yaml

    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "kubeconfig")
    ctx = LiveCtx(provider, spec, Record(record_path(spec.provider, spec.name), spec, persist=False))
    doc = provider.kubeconfig(ctx)
    text = doc.decode() if isinstance(doc, bytes) else yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def target(provider_name: str, name: str, overrides: dict) -> tuple[ManagedSpec, Record | None]:
    """The spec for an existing cluster: its record's, with location flags applied on top."""
    record = Record.load(provider_name, name)
    base = record.spec if record else ManagedSpec(provider=provider_name, name=name, region=None)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **changes), record


def delete_cluster(spec: ManagedSpec, record: Record | None, opts: Options) -> None:
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "delete")
    if record is None:
        record = Record(record_path(spec.provider, spec.name), spec, persist=False)
        ui.warn(
            f"no record of {spec.provider} cluster {spec.name} in {record.path}: deleting the cluster "
            "and its node pools only (resources kubeinit did not record are kept)"
        )
        recorded = False
    else:
        recorded = True
    ctx = _ctx(provider, spec, record, opts)
    _delete_first(provider, ctx, opts)
    entries: list[dict] = []
    try:
        entries = list(record.resources) if recorded else provider.discover(ctx)
        provider.delete(ctx, entries)
    except StopWaiting as stop:
        return _delete_started(record, spec, opts, stop)
    except KeyboardInterrupt:
        raise _with_hints(
            Interrupted(f"interrupted while {ctx.stopped_at or ctx.label}"),
            f"run `{_delete_cmd(spec)}` again to finish; the record lists what is left",
        ) from None
    except KubeinitError as e:
        if opts.dry_run:
            raise
        left = list(record.resources) if recorded else entries[: len(entries) - ctx.removed]
        if left:
            _with_hints(
                e,
                "still in the cloud: "
                + ", ".join(provider.describe(x) for x in reversed(left))
                + (f" (listed in {record.path})" if recorded else ""),
                f"fix the cause and run `{_delete_cmd(spec)}` again",
            )
        raise
    if opts.dry_run:
        return
    if not recorded and ctx.removed == 0:
        raise UserError(f"{provider.title} cluster {spec.name} was not found (and kubeinit has no record of it)")
    kc = record.extra.get("kubeconfig") if recorded else None
    if kc and kcfg.remove(kc["path"], kc["context"]):
        ui.ok(f"removed context {kc['context']} from {kc['path']}")
    record.discard()
    ui.ok(f"{provider.title} cluster {spec.name} deleted ({ctx.removed} resources removed)")


def scale_nodepool(
    spec: ManagedSpec, record: Record | None, pool: str, nodes: int, min_: int | None, max_: int | None, opts: Options
) -> None:
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "scale")
    checks.scale(spec, record, pool, nodes, min_, max_)
    if record is None:
        record = Record(record_path(spec.provider, spec.name), spec, persist=False)
    ctx = _ctx(provider, spec, record, opts)
    try:
        provider.scale(ctx, pool, nodes, min_, max_)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while {ctx.stopped_at or ctx.label}; the change goes on in the cloud") from None
    if not opts.dry_run:
        ui.ok(f"node pool {pool} of {provider.title} cluster {spec.name} scaled to {nodes}")


def write_kubeconfig(spec: ManagedSpec, opts: Options) -> tuple[Path, str]:
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "kubeconfig")
    record = Record(record_path(spec.provider, spec.name), spec, persist=False)
    ctx = LiveCtx(provider, spec, record)
    path = Path(opts.kubeconfig or kcfg.default_path())
    return path, ctx.write_kubeconfig(str(path), provider.kubeconfig(ctx))


def list_clusters(spec: ManagedSpec) -> list[dict]:
    provider = get_provider(spec.provider)
    spec = provider.resolve(spec, "list")
    ctx = LiveCtx(provider, spec, Record(record_path(spec.provider, spec.name), spec, persist=False))
    rows = provider.list(ctx)
    for row in rows:
        row["recorded"] = record_path(spec.provider, row["name"]).exists()
    return rows
