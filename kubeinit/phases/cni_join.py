"""join/cni: this node's share of the pod network, for a node joined with `kubeinit join`.

The node knows the cluster only by its endpoint, so it reads what it needs with its own
credentials (kubelet.conf, written by the kubelet's TLS bootstrap; the Node authorizer lets a
node list Nodes, and upload-config/kubeadm lets system:nodes read kubeadm-config):
  networking.cni    the annotation kubeinit.dev/pod-network of kube-system/kubeadm-config
  the pod range     its ClusterConfiguration's networking.podSubnet
  the Nodes         their podCIDRs and InternalIPs (kube/nodes.py)

bridge           this node's conflist, and routes to the pods of the nodes that exist (cni_bridge);
                 the other nodes route to this one after their cni phase runs again
flannel, calico  nothing on the node: their DaemonSets set it up
none             nothing: the pod network is the user's
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from kubeinit.context import Context, Target
from kubeinit.facts import Fact, Unknown
from kubeinit.kube import nodes as nodesmod
from kubeinit.kube import tlsbootstrap
from kubeinit.kube.client import Client, Unreachable
from kubeinit.phases import PhaseImpl, cluster_api, cni_bridge, kubelet
from kubeinit.steps import Notice, Skip, Step

KUBEADM_CONFIG = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"


@dataclass(frozen=True)
class ClusterNetwork:
    cni: str  # "" when kubeadm-config does not say (a cluster kubeinit did not make)
    pod_subnet: str
    nodes: list[nodesmod.NodeNet]  # read for bridge only


def node_client(target: Target, conf: str, data: bytes) -> Client:
    """The API server as this node's kubelet (its kubelet.conf `data`), reached through the target's connection."""
    inlined = tlsbootstrap.inlined(yaml.safe_load(data), target.facts.read, posixpath.dirname(conf))
    client = Client.from_kubeconfig_data(yaml.safe_dump(inlined).encode(), f"{target.name}:{conf}")
    host, port = client.host, client.port
    client.dial = lambda: target.conn.dial(host, port)
    return client


def read_network(client: Client) -> ClusterNetwork:
    cm = client.get(KUBEADM_CONFIG)
    cni = ((cm.get("metadata") or {}).get("annotations") or {}).get(cluster_api.POD_NETWORK, "")
    config = yaml.safe_load((cm.get("data") or {}).get("ClusterConfiguration") or "") or {}
    subnet = str((config.get("networking") or {}).get("podSubnet") or "")
    return ClusterNetwork(cni, subnet, nodesmod.pod_networks(client) if cni == "bridge" else [])


def plan(ctx: Context, target: Target) -> Iterator[Step]:
    conf = kubelet.kubeconfig(ctx)
    # read, not a file fact: the kubelet wrote it during kubelet-start, after that phase's facts were taken
    data = target.facts.read(conf)
    if data is None:
        yield Notice(f"{target.name} has not joined yet (no {conf}): its pod network is set up once it has")
        return
    client = node_client(target, conf, data)
    try:
        net = ctx.learn(lambda: read_network(client), lambda e: isinstance(e, Unreachable))
    finally:
        client.close()
    if isinstance(net, Unknown):
        yield Notice(f"the cluster's pod network cannot be read yet ({net}): it is set up when it can")
    elif net.cni == "bridge":
        cni_bridge.check_plugins(ctx, target)
        yield from cni_bridge.node_network(target, net.nodes, net.pod_subnet)
        yield Notice(
            "the other nodes route to this node's pods once their cni phase runs again "
            "(`kubeinit init phase cni` on the control plane, or `kubeinit up --only cni`)"
        )
    elif net.cni in ("flannel", "calico"):
        yield Skip(f"networking.cni is {net.cni}: its DaemonSet sets up this node")
    elif net.cni == "none":
        yield Skip("networking.cni is none: the pod network is yours to install")
    else:
        yield Notice(
            f"kube-system/kubeadm-config does not name the pod network ({cluster_api.POD_NETWORK}): nothing is "
            "set up on this node; install the cluster's pod network as its administrator did"
        )


def facts(ctx: Context, target: Target) -> list[Fact]:
    return cni_bridge.facts(ctx, target)


JOIN = PhaseImpl(plan, facts)
