"""The cluster's Nodes as `kubectl get nodes` shows them: name, status, roles, kubelet version.

NodeState                      one Node: name, ready, roles, version, why (the Ready condition's
                               message when it is not Ready), schedulable
node_state(node) -> NodeState  from a Node object as the API server returns it
read(client) -> [NodeState]    every Node, sorted by name (one GET)
wait_ready(read, names, ...)   read again (bounded) until every named Node is there and Ready
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeinit.kube.client import Client

ROLE_PREFIX = "node-role.kubernetes.io/"


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    roles: tuple[str, ...]
    version: str = ""
    why: str = ""  # the Ready condition's reason and message, when it is not Ready
    schedulable: bool = True

    @property
    def status(self) -> str:
        """kubectl's STATUS column."""
        return ("Ready" if self.ready else "NotReady") + ("" if self.schedulable else ",SchedulingDisabled")

    @property
    def role(self) -> str:
        """kubectl's ROLES column, but a Node with no role label is a worker: kubeadm (and kubeinit)
        labels every control plane, and nothing else."""
        return ",".join(self.roles) or "worker"


def node_state(node: dict) -> NodeState:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    roles = {k[len(ROLE_PREFIX) :] for k in labels if k.startswith(ROLE_PREFIX) and k != ROLE_PREFIX}
    if labels.get("kubernetes.io/role"):  # the older label kubectl reads too
        roles.add(labels["kubernetes.io/role"])
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    ready = cond is not None and cond.get("status") == "True"
    why = "" if ready else ": ".join(x for x in ((cond or {}).get("reason"), (cond or {}).get("message")) if x)
    return NodeState(
        meta.get("name", ""),
        ready,
        tuple(sorted(roles)),
        (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
        why if cond is not None else "no Ready condition yet",
        not spec.get("unschedulable", False),
    )


def read(client: Client) -> list[NodeState]:
    return sorted((node_state(n) for n in client.list("/api/v1/nodes").get("items") or []), key=lambda n: n.name)


def all_ready(nodes: list[NodeState], names: list[str]) -> bool:
    have = {n.name: n for n in nodes}
    return all(name in have and have[name].ready for name in names)


def wait_ready(
    read: Callable[[], list[NodeState]],
    names: list[str],
    timeout: float,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[NodeState]:
    """The Nodes once every one of `names` is registered and Ready, or as they are after `timeout` s."""
    deadline = clock() + timeout
    while True:
        nodes = read()
        if all_ready(nodes, names) or clock() >= deadline:
            return nodes
        sleep(interval)
