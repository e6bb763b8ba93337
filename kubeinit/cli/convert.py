"""Argument conversion without pydantic.

typer 0.29 converts every argument through a pydantic TypeAdapter, so any command run (and
`--help`, for the completion options' None) would import pydantic: longer than all of
kubeinit's own start-up. kubeinit's options are only str, bool, int ranges, paths, choices,
lists of those and values with a parser of their own; `install` gives each such parameter a
converter of its own, and leaves any other to typer. It uses typer's RuntimeParam hook (pinned:
typer>=0.29,<0.30).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer import _click
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


@dataclass(frozen=True)
class Native(RuntimeParam):
    convert: Callable[[Any], Any] = str
    many: bool = False

    def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        try:
            if self.many:
                return [self.convert(v) for v in value]
            return self.convert(value)
        except ValueError as e:
            raise BadParameter(str(e), ctx=ctx, param=param) from None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{value!r} is not a valid boolean.")


def _number(kind: type, low, high) -> Callable[[Any], Any]:
    def convert(value: Any):
        try:
            n = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a valid {kind.__name__}.") from None
        if (low is not None and n < low) or (high is not None and n > high):
            bounds = " and ".join(b for b in (low is not None and f"x>={low}", high is not None and f"x<={high}") if b)
            raise ValueError(f"{n} is not in the range {bounds}.")
        return n

    return convert


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, choices))}.")
        return value

    return convert


def _leaf(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    if annotation is str:
        return str
    if annotation is bool:
        return parse_bool
    if annotation in (int, float) and not info.clamp:
        return _number(annotation, info.min, info.max)
    if annotation is Path and not (info.exists or info.resolve_path or info.allow_dash or info.path_type):
        return Path
    if typing.get_origin(annotation) is typing.Literal and all(isinstance(a, str) for a in typing.get_args(annotation)):
        return _choice(typing.get_args(annotation))
    return None


def native(param: Any) -> Native | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.file_annotation is not None:
        return None
    annotation, info = desc.annotation, desc.parameter_info
    many = typing.get_origin(annotation) is list
    convert = info.parser or _leaf(typing.get_args(annotation)[0] if many else annotation, info)
    if convert is None:
        return None
    return Native(parameter_info=info, annotation=annotation, convert=convert, many=many)


HELP = ["-h", "--help"]


def install(command: Any) -> None:
    """Give every parameter of `command` and its sub-commands (those already made) a converter,
    the help option too (made on first use, so made here)."""
    params = list(getattr(command, "params", []))
    if isinstance(command, _click.Command) and command.add_help_option:
        params.append(command.get_help_option(_click.Context(command, help_option_names=HELP)))
    for param in params:
        if getattr(param, "_runtime_param", "absent") is None and (conv := native(param)) is not None:
            param._runtime_param = conv
    for sub in getattr(command, "commands", {}).values():
        install(sub)
