"""The end of a join, as kubeadm waits for it: the kubelet's TLS bootstrap wrote kubelet.conf, and
the Node it registers with those credentials exists. What the executor does for an ApiCall of
verb "tls-bootstrap" (path: kubelet.conf on the joining host; body: {"node": name}).

The kubelet's own credentials are used, read from the host (the files kubelet.conf names are
inlined), and the API server is reached through the host's connection: this works both on the
node itself (`kubeinit join`) and over SSH (`kubeinit up`), with no admin credentials.
"""

from __future__ import annotations

import base64
import posixpath
import time
from collections.abc import Callable

import yaml

from kubeinit.errors import KubeinitError
from kubeinit.kube.client import ApiError, Client, Unreachable

VERB = "tls-bootstrap"
TIMEOUT = 240  # kubeadm's TLSBootstrap timeout (4 minutes, as its kubelet health check)
_FILE_KEYS = {
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
    "certificate-authority": "certificate-authority-data",
}


class NotJoined(KubeinitError):
    pass


def inlined(conf: dict, read: Callable[[str], bytes | None], base: str) -> dict:
    """The kubeconfig with every file it names read (through `read`, on its host) into *-data."""
    for section, key in (("users", "user"), ("clusters", "cluster")):
        for entry in conf.get(section) or []:
            body = entry.get(key) or {}
            for file_key, data_key in _FILE_KEYS.items():
                if body.get(file_key):
                    path = posixpath.join(base, body.pop(file_key))
                    data = read(path)
                    if data is None:
                        raise NotJoined(f"{path}, which kubelet.conf names, is missing")
                    body[data_key] = base64.b64encode(data).decode()
    return conf


def wait(conn, kubeconfig: str, node: str, timeout: float = TIMEOUT, check=None, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout

    def late(what: str) -> NotJoined:
        return NotJoined(
            f"{what} within {timeout:.0f} s; `journalctl -u kubelet` on the node shows why (a token that "
            "expired meanwhile, an unreachable API server, or a CSR nobody approved)"
        )

    conf, missing = None, f"no {kubeconfig}"
    while conf is None:
        data = conn.read(kubeconfig)
        if data is not None:
            try:
                conf = inlined(yaml.safe_load(data), conn.read, posixpath.dirname(kubeconfig))
                break
            except NotJoined as e:  # a rotating kubelet writes kubelet.conf before the certificate it names
                missing = str(e)
        if time.monotonic() >= deadline:
            raise late(f"the kubelet did not finish its TLS bootstrap ({missing})")
        if check is not None:
            check()
        time.sleep(interval)
    client = Client.from_kubeconfig_data(yaml.safe_dump(conf).encode(), f"{getattr(conn, 'name', '')}:{kubeconfig}")
    server_host, server_port = client.host, client.port
    client.dial = lambda: conn.dial(server_host, server_port)
    last = "no answer yet"
    try:
        while True:
            try:
                client.get(f"/api/v1/nodes/{node}")
                return
            except ApiError as e:
                last = f"{e.code} {e.reason}"
            except Unreachable as e:
                last = str(e).split(";", 1)[0]
            if time.monotonic() >= deadline:
                raise late(f"node {node} was not registered (last answer: {last})")
            if check is not None:
                check()
            time.sleep(interval)
    finally:
        client.close()
