"""Free a cluster's cloud load balancers before deleting it, as eksctl does.

Services of type LoadBalancer make cloud load balancers (and, on EKS, security groups and
ENIs in the VPC) that the cloud does not delete with the cluster: left behind they cost money
and make the VPC's deletion fail. So `delete cluster` deletes those Services through the
cluster's own API first and waits (bounded) until they are gone: the service controller
keeps each one (its finalizer) until the cloud load balancer is deleted. `--keep-load-balancers`
skips this. If the API cannot be reached, a warning says what may remain and the delete goes on.

API access uses kubeinit's stdlib client with a bearer token: EKS's minted by kubeinit
(eks_token), GKE's from Application Default Credentials, AKS's from the user credentials
the cloud returns. Tokens are registered for masking and never printed.
"""

from __future__ import annotations

import base64
import ssl
import time

from kubeinit import redact, ui
from kubeinit.errors import KubeinitError
from kubeinit.kube.client import Client, namespaced
from kubeinit.providers.base import CloudError

WAIT_LIMIT = 10 * 60.0  # seconds: at most this long for the cloud's load balancers to go


def free(provider, ctx) -> None:
    from kubeinit.managed.run import LiveCtx

    s = ctx.spec
    if ctx.record.persist and ctx.record.get("cluster", s.name) is None:
        return  # the record holds no cluster: nothing could have made a load balancer
    if not isinstance(ctx, LiveCtx):
        ctx.note(
            "through the cluster's API: delete every Service of type LoadBalancer, then wait until they are "
            "gone (the cloud's load balancers with them); --keep-load-balancers skips this"
        )
        return
    client = None
    try:
        with ctx.step(f"reading the API access of {provider.title} cluster {s.name}", missing_ok=True):
            client = _client(provider, ctx)
        if client is not None:
            _delete_services(ctx, client, min(ctx.timeout, WAIT_LIMIT))
    except CloudError:
        raise  # the cloud itself refused: the deletion would too
    except (KubeinitError, ValueError, ssl.SSLError) as e:  # no API, or a CA that is no certificate
        why = str(e) if isinstance(e, KubeinitError) else "the cluster's CA certificate could not be read"
        ui.warn(
            f"could not delete the cluster's LoadBalancer Services ({why}); cloud load "
            "balancers they made may remain (and, on EKS, keep the VPC from being deleted): delete them in the "
            "cloud's console if so"
        )
    finally:
        if client is not None:
            client.close()


def _delete_services(ctx, client: Client, limit: float) -> None:
    def balancers():
        items = client.list("/api/v1/services").get("items") or []
        return [
            (i["metadata"]["namespace"], i["metadata"]["name"])
            for i in items
            if (i.get("spec") or {}).get("type") == "LoadBalancer"
        ]

    found = balancers()
    for ns, name in found:
        try:
            client.delete(namespaced("services", ns, name))
        except KubeinitError as e:
            if getattr(e, "reason", "") != "NotFound":
                raise
        ui.ok(f"deleted Service {ns}/{name} (type LoadBalancer)")
    if not found:
        return
    start = time.monotonic()
    with ui.status("waiting until the cloud's load balancers are deleted") as st:
        while left := [f"{ns}/{name}" for ns, name in balancers() if (ns, name) in found]:
            if time.monotonic() - start > limit:
                raise KubeinitError(f"Services {', '.join(left)} were still there after {limit / 60:.0f} min")
            if st is not None:
                st.update(f"waiting until the cloud's load balancers are deleted: {len(left)} left")
            time.sleep(ctx.interval)


def _client(provider, ctx) -> Client:
    s = ctx.spec
    if s.provider == "eks":
        from kubeinit.providers import eks_token

        c = ctx.api("eks").describe_cluster(name=s.name)["cluster"]
        server, ca = c["endpoint"], c["certificateAuthority"]["data"]
        try:
            token = eks_token.token(provider._session, s.name, s.region)
        except Exception as e:  # botocore's: no credentials to sign with
            if not type(e).__module__.startswith("botocore"):
                raise
            raise KubeinitError(f"no AWS credentials to sign an EKS token with ({type(e).__name__})") from None
    elif s.provider == "gke":
        c = ctx.api("container").get_cluster(request={"name": provider._cluster_path(s)})
        server, ca, token = f"https://{c.endpoint}", c.master_auth.cluster_ca_certificate, _gcp_token()
    else:
        from kubeinit import kubeconfig

        raw = (
            ctx.api("containerservice")
            .managed_clusters.list_cluster_user_credentials(s.resource_group, s.name)
            .kubeconfigs[0]
            .value
        )
        what = "AKS user credentials"
        conf = kubeconfig.load(raw, what)
        kubeconfig.register_secrets(conf)
        chosen = kubeconfig.current(conf, what)
        if not chosen.user.get("token"):  # a client certificate only: the kubeconfig as the cloud gave it
            return Client.from_kubeconfig_data(raw if isinstance(raw, bytes) else raw.encode(), what)
        server, ca, token = (
            chosen.cluster.get("server"),
            chosen.cluster.get("certificate-authority-data"),
            chosen.user["token"],
        )
    redact.register(token)
    tls = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
    return Client(server, tls, token=token, kubeconfig=f"{provider.title} cluster {s.name}")


def _gcp_token() -> str:
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests

    try:
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        creds.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as e:
        raise KubeinitError(f"no Google credentials for the cluster's API ({type(e).__name__})") from None
    return creds.token
