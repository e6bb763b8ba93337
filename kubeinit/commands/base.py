"""Click building blocks of the managed-cloud commands (kubeinit.commands.managed*), which the
typer CLI runs (kubeinit.cli.managed), and the confirmation every destructive command asks.

Only click is imported here (no rich, no SDK). What they add to plain click:

- help for positional arguments, in an "Arguments" section (click before 8.5 has none);
- sub-commands listed in the order they were added, plain commands before groups;
- Ctrl-C ends a command with exit code 130 and one line saying a re-run finishes the job.
"""

from __future__ import annotations

import sys

import click


class Argument(click.Argument):
    """A positional argument with a help text, shown in the command's "Arguments" section."""

    def __init__(self, param_decls, help: str | None = None, **attrs):
        super().__init__(param_decls, **attrs)
        # Not `self.help`: click >= 8.5 would print it a second time, in its own section.
        self.arg_help = help


class Command(click.Command):
    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                text = getattr(param, "arg_help", None) or ""
                if param.required:
                    text = f"{text}  [required]" if text else "[required]"
                rows.append((param.get_usage_pieces(ctx)[0], text))
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Group(click.Group):
    command_class = Command
    group_class = type  # sub-groups are of this class too

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Registration order, commands before groups (click would sort them by name).
        return sorted(self.commands, key=lambda name: isinstance(self.commands[name], click.Group))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would print "Aborted!"; say that a re-run finishes the job
            from kubeinit import ui

            ui.error("interrupted; kubeinit can be run again to finish the job.")
            raise click.exceptions.Exit(130) from None


def options(*decorators):
    """Several click.option decorators as one; the first listed comes first in --help."""

    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def ask_first(doing: str, what: str, question: str, nothing: str) -> None:
    """A destructive command asks before it acts; with no terminal to ask on it refuses
    (exit 2) rather than guess. `doing` ("deleting"), `nothing` ("nothing was deleted")."""
    from kubeinit.errors import KubeinitError, UserError

    if not sys.stdin or not sys.stdin.isatty():
        raise UserError(f"not {doing} {what} without confirmation: there is no terminal to ask on; pass --yes")
    if not click.confirm(question):
        raise KubeinitError(nothing)
