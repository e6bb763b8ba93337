"""The root command: the typer app, its panels, and --verbose."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from . import help as helpmod
from .app import APP


class Root(helpmod.PanelGroup):
    """The typer app as a command: with the managed commands listed (loaded when run) and
    kubeinit's own argument converters; every command ends through the application object."""

    def __init__(self, **kwargs: Any) -> None:
        from . import managed

        super().__init__(**kwargs)
        managed.register(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from . import convert

        convert.install(self)  # here, not in __init__: typer adds the completion options after it
        return super().main(*args, **kwargs)

    def invoke(self, ctx):
        with APP.guard():
            return super().invoke(ctx)


def _verbose(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and more detail.")] = False,
):
    APP.verbose = verbose


def app() -> typer.Typer:
    from . import config, credentials, lifecycle

    a = typer.Typer(
        name="kubeinit",
        cls=Root,
        no_args_is_help=True,
        rich_markup_mode=None,
        help="Turn plain Linux hosts into a Kubernetes cluster (kubeadm-compatible), or create one in a cloud.",
        context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    )
    a.callback()(_verbose)
    lifecycle.register(a)
    credentials.register(a)
    config.register(a)
    return a


@functools.cache
def root() -> Root:
    group = typer.main.get_command(app())
    assert isinstance(group, Root)
    return group
