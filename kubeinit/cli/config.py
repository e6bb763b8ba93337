"""Cluster files (`config ...`) and `version`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeinit import ui

from . import help as helpmod

config_app = typer.Typer(cls=helpmod.PanelGroup, no_args_is_help=True, rich_markup_mode=None)
print_app = typer.Typer(cls=helpmod.PanelGroup, no_args_is_help=True, rich_markup_mode=None)
config_app.add_typer(print_app, name="print", help="Print default configuration.")


@print_app.command("init-defaults")
def config_print_init_defaults():
    """Print a cluster file with every default filled in."""
    from kubeinit.commands.config import init_defaults

    ui.raw(init_defaults())


@config_app.command("validate")
def config_validate(
    config: Annotated[Path, typer.Option("--config", "-f", help="The cluster file.", show_default=False)],
):
    """Validate a cluster file and say what is wrong, if anything."""
    from kubeinit import spec as specmod

    s = specmod.load_file(config, require=None)  # hosts or managed: whatever up or create cluster accepts
    ui.ok(f"{config}: valid ({s.summary()})")


def version():
    """Print kubeinit's version."""
    from kubeinit import __version__

    ui.out(f"kubeinit {__version__}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config", help="Cluster files.", rich_help_panel=helpmod.OTHER)
    app.command(rich_help_panel=helpmod.OTHER)(version)
