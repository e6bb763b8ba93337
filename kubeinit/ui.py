"""All terminal output goes through here; the only module that imports rich.

Everything printed is passed through redact.mask() first, so a secret that
slipped into a message is still shown as <secret>.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kubeinit.redact import mask

_console = None
_err_console = None


def console():
    global _console
    if _console is None:
        _console = _make(sys.stdout, stderr=False)
    return _console


def err_console():
    global _err_console
    if _err_console is None:
        _err_console = _make(sys.stderr, stderr=True)
    return _err_console


def _make(stream, stderr: bool):
    """rich for a terminal; for a pipe, a file or CI, plain text without importing rich
    (~35 ms, a tenth of a re-run of `up`): rich prints no styles there anyway."""
    import os

    if not _is_terminal(stream) and not os.environ.get("FORCE_COLOR"):
        return _Plain(stderr)
    from rich.console import Console

    # emoji=False: a host name or path like ":x:" is printed as written.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False, width=_width(stream))


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Plain:
    """The part of rich's Console that kubeinit uses, for output that is not a terminal:
    markup tags are dropped and escaped brackets restored, exactly as rich renders them."""

    is_terminal = False

    def __init__(self, stderr: bool):
        self._stderr = stderr

    def print(self, markup: str = "", **_ignored) -> None:
        stream = sys.stderr if self._stderr else sys.stdout  # looked up each time, as rich does
        stream.write(plain(markup) + "\n")
        stream.flush()


_TAGS = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]")  # rich.markup's tag syntax


def plain(markup: str) -> str:
    """What rich prints for `markup` without styles (rich.markup.render's rules)."""
    out, pos = [], 0
    for m in _TAGS.finditer(markup):
        out.append(markup[pos : m.start()].replace("\\[", "["))
        literal, escaped = divmod(len(m.group(1)), 2)
        out.append("\\" * literal)
        if escaped:
            out.append(m.group(0)[len(m.group(1)) :])
        pos = m.end()
    out.append(markup[pos:].replace("\\[", "["))
    return "".join(out)


def _width(stream) -> int | None:
    """Tables piped to a file or read by a program must not wrap at 80 columns."""
    import os

    if stream.isatty() or os.environ.get("COLUMNS"):
        return None
    return 240


def _escape_markup(text: str, _sub=re.compile(r"(\\*)(\[[a-z#/@][^[]*?])").sub) -> str:
    """rich.markup.escape, without importing rich."""
    text = _sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def _esc(text: str) -> str:
    return _escape_markup(mask(str(text)))


def out(text: str = "") -> None:
    """Plain output on stdout (no markup interpretation)."""
    console().print(_esc(text))


def info(text: str) -> None:
    console().print(_esc(text))


def ok(text: str) -> None:
    console().print(f"[green]✓[/green] {_esc(text)}")


def warn(text: str) -> None:
    err_console().print(f"[yellow]warning:[/yellow] {_esc(text)}")


def error(text: str) -> None:
    err_console().print(f"[red]error:[/red] {_esc(text)}")


def heading(text: str) -> None:
    console().print(f"[bold]{_esc(text)}[/bold]")


def print_json(data: Any) -> None:
    sys.stdout.write(mask(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")


def raw(text: str) -> None:
    """Write text as-is (masked) to stdout: for YAML/JSON a user may pipe."""
    sys.stdout.write(mask(text))
    if not text.endswith("\n"):
        sys.stdout.write("\n")


def table(columns: list[str], rows: Iterable[Iterable[Any]], title: str | None = None) -> None:
    """A plain aligned table (kubeadm's look). Not rich.table: importing it costs ~45 ms, a
    tenth of a re-run of `up` on a converged cluster, for one summary."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "   ".join(v.ljust(w) for v, w in zip(values, widths, strict=False)).rstrip()

    con = console()
    if title:
        con.print(_esc(title), soft_wrap=True)
    con.print(f"[bold]{_esc(line(columns))}[/bold]", soft_wrap=True)
    con.print("─" * len(line(columns)), soft_wrap=True)
    for r in cells:
        con.print(_esc(line(r)), soft_wrap=True, highlight=False)


@contextlib.contextmanager
def status(text: str) -> Iterator[Any]:
    """A spinner with elapsed time while something slow runs (a cloud wait)."""
    start = time.monotonic()
    con = err_console()
    if not con.is_terminal:
        con.print(_esc(text) + " …")
        yield None
        con.print(f"{_esc(text)}: done in {time.monotonic() - start:.0f}s")
        return
    with con.status(_esc(text)) as st:

        class _Updater:
            def update(self, new: str) -> None:
                st.update(f"{_esc(new)} [dim]({time.monotonic() - start:.0f}s)[/dim]")

        yield _Updater()


def _failure(phase: str, err: Exception) -> str:
    """`<phase> failed at '<step>': <reason>`, without the host (the line names it) and the
    resume hint (the run's error gives it once)."""
    step, detail = getattr(err, "step", None), getattr(err, "detail", None)
    if detail is None:
        return f"{phase} failed: {err}"
    return f"{phase} failed" + (f" at '{step}'" if step else "") + (f": {detail}" if detail else "")


class RunView:
    """What a run shows: the plan (--dry-run), or one live line per host.

    Called from the executor's worker threads, hence the lock. Without a
    terminal (CI, a pipe) it prints one plain line per event instead.
    """

    def __init__(self, hosts: list[str], dry_run: bool = False, title: str = ""):
        import threading

        self.dry_run = dry_run
        self.hosts = hosts
        self._lock = threading.Lock()
        self._rows = {h: ["", "waiting", ""] for h in hosts}  # phase, step, status
        self._live = None
        if title:
            heading(title)
        if not dry_run and console().is_terminal and len(hosts) > 1:
            from rich.live import Live

            self._live = Live(self._table(), console=console(), refresh_per_second=8, transient=False)
            self._live.start()

    def _table(self):
        from rich import box
        from rich.table import Table

        t = Table("host", "phase", "step", "", box=box.SIMPLE_HEAD, show_edge=False)
        for h, (phase, step, status) in self._rows.items():
            t.add_row(_esc(h), _esc(phase), _esc(step[:90]), status)
        return t

    def _set(self, host: str, phase: str, step: str, status: str = "") -> None:
        self._rows[host] = [phase, step, status]
        if self._live:
            self._live.update(self._table())

    def phase(self, path: str, hosts: list[str]) -> None:
        with self._lock:
            if self.dry_run:
                console().print(f"\n[bold]\\[{_esc(path)}][/bold]")
            elif not self._live:
                console().print(f"[bold]\\[{_esc(path)}][/bold] on {_esc(', '.join(hosts)) or 'no host'}")

    def unavailable(self, path: str, hosts: list[str]) -> None:
        with self._lock:
            console().print(
                f"\n[bold]\\[{_esc(path)}][/bold] [yellow](not available yet)[/yellow] "
                f"on {_esc(', '.join(hosts)) or 'no host'}"
            )

    def planned(self, host: str, phase: str, steps: list) -> None:
        with self._lock:
            console().print(f"  {_esc(host)}:")
            for s in steps or []:
                console().print(f"    {_esc(s.describe())}")
            if not steps:
                console().print("    (nothing)")

    def step(self, host: str, phase: str, step) -> None:
        with self._lock:
            if self._live:
                self._set(host, phase, step.describe(), "…")
            elif type(step).__name__ != "Skip":
                console().print(f"  {_esc(host)}: {_esc(step.describe())}")

    def host_done(self, host: str, phase: str, changed: int, skipped: int) -> None:
        with self._lock:
            text = f"{changed} changed, {skipped} unchanged"
            if self._live:
                self._set(host, phase, text, "[green]✓[/green]")
            else:
                console().print(f"  {_esc(host)}: [green]✓[/green] {phase}: {text}")

    def failed(self, host: str, phase: str, err: Exception) -> None:
        """One line per failed host with its own reason: when several fail, the run's error
        (stderr) names only the first."""
        why = _failure(phase, err)
        with self._lock:
            if self._live:
                self._set(host, phase, why, "[red]✗[/red]")
            else:
                console().print(f"  {_esc(host)}: [red]✗[/red] {_esc(why)}")

    def close(self) -> None:
        if self._live:
            self._live.stop()
            self._live = None
