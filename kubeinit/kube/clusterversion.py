"""What an upgrade reads of a running cluster, through its API server as the admin:

version(client) -> str | None     kubernetesVersion of the ClusterConfiguration in ConfigMap
                                  kube-system/kubeadm-config (what upload-config writes, and
                                  `kubeadm upgrade` reads); None: there is no such ConfigMap
read(client) -> ClusterState      that version and every Node (kube/nodestate.py), two GETs
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from kubeinit.errors import KubeinitError
from kubeinit.kube import nodestate
from kubeinit.kube.client import ApiError, Client, namespaced
from kubeinit.kube.nodestate import NodeState

CONFIGMAP = "kube-system/kubeadm-config"
KEY = "ClusterConfiguration"


@dataclass(frozen=True)
class ClusterState:
    version: str | None  # None: no kubeadm-config (a cluster `up` has not finished making)
    nodes: tuple[NodeState, ...]

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)


def version(client: Client) -> str | None:
    try:
        cm = client.get(namespaced("configmaps", "kube-system", "kubeadm-config"))
    except ApiError as e:
        if e.code == 404:
            return None
        raise
    text = (cm.get("data") or {}).get(KEY)
    try:
        config = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        config = None
    found = config.get("kubernetesVersion") if isinstance(config, dict) else None
    if not isinstance(found, str) or not found.strip():
        raise KubeinitError(
            f"ConfigMap {CONFIGMAP} has no {KEY} with a kubernetesVersion; write it again with "
            "`kubeinit up -f FILE --only upload-config` (with the version the cluster runs)"
        )
    return found.strip()


def read(client: Client) -> ClusterState:
    return ClusterState(version(client), tuple(nodestate.read(client)))
