"""The shape of a kubeconfig (client-go's `Config`, as far as kubeinit reads or rewrites it).

Checked before anything is looked up in one, so that a hand-edited file with a list where a
mapping belongs is named by its field (`contexts[1].context: must be a mapping, not a list`)
instead of failing somewhere inside kubeinit.
"""

from __future__ import annotations

from typing import Any

SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_TEXT = {
    "cluster": ("server", "certificate-authority", "certificate-authority-data", "tls-server-name", "proxy-url"),
    "user": ("client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile",
             "username", "password"),
    "context": ("cluster", "user", "namespace"),
}


def shape_error(conf: Any) -> str | None:
    """`<field>: <what is wrong>` for the first field of the wrong type, or None."""
    if not isinstance(conf, dict):
        return f"the file must be a mapping, not {_kind(conf)}"
    for key in ("current-context", "apiVersion", "kind"):
        if conf.get(key) is not None and not isinstance(conf[key], str):
            return f"{key}: must be text, not {_kind(conf[key])}"
    if conf.get("preferences") is not None and not isinstance(conf["preferences"], dict):
        return f"preferences: must be a mapping, not {_kind(conf['preferences'])}"
    for section, item_key in SECTIONS.items():
        items = conf.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            return f"{section}: must be a list, not {_kind(items)}"
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            if not isinstance(item, dict):
                return f"{where}: must be a mapping with name and {item_key}, not {_kind(item)}"
            if not isinstance(item.get("name"), str) or not item["name"]:
                return f"{where}.name: must be a non-empty name, not {_kind(item.get('name'))}"
            body = item.get(item_key)
            if body is None:
                continue
            if not isinstance(body, dict):
                return f"{where}.{item_key}: must be a mapping, not {_kind(body)}"
            for field in _TEXT[item_key]:
                if body.get(field) is not None and not isinstance(body[field], str):
                    return f"{where}.{item_key}.{field}: must be text, not {_kind(body[field])}"
    return None


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "a boolean", type(None): "empty"}.get(type(v), type(v).__name__)
