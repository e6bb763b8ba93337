"""An EKS bearer token minted locally, as `aws eks get-token` does (no AWS CLI needed).

The token is a presigned STS GetCallerIdentity URL (GET, valid 60 s) whose signature also
covers the header `x-k8s-aws-id: <cluster>`, base64url-encoded without padding and prefixed
`k8s-aws-v1.`; EKS's authenticator replays it to STS to learn who is calling. Signing is
local: no request is sent. The token is a credential: it is registered for masking and
only ever written to stdout by `kubeinit token eks` (kubectl's exec plugin protocol).
"""

from __future__ import annotations

import base64
import datetime
import logging
from typing import Any

from kubeinit import redact

PREFIX = "k8s-aws-v1."
HEADER = "x-k8s-aws-id"
URL_EXPIRES = 60  # seconds: what aws-cli and aws-iam-authenticator sign for
TOKEN_LIFETIME = datetime.timedelta(minutes=14)  # kubectl asks again before the 15 min EKS accepts


def presigned_url(session: Any, cluster: str, region: str) -> str:
    """The presigned GetCallerIdentity URL, signed with the session's credentials (botocore)."""
    from botocore.config import Config

    # regional STS endpoint, as aws-cli (AWS_STS_REGIONAL_ENDPOINTS=regional) and eksctl write it
    sts = session.client("sts", region_name=region, config=Config(signature_version="v4"))

    def keep_cluster(params, context, **_):
        if HEADER in params:
            context[HEADER] = params.pop(HEADER)

    def add_header(request, **_):
        if HEADER in request.context:
            request.headers[HEADER] = request.context[HEADER]

    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    signer_log = logging.getLogger("botocore.auth")  # its debug lines hold the signature: the token's secret part
    level = signer_log.level
    signer_log.setLevel(max(level, logging.INFO))
    try:
        return sts.generate_presigned_url(
            "get_caller_identity", Params={HEADER: cluster}, ExpiresIn=URL_EXPIRES, HttpMethod="GET"
        )
    finally:
        signer_log.setLevel(level)


def token(session: Any, cluster: str, region: str) -> str:
    url = presigned_url(session, cluster, region)
    tok = PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    redact.register(tok)
    return tok


def exec_credential(tok: str, now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.UTC)
    expires = (now + TOKEN_LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {"expirationTimestamp": expires, "token": tok},
    }


def session(region: str | None, profile: str | None) -> Any:
    """A boto3 session from the usual chain (or the named profile); its secrets are registered for masking."""
    from kubeinit.errors import UserError
    from kubeinit.providers.base import require
    from kubeinit.providers.eks import EKS

    boto3 = require("boto3", EKS())
    from botocore import exceptions as bex

    try:
        s = boto3.session.Session(region_name=region, profile_name=profile)
        creds = s.get_credentials()
    except bex.ProfileNotFound:
        raise UserError(f"the AWS profile {profile!r} is not in ~/.aws/config or ~/.aws/credentials") from None
    if creds is None:
        raise UserError(
            "no AWS credentials found (environment, ~/.aws, SSO or instance role): kubeinit cannot sign an EKS token"
        )
    frozen = creds.get_frozen_credentials()
    for secret in (frozen.secret_key, frozen.token):
        if secret:
            redact.register(secret)
    return s
