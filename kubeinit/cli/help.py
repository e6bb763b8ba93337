"""How kubeinit's help reads: commands in panels, phase trees as kubeadm prints them, and the
lazily built `init phase ...` commands.

The panels are typer's `rich_help_panel`s, printed by the plain formatter as sections:
rendering them with rich (typer.rich_utils imports rich.markdown and markdown_it) would
double the time `kubeinit --help` takes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from typer import _click
from typer.core import TyperCommand, TyperGroup

from kubeinit import workflow

LIFECYCLE = "Cluster lifecycle"
CREDENTIALS = "Certificates and tokens"
MANAGED = "Managed clouds"
OTHER = "Other commands"
PANELS = (LIFECYCLE, CREDENTIALS, MANAGED, OTHER)
FIRST = ("init", "join", "up", "reset")  # listed first, as kubeadm's users look for them


def phase_tree(verb: str, tree: list[workflow.Phase]) -> list[str]:
    """kubeadm's `The "init" command executes the following phases:` block, one line a phase."""
    rows: list[tuple[str, str]] = []

    def walk(phases: list[workflow.Phase], depth: int) -> None:
        for p in phases:
            name = ("  " * depth + "/" + p.name) if depth else p.name
            rows.append((name, p.help + ("" if p.available else " (not available yet)")))
            walk(p.children, depth + 1)

    walk(tree, 0)
    width = max(len(n) for n, _ in rows) + 2
    return [
        f'The "{verb}" command executes the following phases:',
        "```",
        *(f"{n.ljust(width)}{h}" for n, h in rows),
        "```",
    ]


class PanelGroup(TyperGroup):
    """Sub-commands listed in panels (PANELS' order), FIRST before the rest of their panel,
    otherwise in registration order; `phases`, when set, is the phase tree its help prints."""

    phases: tuple[str, Callable[[], list[workflow.Phase]]] | None = None

    def list_commands(self, ctx: _click.Context) -> list[str]:
        names = list(self.commands)
        return sorted(
            names,
            key=lambda n: (_panel_rank(self.commands[n]), FIRST.index(n) if n in FIRST else len(FIRST), names.index(n)),
        )

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        commands = [(n, c) for n in self.list_commands(ctx) if (c := self.get_command(ctx, n)) and not c.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(n) for n, _ in commands)
        panels: dict[str, list[tuple[str, str]]] = {}
        for name, cmd in commands:
            panels.setdefault(_panel(cmd), []).append((name, cmd.get_short_help_str(limit)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)

    def format_help_text(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        _write_tree(self.phases, formatter)


class PhaseTreeCommand(TyperCommand):
    """A command whose help ends its description with the phase tree it runs (`up`)."""

    phases: tuple[str, Callable[[], list[workflow.Phase]]] | None = None

    def format_help_text(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        _write_tree(self.phases, formatter)


def with_phases(cls: type, verb: str, tree: Callable[[], list[workflow.Phase]]) -> type:
    return type(cls.__name__, (cls,), {"phases": (verb, tree)})


def _write_tree(phases, formatter: _click.HelpFormatter) -> None:
    if phases is None:
        return
    verb, tree = phases
    formatter.write_paragraph()
    with formatter.indentation():
        for line in phase_tree(verb, tree()):
            formatter.write(" " * formatter.current_indent + line + "\n")


def _panel(cmd: Any) -> str:
    return getattr(cmd, "rich_help_panel", None) or "Commands"


def _panel_rank(cmd: Any) -> int:
    panel = _panel(cmd)
    return PANELS.index(panel) if panel in PANELS else len(PANELS)


# --------------------------------------------------------------------------
# `init phase <path>`: made when asked for, from the phase tree, with init's own options


RunInit = Callable[..., None]  # (phase path, **init's options)


class PhaseGroup(PanelGroup):
    """`init phase` (node None: the whole tree) or one of its groups; its commands are built on
    demand and share init's option objects (typer keeps no state in them)."""

    node: workflow.Phase | None = None
    run_init: RunInit  # set by the subclass: init's runner

    def _children(self) -> list[workflow.Phase]:
        return self.node.children if self.node is not None else workflow.init_phases()

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return (["all"] if self.node is not None else []) + [p.name for p in self._children()]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name == "all" and self.node is not None:
            return self._command("all", f"Run every phase under {self.node.name}.", self.node.path, ctx)
        p = next((c for c in self._children() if c.name == cmd_name), None)
        if p is None:
            return None
        help = p.help + ("" if p.available else " (not available yet)")
        if not p.children:
            return self._command(p.name, help, p.path, ctx)
        sub = type(self)(name=p.name, help=help, no_args_is_help=True, rich_markup_mode=None)
        sub.node, sub.run_init = p, self.run_init
        from .convert import install

        install(sub)
        return sub

    def _command(self, name: str, help: str, path: str, ctx: _click.Context) -> TyperCommand:
        from .convert import install

        root = ctx.find_root().command
        init = root.get_command(ctx, "init") if isinstance(root, TyperGroup) else None
        if init is None:
            raise LookupError("`init phase` needs the init command beside it")
        command = TyperCommand(
            name,
            help=help,
            callback=functools.partial(self.run_init, path),
            params=list(init.params),
            rich_markup_mode=None,
        )
        install(command)
        return command
