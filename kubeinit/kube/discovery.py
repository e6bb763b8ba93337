"""Token discovery, as kubeadm join does it (reference §4.5): how a new node learns, and
trusts, the cluster it joins from nothing but an endpoint, a bootstrap token and CA pins.

1. GET kube-public/cluster-info anonymously over TLS it cannot check yet;
2. its `jws-kubeconfig-<token id>` must be the token's signature of the `kubeconfig` value
   (written by kube-controller-manager's bootstrapsigner; absent until it has signed, so ask
   again until `timeout`);
3. the CA in that kubeconfig must match a `--discovery-token-ca-cert-hash` pin;
4. GET it again, now verifying the server against that CA: the bytes must be the same.
The result: the cluster's server and CA, for bootstrap-kubelet.conf (kubeinit.kubeconfig.bootstrap).
No step is skipped unless the user said --discovery-token-unsafe-skip-ca-verification (then step 3 is).
"""

from __future__ import annotations

import base64
import ssl
import time

from kubeinit import kubeconfig
from kubeinit.certs import jws, pin, tokens
from kubeinit.errors import KubeinitError, UserError
from kubeinit.kube.client import ApiError, Client, Unreachable

CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
TIMEOUT = 300  # kubeadm's discovery timeout, 5 minutes
INTERVAL = 5  # kubeadm asks again every 5 s


class DiscoveryFailed(KubeinitError):
    """The cluster could not be found or could not be trusted."""


def discover(
    endpoint: str,
    token: str,
    pins: list[str],
    unsafe_skip_ca_verification: bool = False,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> dict[str, str]:
    """{"server", "certificate-authority-data"} of the cluster at `endpoint` (host:port)."""
    token_id, secret = tokens.parse_token(token)
    if not pins and not unsafe_skip_ca_verification:
        raise UserError(
            "give --discovery-token-ca-cert-hash sha256:<hash> (kubeinit token create "
            "--print-join-command prints it), or --discovery-token-unsafe-skip-ca-verification"
        )
    server = f"https://{endpoint}"
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # step 1, the one unverified TLS in kubeinit: no CA to check with yet, no credentials sent, and
    # the answer is trusted only once the token's signature and the CA pin check out
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    info, signature = _signed(Client(server, insecure, kubeconfig="(discovery)"), token_id, timeout, interval)
    if not jws.verify_detached(signature, info, token_id, secret):
        raise DiscoveryFailed(
            f"cluster-info at {server} is not signed with token {token_id}'s secret: a wrong "
            "token, or not the cluster it claims to be; check the token"
        )
    try:
        cluster_server, ca_data = kubeconfig.read_cluster_info(info)
    except ValueError as e:
        raise DiscoveryFailed(f"cluster-info at {server} {e}") from None
    ca_pem = base64.b64decode(ca_data)
    if pins and not pin.verify_pin(pins, ca_pem):
        raise DiscoveryFailed(
            f"the CA of the cluster at {server} ({pin.ca_pin(ca_pem)}) matches none of the "
            "--discovery-token-ca-cert-hash pins: a wrong pin, or not your cluster"
        )
    trusted = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    trusted.load_verify_locations(cadata=ca_pem.decode())
    again = Client(server, trusted, kubeconfig="(discovery)").get(CLUSTER_INFO).get("data", {}).get("kubeconfig")
    if again != info:
        raise DiscoveryFailed(
            f"cluster-info at {server} changed between the unverified and the verified read; refusing to trust it"
        )
    return {"server": cluster_server or server, "certificate-authority-data": ca_data}


def _signed(client: Client, token_id: str, timeout: float, interval: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = client.get(CLUSTER_INFO).get("data") or {}
            if "kubeconfig" in data and f"jws-kubeconfig-{token_id}" in data:
                return data["kubeconfig"], data[f"jws-kubeconfig-{token_id}"]
            why = (
                f"token id {token_id!r} is invalid for this cluster or it has expired (cluster-info has no "
                "signature for it)"
            )
        except (ApiError, Unreachable) as e:
            why = str(e)
        if time.monotonic() >= deadline:
            raise DiscoveryFailed(f"discovery at {client.server} failed after {timeout:.0f} s: {why}")
        time.sleep(interval)
