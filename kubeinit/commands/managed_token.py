"""`kubeinit token eks`: kubectl's exec plugin for EKS when the AWS CLI is not installed."""

from __future__ import annotations

import json
import os
import sys

import click

from kubeinit.commands import base
from kubeinit.commands.managed import _cli
from kubeinit.errors import UserError


@click.command("eks", cls=base.Command)
@click.option("--cluster", "-c", "--cluster-name", "cluster", required=True, help="EKS cluster name.")
@click.option("--region", "-r", help="AWS region (default $AWS_REGION or the profile's).")
@click.option("--profile", help="AWS named profile (default $AWS_PROFILE).")
@_cli
def token_eks(cluster: str, region: str | None, profile: str | None) -> None:
    """Print an ExecCredential with an EKS bearer token signed locally (as `aws eks get-token`).

    The token is printed because that is what this command is for: kubectl reads it from stdout.
    It is valid for about 15 minutes and is never logged."""
    from kubeinit.providers import eks_token

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    session = eks_token.session(region, profile)
    region = region or session.region_name
    if not region:
        raise UserError("EKS tokens are signed for a region: pass --region or set AWS_REGION")
    # not ui.print_json: it masks, and the token is registered as a secret
    sys.stdout.write(json.dumps(eks_token.exec_credential(eks_token.token(session, cluster, region))) + "\n")


def register(app: click.Group, group) -> None:
    group(app, "token", "Bootstrap tokens.").add_command(token_eks, "eks")
