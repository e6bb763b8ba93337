"""`kubeinit token create|list|delete`: bootstrap tokens in a running cluster, as `kubeadm token`.

The API server is reached with a kubeconfig's server, CA and credentials (kubeinit.kube.client).
`token create` is the only command that prints a token secret: the user asked for the token, to
pass it on. `list` shows each secret half as <redacted>; `--dry-run` masks the one it would send.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from kubeinit import ui

DEFAULT_KUBECONFIG = "/etc/kubernetes/admin.conf"


def create(
    token: str | None,
    ttl: str,
    usages: list[str] | None,
    groups: list[str] | None,
    description: str | None,
    print_join_command: bool,
    kubeconfig: str,
    dry_run: bool,
) -> None:
    from kubeinit.certs import tokens
    from kubeinit.errors import KubeinitError
    from kubeinit.kube import bootstraptoken as bt
    from kubeinit.kube.client import ApiError, Client, namespaced
    from kubeinit.redact import MASK

    # all the user typed is checked (exit 2) before the kubeconfig is read or anything is sent
    duration = bt.parse_duration(ttl)
    token = token if token is not None else tokens.generate_token()
    token_id = tokens.parse_token(token)[0]
    manifest = bt.secret_manifest(
        token,
        ttl=duration,
        usages=tokens.USAGES if usages is None else usages,
        groups=tokens.DEFAULT_GROUPS if groups is None else groups,
        description=description,
    )

    client = Client.from_kubeconfig(kubeconfig)
    # the pins come first: a token must not be created when its join command cannot be printed
    join = _join_command(client, token) if print_join_command else None
    if dry_run:
        shown = {**manifest, "data": {**manifest["data"], "token-secret": MASK}}
        ui.info(
            f"[dry-run] would create Secret {bt.NAMESPACE}/{bt.secret_name(token_id)} on {client.server} "
            "(token secret masked); nothing was sent:"
        )
        ui.raw(json.dumps(shown, indent=2))
        if join:
            ui.info("[dry-run] and print the join command: " + join.replace(token, f"{token_id}.{bt.MASKED}"))
        return
    try:
        client.create(namespaced("secrets", bt.NAMESPACE), manifest)
    except ApiError as e:
        if e.reason == "AlreadyExists":
            raise KubeinitError(
                f"a bootstrap token with ID {token_id} already exists in the cluster at "
                f"{client.server}; create another token, or delete that one first with "
                f"`kubeinit token delete {token_id}`"
            ) from None
        raise
    _hand_over(join or token)


def _join_command(client, token: str) -> str:
    from kubeinit.certs import certutil as cu
    from kubeinit.certs.pin import ca_pin
    from kubeinit.errors import KubeinitError

    if not client.ca_pem:
        raise KubeinitError(
            f"cannot print a join command: kubeconfig {client.kubeconfig} names no certificate "
            "authority to pin; use a kubeconfig that embeds the cluster CA, "
            "e.g. /etc/kubernetes/admin.conf"
        )
    # one pin per CA certificate in the bundle, as kubeadm prints them
    pins = [ca_pin(cu.cert_to_pem(c)) for c in cu.load_certs(client.ca_pem, f"CA of {client.kubeconfig}")]
    return f"kubeinit join {client.netloc} --token {token}" + "".join(
        f" --discovery-token-ca-cert-hash {p}" for p in pins
    )


def _hand_over(line: str) -> None:
    """The one place a token secret is printed: the user asked `token create` for it (kubeadm
    prints it the same way). ui would mask it, as it masks every registered secret."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def list_tokens(kubeconfig: str, output: str) -> None:
    from kubeinit.kube import bootstraptoken as bt
    from kubeinit.kube.client import Client, namespaced

    client = Client.from_kubeconfig(kubeconfig)
    answer = client.list(namespaced("secrets", bt.NAMESPACE), field_selector=bt.FIELD_SELECTOR)
    records = []
    for item in answer.get("items") or []:
        try:
            records.append(bt.TokenRecord.from_secret(item))
        except bt.NotAToken as e:
            ui.warn(f"{e}; skipped")
    records.sort(key=lambda r: r.id)
    for r in records:
        if r.unparseable:
            ui.warn(
                f"bootstrap token {r.id}: expiration {r.expiration_text!r} is not an RFC3339 time, so the "
                "token is invalid"
            )
    now = datetime.now(UTC)
    if output == "json":
        ui.print_json(
            [
                {
                    "token": r.masked,
                    "id": r.id,
                    "ttl": r.ttl(now),
                    "expires": r.expires_text(),
                    "valid": r.valid(now),
                    "usages": list(r.usages),
                    "description": r.description,
                    "groups": list(r.groups),
                }
                for r in records
            ]
        )
        return
    ui.table(
        ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"],
        [
            (
                r.masked,
                r.ttl(now),
                r.expires_text(),
                ",".join(r.usages) or "<none>",
                r.description or "<none>",
                ",".join(r.groups) or "<none>",
            )
            for r in records
        ],
    )


def delete(given: tuple[str, ...], kubeconfig: str, yes: bool, dry_run: bool) -> None:
    from kubeinit.commands.base import ask_first
    from kubeinit.errors import KubeinitError
    from kubeinit.kube import bootstraptoken as bt
    from kubeinit.kube.client import ApiError, Client, namespaced

    ids = list(dict.fromkeys(bt.token_id_of(t) for t in given))  # every argument is checked first
    client = Client.from_kubeconfig(kubeconfig)
    what = f"bootstrap token{'s' if len(ids) > 1 else ''} {', '.join(ids)}"
    if dry_run:
        ui.info(
            f"[dry-run] would delete {what} (Secrets {', '.join(map(bt.secret_name, ids))} in "
            f"{bt.NAMESPACE}) on {client.server}; nothing was sent"
        )
        return
    if not yes:
        ask_first("deleting", what, f"Delete {what} from the cluster at {client.server}?", "nothing was deleted")
    missing = []
    for token_id in ids:
        try:
            client.delete(namespaced("secrets", bt.NAMESPACE, bt.secret_name(token_id)))
        except ApiError as e:
            if e.reason == "NotFound":
                missing.append(token_id)
                continue
            raise
        ui.ok(f'bootstrap token "{token_id}" deleted')
    if missing:
        raise KubeinitError(
            f"no bootstrap token {', '.join(missing)} in the cluster at {client.server}"
            f"{' (the others were deleted)' if len(missing) < len(ids) else ''}; "
            "`kubeinit token list` shows the tokens there"
        )
