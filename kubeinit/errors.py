"""Errors a user can cause, and how they end: one sentence and an exit code.

The CLI catches KubeinitError, prints `str(err)` as one line and exits with
`err.exit_code`; any other exception is a bug and shows a traceback only with
--verbose.
"""

from typing import Any


class KubeinitError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1
    resumable = True  # False: running again cannot help (the input must change), so no resume hint
    hints: tuple[str, ...] = ()  # lines printed after the message


class UserError(KubeinitError):
    """Bad input: a flag, a file or an argument the user gave (exit code 2)."""

    exit_code = 2


class SpecError(UserError):
    """A cluster file or flag that does not validate; `path` is its YAML path."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")


class NotAvailableYet(KubeinitError):
    """A capability that is planned but not built: said plainly, never faked."""

    def __init__(self, what: str, hint: str = ""):
        super().__init__(
            f"{what} {'are' if what.startswith('phases ') else 'is'} not available yet in kubeinit "
            f"{_version()}" + (f"; {hint}" if hint else "") + "."
        )


class StepFailed(KubeinitError):
    """A step failed on a host; names the host, the phase and what to do next."""

    def __init__(self, host: str, phase: str, step: str, detail: str = "", resume: str = ""):
        self.host, self.phase, self.step, self.detail, self.resume = host, phase, step, detail, resume
        msg = f"{host}: phase {phase} failed" + (f" at '{step}'" if step else "")
        if detail:
            msg += f": {detail}"
        if resume:
            msg += f"; fix the cause and resume with `{resume}`"
        super().__init__(msg + ".")


def _version() -> str:
    from kubeinit import __version__

    return __version__


def kind_of(v: Any) -> str:
    """What a parsed YAML/JSON value is, in the words of an error message ("must be text, not a list")."""
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "empty",
    }.get(type(v), type(v).__name__)
