"""Init's phases run by the executor against the API-server double (apiserver.py): the cluster file
of lab, one control plane cp-1 at 127.0.0.1 whose API, kubeconfigs and PKI are the double's, and
a view that records what the executor reports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.certs import jws
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.workflow import find, init_phases

TOKEN = "abcdef.0123456789abcdef"


class View:
    """Records every report as (name, *args); steps(): the steps planned."""

    def __init__(self):
        self.events, self.lock = [], threading.Lock()

    def __getattr__(self, name):
        def record(*args):
            with self.lock:
                self.events.append((name, *args))

        return record

    def steps(self) -> list:
        return [s for e in self.events if e[0] == "planned" for s in e[3]]


def cluster_file(cluster=None, **fields: Any) -> dict:
    """lab's cluster file, with these fields; with `cluster` (the double), at its API and files."""
    at = (
        {
            "bindPort": cluster.api.port,
            "kubeconfigDir": str(cluster.root),
            "pki": {"certificatesDir": str(cluster.root / "pki")},
        }
        if cluster
        else {}
    )
    return {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "name": "lab",
        **at,
        "hosts": [{"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"}],
        **fields,
    }


def local_context(spec, connect: Callable | None = None, **options: Any) -> Context:
    """A Context of spec's hosts, each reached by connect(host) (default: this machine)."""
    connect = connect or (lambda h: LocalConnection(h.name))
    return Context(spec, [Target(h, connect) for h in spec.hosts], Options(**options))


def run_phases(spec, paths: Iterable[str], view=None, connect: Callable | None = None, **options: Any):
    """Execute init's phases at `paths`, in this order; the run's summary."""
    ctx = local_context(spec, connect, **options)
    try:
        return execute(ctx, [find(init_phases(), p) for p in paths], view or View())
    finally:
        ctx.close()


def publish_cluster_info(cluster, *before: str):
    """cluster-info as init's bootstrap-token phase (after the phases `before`) writes it, signed
    for TOKEN as kube-controller-manager's bootstrapsigner would."""
    run_phases(specmod.from_dict(cluster_file(cluster)), [*before, "bootstrap-token"])
    data = cluster.api.objects[("configmaps", "kube-public", "cluster-info")]["data"]
    token_id, secret = TOKEN.split(".")
    data[f"jws-kubeconfig-{token_id}"] = jws.sign_detached(data["kubeconfig"], token_id, secret)
    return cluster
