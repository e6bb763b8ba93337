"""The managed-cloud commands (create/get/scale/delete ..., kubeconfig, token eks): click commands
in kubeinit.commands.managed*, each run by a typer command that hands it its arguments.

They are listed from the table below and imported only when run: click and the managed
modules would otherwise be most of what `kubeinit --help` loads. click parses their
arguments and prints their help and usage errors; kubeinit's errors end them through the
application object, as every other command. tests/unit/test_cli_app.py checks the table
against what kubeinit.commands.managed registers.
"""

from __future__ import annotations

import functools
from typing import Any

from typer import _click
from typer.core import TyperCommand, TyperGroup

from . import help as helpmod

# path -> its help line; a path of two names is a sub-command of one of the typer app's groups
COMMANDS: dict[tuple[str, ...], str] = {
    ("create",): "Create resources.",
    ("get",): "List resources.",
    ("scale",): "Scale resources.",
    ("delete",): "Delete resources.",
    ("kubeconfig",): "Write (merge) a cluster's admin entry into a kubeconfig (0600) and make it current.",
    ("token", "eks"): "Print an ExecCredential with an EKS bearer token signed locally (as `aws eks get-token`).",
    ("upgrade", "cluster"): "Upgrade a managed cluster: the control plane first, then each node pool, waiting for "
    "each.",
}


@functools.cache
def click_commands():
    """The click root the managed modules register into (click loads here)."""
    from kubeinit.commands import managed
    from kubeinit.commands.base import Group

    root = Group("kubeinit")
    managed.register(root)
    return root


class ClickCommand(TyperCommand):
    """A click command (or group) under kubeinit's typer app: every argument goes to it."""

    def __init__(self, path: tuple[str, ...], help: str, panel: str):
        super().__init__(
            path[-1],
            help=help,
            add_help_option=False,
            context_settings={
                "ignore_unknown_options": True,
                "allow_extra_args": True,
                "allow_interspersed_args": False,
            },
            rich_help_panel=panel,
            rich_markup_mode=None,
        )
        self.path = path

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        ctx.args = list(args)
        return []

    def invoke(self, ctx: _click.Context) -> Any:
        command = click_commands()
        for name in self.path:
            command = command.commands[name]
        return command.main(args=ctx.args, prog_name=ctx.command_path, standalone_mode=True)


def register(group: TyperGroup) -> None:
    """Add the managed commands to the root group (the typer app, made a command)."""
    for path, help in COMMANDS.items():
        panel = helpmod.CREDENTIALS if path == ("kubeconfig",) else helpmod.MANAGED
        parent = group.commands[path[0]] if len(path) == 2 else group
        parent.add_command(ClickCommand(path, help, panel), path[-1])
