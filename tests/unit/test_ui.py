"""Terminal output: rich for a terminal, plain text (without importing rich) for a pipe,
and the two print the same characters."""

from __future__ import annotations

import os
import pty
import random
import subprocess
import sys

from rich.markup import escape, render

from kubeinit import ui

SHOW = (
    "from kubeinit import ui; ui.ok('done [bold]x[/bold] \\\\[y]'); ui.warn('careful'); "
    "import sys; sys.stderr.write(' rich=%s' % ('rich' in sys.modules))"
)


def test_plain_rendering_matches_rich_without_styles():
    rng = random.Random(7)
    samples = [
        "a[b]c",
        "[bold]x[/bold]",
        "\\[x]",
        "\\\\[bold]",
        "path\\",
        "a\\\\",
        "[/]",
        "[link=x]y",
        "C:\\dir\\[x]",
        "trail\\\\\\",
        "[ERROR Port-6443]",
        "a [b",
        ":x: :warning:",
    ]
    samples += ["".join(rng.choice("ab[]/\\=: #@") for _ in range(rng.randint(0, 14))) for _ in range(5000)]
    for text in samples:
        assert ui._escape_markup(text) == escape(text), text
        markup = f"[green]✓[/green] [bold]{ui._escape_markup(text)}[/bold] {ui._escape_markup(text)}"
        assert ui.plain(markup) == render(markup, emoji=False).plain, text


def test_piped_output_is_plain_and_does_not_load_rich():
    r = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, env={**os.environ, "NO_COLOR": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "✓ done [bold]x[/bold] \\[y]\n"  # user text is printed as written
    assert r.stderr == "warning: careful\n rich=False"


def test_a_terminal_gets_rich():
    main, side = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    p = subprocess.Popen(
        [sys.executable, "-c", SHOW],
        stdout=side,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(side)
    _, err = p.communicate(timeout=60)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert p.returncode == 0
    assert err.endswith(" rich=True")
    assert b"\x1b[" in out and b"done [bold]x[/bold]" in out, out
