"""Certificates and tokens: `certs ...` on this host's files, `token ...` in a running cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from kubeinit.commands.token import DEFAULT_KUBECONFIG
from kubeinit.errors import UserError

from . import help as helpmod
from .options import Yes, comma_list

token_app = typer.Typer(cls=helpmod.PanelGroup, no_args_is_help=True, rich_markup_mode=None)
certs_app = typer.Typer(cls=helpmod.PanelGroup, no_args_is_help=True, rich_markup_mode=None)

Kubeconfig = Annotated[
    str,
    typer.Option("--kubeconfig", help="The kubeconfig to reach the API server with (its server, CA and credentials)."),
]


@token_app.command("generate")
def token_generate():
    """Print a new random bootstrap token (it is not created in any cluster)."""
    from kubeinit.certs.tokens import generate_token

    # The one place a token is printed on purpose: the user asked for it, to pass on.
    sys.stdout.write(generate_token() + "\n")


@token_app.command("create")
def token_create(
    token: Annotated[
        str | None,
        typer.Argument(
            help="The token to create, <6 of a-z0-9>.<16 of a-z0-9> (default: a new random one).", show_default=False
        ),
    ] = None,
    ttl: Annotated[
        str, typer.Option(help="How long the token is valid, e.g. 2h30m; 0 = it never expires.")
    ] = "24h0m0s",
    usages: Annotated[
        list[str] | None,
        typer.Option(
            callback=comma_list,
            show_default=False,
            help="What the token may be used for: signing, authentication (comma-separated or repeated). "
            "[default: signing,authentication]",
        ),
    ] = None,
    groups: Annotated[
        list[str] | None,
        typer.Option(
            callback=comma_list,
            show_default=False,
            help="Extra groups the token authenticates as, each system:bootstrappers:... (comma-separated or "
            "repeated). [default: system:bootstrappers:kubeadm:default-node-token]",
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="A note kept with the token, shown by `token list`.", show_default=False)
    ] = None,
    print_join_command: Annotated[
        bool,
        typer.Option(
            "--print-join-command",
            help="Print the whole `kubeinit join` command (with the CA pin) instead of the token alone.",
        ),
    ] = False,
    kubeconfig: Kubeconfig = DEFAULT_KUBECONFIG,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the Secret that would be created (its secret masked); send nothing.")
    ] = False,
):
    """Create a bootstrap token in the cluster and print it (the only command that prints a token secret)."""
    from kubeinit.commands import token as cmd

    cmd.create(token, ttl, usages, groups, description, print_join_command, kubeconfig, dry_run)


@token_app.command("list")
def token_list(
    kubeconfig: Kubeconfig = DEFAULT_KUBECONFIG,
    output: Annotated[Literal["text", "json"], typer.Option("--output", "-o", help="Output format.")] = "text",
):
    """List the cluster's bootstrap tokens. The secret half of each token is shown as abcdef.<redacted>:
    list output ends up in logs and tickets, and the ID is all `token delete` needs."""
    from kubeinit.commands import token as cmd

    cmd.list_tokens(kubeconfig, output)


@token_app.command("delete")
def token_delete(
    token: Annotated[list[str], typer.Argument(help="Token IDs (abcdef) or whole tokens.", show_default=False)],
    kubeconfig: Kubeconfig = DEFAULT_KUBECONFIG,
    yes: Yes = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; send nothing.")] = False,
):
    """Delete bootstrap tokens from the cluster (asks first unless --yes)."""
    from kubeinit.commands import token as cmd

    cmd.delete(tuple(token), kubeconfig, yes, dry_run)


CertDir = Annotated[Path, typer.Option("--cert-dir", help="The directory of the PKI.")]
KubeconfigDir = Annotated[Path, typer.Option("--kubeconfig-dir", help="The directory of the kubeconfig files.")]


@certs_app.command("check-expiration")
def certs_check_expiration(
    cert_dir: CertDir = Path("/etc/kubernetes/pki"),
    kubeconfig_dir: KubeconfigDir = Path("/etc/kubernetes"),
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
):
    """Show when each certificate and kubeconfig expires (kubeadm's table)."""
    from kubeinit.commands.certs import check_expiration

    if output not in ("table", "json"):
        raise UserError(f"--output {output!r} is not one of table, json")
    check_expiration(cert_dir, kubeconfig_dir, output)


@certs_app.command("renew")
def certs_renew(
    name: Annotated[
        str, typer.Argument(help="A certificate name (e.g. apiserver, admin.conf) or 'all'.", show_default=False)
    ],
    cert_dir: CertDir = Path("/etc/kubernetes/pki"),
    kubeconfig_dir: KubeconfigDir = Path("/etc/kubernetes"),
):
    """Renew a certificate with the same key and attributes (CAs are not renewable)."""
    from kubeinit.commands.certs import renew

    renew(cert_dir, kubeconfig_dir, name)


@certs_app.command("certificate-key")
def certs_certificate_key():
    """Print a new key for encrypting the shared certificates (upload-certs)."""
    from kubeinit.certs.pin import certificate_key

    sys.stdout.write(certificate_key() + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(certs_app, name="certs", help="Inspect and renew certificates.", rich_help_panel=helpmod.CREDENTIALS)
    app.add_typer(token_app, name="token", help="Bootstrap tokens.", rich_help_panel=helpmod.CREDENTIALS)
