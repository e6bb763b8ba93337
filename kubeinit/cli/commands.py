"""The root command: the typer app, its panels, and --verbose."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from . import help as helpmod
from .app import APP


class Root(helpmod.PanelGroup):
    def invoke(self, ctx):
        with APP.guard():  # every command ends through the application object
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
def root():
    from . import convert, managed

    group = typer.main.get_command(app())
    convert.install(group)
    managed.register(group)
    return group
