"""The confirmation every destructive command asks (delete cluster/nodepool, token delete)."""

from __future__ import annotations

import sys


def ask_first(doing: str, what: str, question: str, nothing: str) -> None:
    """A destructive command asks before it acts; with no terminal to ask on it refuses
    (exit 2) rather than guess. `doing` ("deleting"), `nothing` ("nothing was deleted")."""
    import typer

    from kubeinit.errors import KubeinitError, UserError

    if not sys.stdin or not sys.stdin.isatty():
        raise UserError(f"not {doing} {what} without confirmation: there is no terminal to ask on; pass --yes")
    if not typer.confirm(question):
        raise KubeinitError(nothing)
