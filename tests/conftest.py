"""Shared test helpers: run the real CLI as a user would (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_kubeinit(
    *args: str, env: dict | None = None, input: str | None = None, timeout: float = 120, cwd: str | Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kubeinit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=cwd or ROOT,
    )


@pytest.fixture
def kubeinit_cli(tmp_path, monkeypatch):
    """Run `python -m kubeinit` with KUBEINIT_HOME in a temp dir."""
    home = tmp_path / "kubeinit-home"
    monkeypatch.setenv("KUBEINIT_HOME", str(home))

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        env = {"KUBEINIT_HOME": str(home), **kw.pop("env", {})}
        return run_kubeinit(*args, env=env, **kw)

    return run
