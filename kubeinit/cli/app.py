"""The application object: it owns --verbose, how a command ends (one line, an exit code, hints,
a traceback only with --verbose) and the process's exit.

Every command of the typer app runs inside `Application.guard` (the root group's invoke), so
init, join, reset, up, token, certs and config end the same way. Exit codes: 2 for bad input
(UserError), 1 for any other failure, 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from kubeinit import ui
from kubeinit.errors import KubeinitError

INTERRUPTED = "interrupted; kubeinit can be run again to finish the job."


class Application:
    def __init__(self) -> None:
        # a dict, not an attribute: kubeinit.providers.base reads it as kubeinit.cli._state
        self.state = {"verbose": False}

    @property
    def verbose(self) -> bool:
        return self.state["verbose"] or bool(os.environ.get("KUBEINIT_DEBUG"))

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self.state["verbose"] = value

    def fail(self, e: KubeinitError) -> int:
        """One line (and the error's hints, if it has any); the exit code to end with."""
        if self.state["verbose"]:
            import traceback

            traceback.print_exc()
        ui.error(str(e))
        for hint in getattr(e, "hints", []):
            ui.info(hint)
        return e.exit_code

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Around a command: its failure becomes a line and an exit code (typer's Exit)."""
        from typer import Abort, Exit, _click

        try:
            yield
        except KubeinitError as e:
            raise Exit(self.fail(e)) from None
        except KeyboardInterrupt:
            ui.error(INTERRUPTED)
            raise Exit(130) from None
        except (Exit, SystemExit, _click.exceptions.ClickException, Abort):
            raise  # typer's own ends: usage errors (exit 2), --help
        except Exception as e:  # a bug: one line unless --verbose
            if self.verbose:
                raise
            ui.error(
                f"internal error: {e.__class__.__name__}: {e} (run with --verbose for the traceback, and "
                "please report it)"
            )
            raise Exit(1) from None

    def main(self, args: list[str] | None = None) -> None:
        # Nothing kubeinit writes is group- or world-writable, whatever umask it was started with
        # (the modes that matter are also set explicitly where each file is made).
        os.umask(os.umask(0o022) | 0o022)
        from . import commands

        try:
            commands.root().main(args=args, prog_name="kubeinit")
        except SystemExit as e:
            _leave(e.code)
        _leave(0)


APP = Application()


def _leave(code) -> None:
    """Exit without tearing the interpreter down (freeing every module is a noticeable part of a
    re-run of `up`). Everything kubeinit writes is closed by now; exit handlers still run and
    the std streams are flushed. A live non-daemon thread (a cloud SDK's) gets Python's usual
    exit, which waits for it."""
    import atexit
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    code = 0 if code is None else code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`kubeinit ... | head`) or stream
            pass
    os._exit(code)


def main() -> None:
    APP.main()
