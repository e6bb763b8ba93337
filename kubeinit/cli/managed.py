"""The managed-cloud commands (create/get/scale/delete ..., kubeconfig, token eks, upgrade cluster):
typer commands in kubeinit.commands.managed*, listed from the table below and imported only when one
of them runs or shows its help.

Importing them would be most of what `kubeinit --help` loads, so the root group holds a `Lazy`
placeholder for each (its name, help line and panel); the placeholder's context is the real
command's, made when the command is run, completed or asked for its help. They end through the
application object, as every other command. tests/unit/test_cli_app.py checks the table against
what kubeinit.commands.managed defines.
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
def managed_commands() -> TyperGroup:
    """The managed commands as one group, by the table's paths (the managed modules load here)."""
    import typer

    from kubeinit.commands import managed

    from .convert import install

    group = typer.main.get_command(managed.app(COMMANDS))
    assert isinstance(group, TyperGroup)
    install(group)
    return group


def load(path: tuple[str, ...]) -> _click.Command:
    command: _click.Command = managed_commands()
    for name in path:
        assert isinstance(command, TyperGroup), path
        command = command.commands[name]
    return command


class Lazy(TyperCommand):
    """A managed command as its group lists it; run, it is the command at `path`."""

    def __init__(self, path: tuple[str, ...], help: str, panel: str):
        super().__init__(path[-1], help=help, add_help_option=False, rich_help_panel=panel, rich_markup_mode=None)
        self.path = path

    def make_context(
        self, info_name: str | None, args: list[str], parent: _click.Context | None = None, **extra: Any
    ) -> _click.Context:
        return load(self.path).make_context(info_name, args, parent=parent, **extra)


def register(group: TyperGroup) -> None:
    """Add the managed commands to the root group (the typer app, made a command)."""
    for path, help in COMMANDS.items():
        panel = helpmod.CREDENTIALS if path == ("kubeconfig",) else helpmod.MANAGED
        parent = group.commands[path[0]] if len(path) == 2 else group
        assert isinstance(parent, TyperGroup), path
        parent.add_command(Lazy(path, help, panel), path[-1])
