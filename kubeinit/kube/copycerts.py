"""The kubeadm-certs Secret read back by a joining control plane, as kubeadm's DownloadCerts: fetched
with the join's bootstrap token (the Role kubeadm:kubeadm-certs lets its group get it) from the
cluster discovery trusted, each entry decrypted under the certificate key (certs/sealed.py).

    download(cluster, token, key_hex) -> {data key: bytes}   an entry uploaded empty stays b""
"""

from __future__ import annotations

import base64

from kubeinit.certs import sealed
from kubeinit.errors import KubeinitError
from kubeinit.kube.client import ApiError, Client
from kubeinit.kube.joining import Cluster

PATH = "/api/v1/namespaces/kube-system/secrets/kubeadm-certs"


class NoCerts(KubeinitError):
    """The Secret is gone (its 2 h passed) or cannot be read with the token."""


def download(cluster: Cluster, token: str, key_hex: str) -> dict[str, bytes]:
    client = Client(cluster.server, cluster.tls(), token=token, kubeconfig="(bootstrap token)")
    try:
        secret = client.get(PATH)
    except ApiError as e:
        if e.code == 404:
            raise NoCerts(
                f"Secret kube-system/kubeadm-certs is not in the cluster at {cluster.server}: it lives 2 h; run "
                "`kubeinit init phase upload-certs --upload-certs` on a control plane and join with the key it prints"
            ) from None
        if e.code == 403:  # the Role kubeadm:kubeadm-certs comes with the first upload
            raise NoCerts(
                "the bootstrap token may not read Secret kube-system/kubeadm-certs: the certificates were never "
                "uploaded; run `kubeinit init phase upload-certs --upload-certs` on a control plane"
            ) from None
        raise NoCerts(f"cannot read Secret kube-system/kubeadm-certs with the bootstrap token ({e})") from None
    finally:
        client.close()
    data = secret.get("data") or {}
    # all or nothing, as kubeadm: one entry the key does not open and none is used
    return {name: sealed.decrypt(base64.b64decode(v), key_hex) if v else b"" for name, v in data.items()}
