"""The typer CLI's shape: help panels and their order, phase trees in --help, shell completion,
and one application object that ends every command (errors, exit codes, Ctrl-C)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeinit import workflow

ROOT = Path(__file__).resolve().parents[2]


def _kubeinit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubeinit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        timeout=60,
    )


def _sections(text: str) -> dict[str, list[str]]:
    """`Heading:` -> the command names listed under it."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = out.setdefault(line[:-1], [])
        elif current is not None and line.startswith("  ") and not line.startswith("   "):
            current.append(line.split()[0])
    return out


def test_help_groups_the_commands_in_panels_lifecycle_first():
    r = _kubeinit("--help")
    assert r.returncode == 0, r.stderr
    sections = _sections(r.stdout)
    panels = [s for s in sections if s not in ("Options", "Usage: kubeinit [OPTIONS] COMMAND [ARGS]...")]
    assert panels[:3] == ["Cluster lifecycle", "Certificates and tokens", "Managed clouds"]
    assert sections["Cluster lifecycle"][:4] == ["init", "join", "up", "reset"]
    assert {"certs", "token"} <= set(sections["Certificates and tokens"])
    assert sections["Managed clouds"] == ["create", "get", "scale", "delete"]
    # the panels come before any other list of commands
    assert r.stdout.index("Cluster lifecycle:") < r.stdout.index("Managed clouds:") < r.stdout.index("version")


def test_init_help_prints_inits_phase_tree_as_kubeadm_does():
    r = _kubeinit("init", "--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert 'The "init" command executes the following phases:' in out
    lines = out.splitlines()

    def walk(phases, depth):
        for p in phases:
            name = ("  " * depth + "/" + p.name) if depth else p.name
            row = next(
                (
                    ln
                    for ln in lines
                    if ln.strip().startswith(name.strip() + " ") and ln.lstrip(" ") != ln and ln.startswith("  " + name)
                ),
                None,
            )
            assert row is not None, name
            assert row.rstrip().endswith("(not available yet)") == (not p.available), row
            walk(p.children, depth + 1)

    walk(workflow.init_phases(), 0)
    # in the tree's order
    positions = [out.index(f"  {p.name} ") for p in workflow.init_phases()]
    assert positions == sorted(positions)


def test_up_help_prints_ups_phases():
    r = _kubeinit("up", "--help")
    assert r.returncode == 0, r.stderr
    assert 'The "up" command executes the following phases:' in r.stdout
    for p in workflow.up_phases():
        assert f"\n  {p.name} " in r.stdout, p.name


def test_phase_commands_are_built_from_the_tree_with_inits_options():
    r = _kubeinit("init", "phase", "certs", "--help")
    assert r.returncode == 0, r.stderr
    names = _sections(r.stdout)["Commands"]
    assert names == ["all"] + [p.name for p in workflow.find(workflow.init_phases(), "certs").children]
    leaf = _kubeinit("init", "phase", "certs", "ca", "--help")
    assert "--cert-dir" in leaf.stdout and "--apiserver-cert-extra-sans" in leaf.stdout
    assert _kubeinit("init", "phase", "nope").returncode == 2


def test_completion_script_and_completions():
    # typer asks shellingham which shell started it: here, bash
    shell_line = f"{sys.executable} -m kubeinit --show-completion; exit $?"  # not exec'd: bash stays the parent
    script = subprocess.run(["bash", "-c", shell_line], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert script.returncode == 0, script.stderr
    assert "_KUBEINIT_COMPLETE=complete_bash" in script.stdout and "complete " in script.stdout

    def complete(words: str) -> list[str]:
        r = _kubeinit(
            env={"_KUBEINIT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("kubeinit ini") == ["init"]
    assert complete("kubeinit init phase kubel") == ["kubelet-start", "kubelet-finalize"]
    assert "--known-hosts" in complete("kubeinit up --kn")


def test_help_is_plain_text_without_rich_or_pydantic():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kubeinit", "init", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0
    modules = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert "typer" in modules
    for heavy in ("rich", "markdown_it", "pydantic", "pydantic_core", "yaml", "paramiko", "cryptography"):
        assert heavy not in modules, heavy


# --- one application object ends every command ---------------------------------------------------------


@pytest.fixture
def app(monkeypatch):
    """The CLI in this process; the application object's failures recorded."""
    from kubeinit.cli import APP, commands

    failed = []
    real_fail = APP.fail

    def fail(e):
        failed.append(e)
        return real_fail(e)

    monkeypatch.setattr(APP, "fail", fail)
    monkeypatch.setitem(APP.state, "verbose", False)

    def run(*args: str) -> int:
        return commands.root().main(args=list(args), prog_name="kubeinit", standalone_mode=False)

    run.failed = failed
    return run


def test_init_and_up_fail_through_the_same_object_with_the_same_exit_codes(app, tmp_path, capfd):
    missing = str(tmp_path / "missing.yaml")
    assert app("init", "--dry-run", "--config", missing) == 2
    assert app("up", "-f", missing, "--dry-run") == 2
    assert app("reset", "-f", missing, "--config", missing) == 2
    assert len(app.failed) == 3 and all(e.exit_code == 2 for e in app.failed)
    err = capfd.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("error: ")] and "Traceback" not in err


def test_ctrl_c_in_any_command_is_130_and_one_line(app, monkeypatch, capfd):
    import kubeinit.runner

    def interrupted(run):
        raise KeyboardInterrupt

    monkeypatch.setattr(kubeinit.runner, "run_workflow", interrupted)
    assert app("init", "--dry-run") == 130
    assert app("reset", "--dry-run") == 130
    err = capfd.readouterr().err
    assert err.count("interrupted; kubeinit can be run again to finish the job.") == 2


def test_a_bug_is_one_line_unless_verbose(app, monkeypatch, capfd):
    import kubeinit.runner

    def broken(run):
        raise ValueError("boom")

    monkeypatch.setattr(kubeinit.runner, "run_workflow", broken)
    assert app("init", "--dry-run") == 1
    assert "internal error: ValueError: boom (run with --verbose" in capfd.readouterr().err
    with pytest.raises(ValueError):
        app("--verbose", "init", "--dry-run")


def test_join_flags_are_checked_before_anything_is_asked():
    r = _kubeinit("join", "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--dry-run")
    assert r.returncode == 2 and "--discovery-token-ca-cert-hash" in r.stderr, r.stderr
    assert "abcdef.0123456789abcdef" not in r.stderr, "a token is never echoed"
    plain = _kubeinit("join", "--dry-run")
    assert plain.returncode == 2 and "host:port" in plain.stderr
    cp = _kubeinit("join", "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--control-plane")
    assert cp.returncode == 2 and "--certificate-key" in cp.stderr


def test_the_managed_table_lists_what_the_managed_modules_define():
    """The managed commands are listed without importing them; the list must not drift."""
    from kubeinit.cli import commands, managed

    typer_groups = {n for n, c in commands.root().commands.items() if not isinstance(c, managed.Lazy)}
    loaded = managed.managed_commands()
    defined = set()
    for name, command in loaded.commands.items():
        if name in typer_groups:  # beside the typer app's own commands of that group (token, upgrade)
            defined |= {(name, sub) for sub in command.commands}
        else:
            defined.add((name,))
            assert command.help == managed.COMMANDS[(name,)] or name == "kubeconfig", name
    assert defined == set(managed.COMMANDS)
    for path in managed.COMMANDS:
        parent = commands.root().commands[path[0]] if len(path) == 2 else commands.root()
        assert isinstance(parent.commands[path[-1]], managed.Lazy), path
        assert managed.load(path).name == path[-1]


def test_help_loads_no_managed_command_cloud_sdk_click_or_paramiko():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kubeinit", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0 and "Managed clouds:" in r.stdout
    modules = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "kubeinit.cli.managed" in modules
    for heavy in ("kubeinit.commands.managed", "click", "paramiko", "boto3", "botocore", "google", "azure"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in modules), heavy


def test_a_managed_commands_bad_input_is_one_line_and_exit_2(app, capfd, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path))  # no cluster records
    assert app("delete", "cluster", "--provider", "eks", "--name", "demo") == 2  # no terminal to ask on
    assert "error: not deleting eks cluster demo without confirmation" in capfd.readouterr().err
    assert app("get", "clusters", "--provider", "eks", "-o", "csv") == 2
    assert "--output must be table, yaml or json" in capfd.readouterr().err


def test_a_managed_command_runs_through_the_typer_app():
    r = _kubeinit("get", "clusters", "--provider", "nope")
    assert r.returncode == 2 and "nope" in r.stderr
    h = _kubeinit("create", "cluster", "--help")
    assert h.returncode == 0 and "--provider" in h.stdout and "Usage: kubeinit create cluster" in h.stdout


def test_no_kubeinit_module_imports_click():
    """The CLI is typer (its own click, typer._click): click itself is not a dependency."""
    import ast

    found = []
    for path in sorted((ROOT / "kubeinit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "click" or n.startswith("click.") for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
