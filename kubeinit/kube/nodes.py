"""The cluster's Nodes as the pod network sees them: each node's podCIDRs (what the
controller-manager gave it from networking.podSubnet) and its InternalIP addresses.

    NodeNet                      one Node: name, pod_cidrs, addresses
    pod_networks(client, ...)    every Node, read through the API; waits (bounded) while a Node
                                 that registered has no podCIDR yet (the controller-manager
                                 allocates it a moment after the kubelet registers the Node)
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from kubeinit.kube.client import Client

CIDR_WAIT = 30.0  # seconds for a registered Node's podCIDR


@dataclass(frozen=True)
class NodeNet:
    name: str
    pod_cidrs: tuple[str, ...]  # spec.podCIDRs (one per IP family), else spec.podCIDR
    addresses: tuple[str, ...]  # status.addresses of type InternalIP

    def address(self, version: int) -> str | None:
        """This node's InternalIP of an IP family (4 or 6)."""
        return next((a for a in self.addresses if ipaddress.ip_address(a).version == version), None)


def node_net(node: dict) -> NodeNet:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    ips = [a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
    return NodeNet(node["metadata"]["name"], tuple(cidrs), tuple(a for a in ips if _is_ip(a)))


def _is_ip(a: str) -> bool:
    try:
        ipaddress.ip_address(a)
    except ValueError:
        return False
    return True


def pod_networks(client: Client, timeout: float | None = None, interval: float = 1.0) -> list[NodeNet]:
    """Every Node, sorted by name; asked again (at most `timeout` s, CIDR_WAIT) while one has no podCIDR."""
    deadline = time.monotonic() + (CIDR_WAIT if timeout is None else timeout)
    while True:
        nodes = sorted((node_net(n) for n in client.list("/api/v1/nodes").get("items") or []), key=lambda n: n.name)
        if all(n.pod_cidrs for n in nodes) or time.monotonic() >= deadline:
            return nodes
        time.sleep(interval)
