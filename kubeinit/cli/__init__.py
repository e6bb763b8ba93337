"""The command line: thin typer commands over the spec, the workflow and the runner.

Keep imports here light: `kubeinit --help` must not load paramiko, the PKI code, YAML, jinja2
or any cloud SDK (nor pydantic, which typer uses only to convert a command's arguments).
Heavy modules are imported inside the commands.

One module per group of commands: lifecycle (init, join, up, reset, upgrade), credentials
(certs, token), config, managed (lists the managed-cloud commands of kubeinit.commands.managed*,
imported only when one runs), with the options they share in options.py and the help's panels
and phase trees in help.py.
"""

from .app import APP, main

_state = APP.state  # --verbose, as kubeinit.providers.base reads it

__all__ = ["APP", "main"]
