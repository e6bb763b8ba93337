"""TOML written from data, and a deep merge: what a user's containerd config patch needs.

Python reads TOML (tomllib) but does not write it. containerd's config is tables of scalars,
arrays and (rarely) arrays of tables, so a small writer covers it; `dumps` checks its own
output by reading it back, so a value it cannot express is an error, never a wrong file.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import tomllib
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlError(ValueError):
    """Data that TOML cannot hold as written here (e.g. None)."""


def merge(base: dict, patch: dict) -> dict:
    """`patch` over `base`: tables are merged key by key, anything else in `patch` replaces
    what `base` has (an array is replaced whole, as containerd reads it whole). New dict."""
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def key(k: str) -> str:
    return k if _BARE.match(k) else string(k)


def string(s: str) -> str:
    # A JSON string with only ASCII is a TOML basic string, except DEL, which TOML wants escaped.
    return json.dumps(s).replace("\x7f", "\\u007f")


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TomlError(f"{v!r} ({type(v).__name__}) has no TOML form")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(data: dict, path: list[str], out: list[str], header: str | None, element: bool = False) -> None:
    plain = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_array(v)}
    # A table holding only sub-tables needs no header of its own; an array element always does.
    if header is not None and (plain or not data or element):
        out.append(f"\n{header}")
    out += [f"{key(k)} = {value(v)}" for k, v in plain.items()]
    for k, v in data.items():
        sub = [*path, key(k)]
        if isinstance(v, dict):
            _table(v, sub, out, f"[{'.'.join(sub)}]")
        elif _is_table_array(v):
            for item in v:
                _table(item, sub, out, f"[[{'.'.join(sub)}]]", element=True)


def dumps(data: dict) -> str:
    """TOML text that tomllib reads back as exactly `data`."""
    out: list[str] = []
    _table(data, [], out, None)
    text = "\n".join(out).lstrip("\n") + "\n"
    if tomllib.loads(text) != data:
        raise TomlError("the data does not survive a TOML round trip")
    return text
