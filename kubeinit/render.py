"""Render kubeinit/templates/* with jinja2. StrictUndefined: a misspelt or missing
variable is an error while planning, never an empty string in a host's config."""

from __future__ import annotations

import functools
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.lru_cache(maxsize=1)
def _env():
    import jinja2  # only the phases that write config files pay for it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml_str"] = yaml_str
    return env


def yaml_str(value: str) -> str:
    """A YAML scalar that reads back as exactly this text: plain where YAML allows, quoted
    where a user's value (a flag, a path) would otherwise change meaning or break the file."""
    import json

    import yaml

    value = str(value)
    if not value.isprintable():  # a newline or tab: one line, escaped (JSON is YAML)
        return json.dumps(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def render(name: str, **values) -> str:
    return _env().get_template(name).render(**values)


def warm(*names: str) -> None:
    """Import jinja2 and compile these templates ahead of use (the executor does it while
    hosts answer their first probes)."""
    for name in names:
        _env().get_template(name)
