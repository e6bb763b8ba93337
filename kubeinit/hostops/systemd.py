"""Shell helpers for the services kubeinit runs under systemd (etcd, the kubelet)."""

from __future__ import annotations


def why(unit: str, errors: str) -> str:
    """A shell function `why` printing, on stderr, why `unit` is not up: the end of its own
    output in its latest start (not systemd's lines about it), then the lines matching the
    extended regex `errors` again, last: a failed step shows its last lines, and a program
    may print its usage or more after the line that says what is wrong. The error lines are
    looked for further back than the tail: a Go program's fatal line (the kubelet's `F…`) is
    followed by its usage or every goroutine's stack, hundreds of lines."""
    return (
        f"why() {{ id=$(systemctl show -p InvocationID --value {unit} 2>/dev/null); "
        'j=$(journalctl --no-pager -o cat -n 1000 "_SYSTEMD_INVOCATION_ID=$id" 2>/dev/null); '
        f'[ -n "$id" ] && [ -n "$j" ] || j=$(journalctl -u {unit} --no-pager -o cat -n 12 2>/dev/null); '
        "printf '%s\\n' \"$j\" | tail -n 8 >&2; "
        f"printf '%s\\n' \"$j\" | grep -E '{errors}' | tail -n 2 >&2; }}; "
    )
