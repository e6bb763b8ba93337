"""Secrets that must never reach the terminal or a log.

Wrap a secret value in `Secret`: its str/repr is `<secret>`, and its text is
registered so that `mask()` replaces it anywhere it turns up (a command line,
a stderr tail, an SDK error). The UI and the log pass everything through mask().
"""

from __future__ import annotations

import threading

MASK = "<secret>"
_known: set[str] = set()
_lock = threading.Lock()


def register(text: str | bytes) -> None:
    """Remember a secret's text so mask() hides it wherever it appears."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            return
    text = text.strip()
    if len(text) >= 6:  # shorter strings would mask ordinary words
        with _lock:
            _known.add(text)
            # PEM bodies can appear line by line (e.g. in a diff or a stderr tail)
            for line in text.splitlines():
                if len(line) >= 32 and not line.startswith("-----"):
                    _known.add(line)


def mask(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    return text


class Secret:
    """A value that prints as <secret>; `.value` gives the real thing."""

    __slots__ = ("value",)

    def __init__(self, value: str | bytes):
        self.value = value
        register(value)

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def reveal(value: Secret | str | bytes) -> str | bytes:
    return value.value if isinstance(value, Secret) else value
