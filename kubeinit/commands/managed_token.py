"""`kubeinit token eks`: kubectl's exec plugin for EKS when the AWS CLI is not installed."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from kubeinit.commands.managed import _cli
from kubeinit.errors import UserError


@_cli
def token_eks(
    cluster: Annotated[str, typer.Option("--cluster", "-c", "--cluster-name", help="EKS cluster name.")],
    region: Annotated[
        str | None, typer.Option("--region", "-r", help="AWS region (default $AWS_REGION or the profile's).")
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS named profile (default $AWS_PROFILE).")] = None,
) -> None:
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


def register(groups: dict[str, typer.Typer]) -> None:
    groups["token"].command("eks")(token_eks)
