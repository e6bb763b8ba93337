"""What a dry run returns for a response it does not have: a Placeholder that can be shown, never decided on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class DryRunValueError(Exception):
    """A workflow decided something from a response: that cannot be printed ahead of time."""


class Placeholder:
    """A response not yet known: `<cluster.arn from #7 eks.describe_cluster>`.

    Reading a key or attribute gives another placeholder; iterating gives one
    placeholder standing for each element; writing is shown as a modification.
    Deciding anything from it (bool, ==, len, arithmetic) is a workflow bug.
    """

    __slots__ = ("_src", "_path", "_root", "_mods")
    # declared, so that the checker does not take them for __getattr__'s placeholders
    _src: str
    _path: tuple
    _root: Placeholder | None
    _mods: list[tuple[tuple, Any]]

    def __init__(self, src: str, path: tuple = (), root: Placeholder | None = None):
        object.__setattr__(self, "_src", src)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_mods", [])

    def _child(self, key: Any) -> Placeholder:
        return Placeholder(self._src, self._path + (key,), (self if self._root is None else self._root))

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name)

    __getitem__ = _child

    def __setattr__(self, name: str, value: Any) -> None:
        (self if self._root is None else self._root)._mods.append((self._path + (name,), value))

    __setitem__ = __setattr__

    def __iter__(self) -> Iterator[Placeholder]:
        yield self._child("*")

    def __repr__(self) -> str:
        path = _dotted(self._path)
        text = f"{path} from {self._src}" if path else f"result of {self._src}"
        if self._mods:
            text += " with " + ", ".join(f"{_dotted(p)}={v!r}" for p, v in self._mods)
        return f"<{text}>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def _refuse(self, *a: Any) -> Any:
        raise DryRunValueError(
            f"dry run: the workflow decided something from {self!r}, which is only known once the call has run"
        )

    __bool__ = __len__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __contains__ = __int__ = __float__ = __add__ = __radd__ = __sub__ = _refuse
    __hash__ = object.__hash__


def _dotted(path: tuple) -> str:
    out = ""
    for k in path:
        out += f"[{k}]" if isinstance(k, int) or k == "*" else (f".{k}" if out else str(k))
    return out
