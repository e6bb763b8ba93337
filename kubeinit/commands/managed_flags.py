"""The managed-cluster commands' shared flags (where the cluster is, how to wait, eksctl's everyday
ones), added by decorator.

A decorated command gets the options (typer options, after its own); their values are kept
aside for the call (`given()`) instead of being passed as arguments, so the command functions
keep their signatures. No cloud SDK is imported here.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
from collections.abc import Callable
from typing import Annotated, Any, NewType

import typer

from kubeinit.cli.convert import parse_bool
from kubeinit.errors import UserError

_GIVEN: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("managed_flags", default=None)

_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_./:+@-]{0,126}[A-Za-z0-9_.-])?$")

# A bool option that takes a value (`--write-kubeconfig false`), as eksctl's: typer makes a bool a flag.
BoolValue = NewType("BoolValue", bool)


TIMEOUT = 40.0  # minutes
# Where a cluster is: every managed command but `token eks` takes these (read them with where()).
WHERE = ("region", "zone", "location", "project", "resource_group", "subscription")
# How a command that waits on the cloud runs (read with options()).
RUN = ("dry_run", "poll_interval", "timeout")

# name -> (the option, its default)
OPTIONS: dict[str, tuple[Any, Any]] = {
    "region": (
        Annotated[str | None, typer.Option("--region", "-r", help="AWS region, GCP region or Azure location.")],
        None,
    ),
    "zone": (Annotated[str | None, typer.Option("--zone", help="GCP zone (zonal GKE cluster).")], None),
    "location": (
        Annotated[str | None, typer.Option("--location", "-l", help="GCP zone/region or Azure location.")],
        None,
    ),
    "project": (
        Annotated[str | None, typer.Option("--project", help="GKE: GCP project (default $GOOGLE_CLOUD_PROJECT).")],
        None,
    ),
    "resource_group": (
        Annotated[
            str | None, typer.Option("--resource-group", "-g", help="AKS: resource group (default kubeinit-NAME).")
        ],
        None,
    ),
    "subscription": (
        Annotated[
            str | None, typer.Option("--subscription", help="AKS: subscription id (default $AZURE_SUBSCRIPTION_ID).")
        ],
        None,
    ),
    "dry_run": (
        Annotated[bool, typer.Option("--dry-run", help="Print the SDK calls, in order, without sending any.")],
        False,
    ),
    "poll_interval": (
        Annotated[
            float | None, typer.Option("--poll-interval", min=0, help="Seconds between status checks while waiting.")
        ],
        None,
    ),
    "timeout": (
        Annotated[float, typer.Option("--timeout", min=0, help="Minutes to wait for each cloud operation.")],
        TIMEOUT,
    ),
    "kubeconfig": (
        Annotated[
            str | None,
            typer.Option("--kubeconfig", help="Kubeconfig to merge into (default $KUBECONFIG or ~/.kube/config)."),
        ],
        None,
    ),
    "cleanup_on_failure": (
        Annotated[
            bool, typer.Option("--cleanup-on-failure", help="If creation fails, delete what was created at once.")
        ],
        False,
    ),
    "tags": (
        Annotated[
            str | None,
            typer.Option("--tags", metavar="K=V,...", help="Cloud tags (GKE: labels) on what kubeinit makes."),
        ],
        None,
    ),
    "labels": (
        Annotated[str | None, typer.Option("--labels", metavar="K=V,...", help="Kubernetes labels on the nodes.")],
        None,
    ),
    "node_volume_size": (
        Annotated[
            int | None, typer.Option("--node-volume-size", min=1, metavar="GIB", help="Node root volume size in GiB.")
        ],
        None,
    ),
    "zones": (
        Annotated[
            str | None,
            typer.Option(
                "--zones",
                metavar="Z,...",
                help="EKS: subnet availability zones; GKE: node locations; AKS: availability zones (1,2,3).",
            ),
        ],
        None,
    ),
    "spot": (  # None when not given: a cluster file's `spot` stands
        Annotated[
            bool | None,
            typer.Option(
                "--spot", help="Spot capacity (EKS SPOT, GKE spot VMs, AKS Spot priority; not for AKS system pools)."
            ),
        ],
        None,
    ),
    "profile": (
        Annotated[str | None, typer.Option("--profile", help="EKS: AWS named profile (default $AWS_PROFILE).")],
        None,
    ),
    "no_wait": (
        Annotated[bool, typer.Option("--no-wait", help="Start the cloud's work and return without waiting.")],
        False,
    ),
    "write_kubeconfig": (
        Annotated[
            BoolValue,
            typer.Option(
                "--write-kubeconfig",
                parser=parse_bool,
                metavar="BOOL",
                help="Write (merge) the kubeconfig when the cluster is ready.",
            ),
        ],
        True,
    ),
    "set_context": (
        Annotated[
            BoolValue,
            typer.Option(
                "--set-context", parser=parse_bool, metavar="BOOL", help="Make the written context the current one."
            ),
        ],
        True,
    ),
    "keep_load_balancers": (
        Annotated[
            bool,
            typer.Option(
                "--keep-load-balancers", help="Do not delete Services of type LoadBalancer before the cluster."
            ),
        ],
        False,
    ),
    "print_": (
        Annotated[
            bool,
            typer.Option(
                "--print", help="Write the kubeconfig to stdout instead of a file (AKS: it holds credentials)."
            ),
        ],
        False,
    ),
}
_OPTION_FIELDS = (
    "dry_run",
    "cleanup_on_failure",
    "poll_interval",
    "kubeconfig",
    "no_wait",
    "write_kubeconfig",
    "set_context",
    "keep_load_balancers",
)


def add(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: add these options to a command, after its own; their values are read with given()."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            token = _GIVEN.set({n: kwargs.pop(n) for n in names})
            try:
                return fn(*args, **kwargs)
            finally:
                _GIVEN.reset(token)

        own = inspect.signature(fn, eval_str=True)
        extra = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=OPTIONS[n][0], default=OPTIONS[n][1])
            for n in names
        ]
        inner.__signature__ = own.replace(parameters=[*own.parameters.values(), *extra])  # type: ignore[attr-defined]
        return inner

    return wrap


def given() -> dict[str, Any]:
    return _GIVEN.get() or {}


def options():
    """ops.Options of the given flags (the defaults for those the command does not take)."""
    from kubeinit.managed.ops import Options

    flags = given()
    return Options(timeout=flags.get("timeout", TIMEOUT) * 60, **{k: flags[k] for k in _OPTION_FIELDS if k in flags})


def place() -> str | None:
    """The one of --region, --zone and --location given (None: none)."""
    flags = given()
    places = [flags[k] for k in ("region", "zone", "location") if flags.get(k)]
    if len(set(places)) > 1:
        raise UserError("give only one of --region, --zone or --location")
    return places[0] if places else None


def where(provider: str) -> dict[str, Any]:
    """The location flags (and --profile) in ManagedSpec's terms (None: not given)."""
    flags = given()
    return {
        "region": place(),
        "project": flags.get("project"),
        "resource_group": flags.get("resource_group"),
        "subscription": flags.get("subscription"),
        **profile_override(provider),
    }


def spec_flags() -> dict[str, Any]:
    """The given flags in merge_flags' terms (None: not given)."""
    f = given()
    return {
        "tags": kv(f.get("tags"), "--tags"),
        "labels": kv(f.get("labels"), "--labels"),
        "node_volume_size": f.get("node_volume_size"),
        "spot": f.get("spot"),
        "zones": [z.strip() for z in f["zones"].split(",") if z.strip()] if f.get("zones") else None,
        "profile": f.get("profile"),
    }


def kv(text: str | None, flag: str) -> dict[str, str] | None:
    """`k=v,k2=v2` → dict; a malformed pair is a one-line user error."""
    if text is None:
        return None
    out: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not _KEY.match(key):
            raise UserError(f"{flag}: {pair!r} is not KEY=VALUE (keys: letters, digits and _ . / : + @ -)")
        if key in out:
            raise UserError(f"{flag}: {key} is given twice")
        out[key] = value.strip()
    return out


def profile_override(provider: str) -> dict[str, Any]:
    """--profile on a command about an existing cluster: it wins over the record's."""
    profile = given().get("profile")
    if profile is None:
        return {}
    if provider != "eks":
        raise UserError("--profile names an AWS profile: it applies only to --provider eks")
    return {"profile": profile}


def dump(rows: list[dict], output: str) -> None:
    """-o json|yaml: the rows as a list, for scripts."""
    from kubeinit import ui

    if output == "json":
        ui.print_json(rows)
    else:
        import yaml

        ui.raw(yaml.safe_dump(rows, default_flow_style=False, sort_keys=True))
