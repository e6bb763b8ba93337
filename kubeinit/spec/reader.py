"""Reading raw YAML: the cluster file's documents, and `Reader`, which walks a mapping and
remembers the YAML path so every error names where it is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kubeinit.errors import SpecError, kind_of

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def read_documents(path: str | Path) -> list[Any]:
    """The non-empty YAML documents of a cluster file (any shape: the loader judges them)."""
    import yaml

    from kubeinit import userfile

    p = Path(path)
    try:
        text = userfile.read(p, "cluster file", userfile.CLUSTER_FILE_LIMIT, "pass the right file").decode()
    except FileNotFoundError:
        raise SpecError("", f"no such file {str(p)!r}; pass an existing cluster file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError("", f"cannot read {str(p)!r}: {e.__class__.__name__}") from None
    try:
        # libyaml's parser when PyYAML has it: the same documents, several times faster
        return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise SpecError("", f"is not valid YAML at {where}: {problem}", str(p)) from None


class Reader:
    def __init__(self, data: Any, path: str, source: str | None):
        self.path, self.source = path, source
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, not {kind_of(data)}")
        self.data = data
        self.used: set[str] = set()

    def fail(self, msg: str, key: str | None = None):
        raise SpecError(self.sub(key) if key else self.path, msg, self.source)

    def sub(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool in (type(value),) and bool not in kinds:
            self.fail(f"must be {_names(kinds)}, not a boolean", key)
        if int in kinds and float not in kinds and isinstance(value, float):
            self.fail(f"must be {_names(kinds)}, not {value!r}", key)
        if not isinstance(value, kinds):
            if str in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)  # `version: 1.31` is a YAML float; take it as text
            self.fail(f"must be {_names(kinds)}, not {kind_of(value)}", key)
        return value

    def child(self, key: str) -> Reader:
        return Reader(self.get(key, dict, {}), self.sub(key), self.source)

    def done(self, allowed_extra: tuple[str, ...] = ()) -> None:
        unknown = [k for k in self.data if k not in self.used and k not in allowed_extra]
        if unknown:
            k = unknown[0]
            known = ", ".join(sorted(self.used))
            self.fail(f"unknown field {k!r} (known fields: {known})", str(k))


def _names(kinds: tuple) -> str:
    names = {
        str: "text",
        int: "an integer",
        dict: "a mapping",
        list: "a list",
        bool: "true or false",
        float: "a number",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def str_list(r: Reader, key: str) -> tuple[str, ...]:
    items = r.get(key, list, [])
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v:
            raise SpecError(f"{r.sub(key)}[{i}]", f"must be non-empty text, not {kind_of(v)}", r.source)
    return tuple(items)


def str_map(r: Reader, key: str) -> dict[str, str]:
    m = r.get(key, dict, {})
    out = {}
    for k, v in m.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, (str, int, float)):
            raise SpecError(f"{r.sub(key)}.{k}", f"must be text, not {kind_of(v)}", r.source)
        out[str(k)] = str(v)
    return out


def hours(r: Reader, key: str, default: int) -> int:
    v = r.get(key, str)
    if v is None:
        return default
    return parse_duration_hours(v, r.sub(key), r.source)


def parse_duration_hours(v: str, path: str, source: str | None = None) -> int:
    m = _DURATION_RE.match(v.strip())
    if not v.strip() or not m or not any(m.groups()):
        raise SpecError(path, f"{v!r} is not a duration like 8760h", source)
    h, mi, s = (int(g or 0) for g in m.groups())
    total = h + mi // 60 + s // 3600
    if total < 1:
        raise SpecError(path, f"{v!r} is shorter than one hour", source)
    return total
