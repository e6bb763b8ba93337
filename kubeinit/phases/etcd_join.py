"""control-plane-join on a joining control plane, as kubeadm join's, for kubeinit's etcd service:

etcd                etcd installed and its unit written (etcd/local's plan), then, unless its data dir
                    shows it joined already, this host added as a member through the etcd of the
                    control planes before it (`etcdctl member add` over TLS with this host's
                    apiserver-etcd-client certificate) before its etcd starts with
                    --initial-cluster-state=existing and the --initial-cluster that add printed.
                    Serial: etcd refuses a member that would leave its cluster without a quorum of
                    started members, so each joins once the one before it is up.
mark-control-plane  this host's API server answers /readyz; then kubeadm's labels and taint on its Node,
                    read through the first control plane (`kubeinit join`: through this host's admin.conf).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.facts import Unknown
from kubeinit.hostops.install import STATE
from kubeinit.kube import objects
from kubeinit.kube.client import ApiError, Unreachable
from kubeinit.phases import PhaseImpl, cluster_api, etcd
from kubeinit.phases.cp_prepare import first_target
from kubeinit.phases.join import REQUEST
from kubeinit.steps import ApiCall, Run, Skip, Step

ADD_TRIES = 30  # 2 s apart: the member before this one may still be publishing that it started


def etcdctl(ctx: Context, endpoints: list[str]) -> str:
    """etcdctl as the API server reaches etcd: its client certificate, over TLS."""
    pki = ctx.cert_dir
    return (
        f"ETCDCTL_API=3 {etcd.ETCDCTL} --endpoints={','.join(endpoints)} --cacert={pki}/etcd/ca.crt "
        f"--cert={pki}/apiserver-etcd-client.crt --key={pki}/apiserver-etcd-client.key --command-timeout=10s"
    )


def members_before(ctx: Context, target: Target) -> list[str]:
    """The client URLs of the control planes listed before this one: members already (joins are serial)."""
    names = [h.name for h in ctx.spec.control_planes]
    return [etcd.client_url(h.address) for h in ctx.spec.control_planes[: names.index(target.name)]]


def add_member_script(ctx: Context, target: Target) -> str:
    ctl = etcdctl(ctx, members_before(ctx, target))
    me = etcd.peer_url(target.host.address)
    env = etcd.JOIN_ENV
    return (
        f"set -e; list=$({ctl} member list); "
        # a member with this peer URL while this host has no etcd data: a run stopped before its etcd
        # started, or the host lost its data; it is added anew
        f"old=$(printf '%s\\n' \"$list\" | awk -F', ' -v u={me} '$4 == u {{print $1}}'); "
        f'if [ -n "$old" ]; then {ctl} member remove "$old"; fi; '
        f"i=0; until out=$({ctl} member add {shlex.quote(target.host.name)} --peer-urls={me} 2>&1); do "
        f'i=$((i+1)); if [ $i -ge {ADD_TRIES} ]; then echo "$out" >&2; exit 1; fi; sleep 2; done; '
        f"mkdir -p {STATE}; printf '%s\\n' \"$out\" | grep -E '^ETCD_INITIAL_CLUSTER(_STATE)?=' > {env}.tmp; "
        f"mv {env}.tmp {env}"
    )


def plan_etcd_join(ctx: Context, target: Target) -> Iterator[Step]:
    add = Run(
        ("sh", "-c", add_member_script(ctx, target)),
        timeout=ADD_TRIES * 12 + 30,
        note=f"add {target.name} to etcd as a member (through {', '.join(members_before(ctx, target))})",
    )
    yield from etcd.plan_etcd(ctx, target, join=add)


NODE_KIND = {"apiVersion": "v1", "kind": "Node"}


def plan_mark(ctx: Context, target: Target) -> Iterator[Step]:
    yield ApiCall(
        "wait",
        "/readyz",
        timeout=cluster_api.READY_SECONDS,
        watch="kubelet",
        note=f"this host's API server answers /readyz (up to {cluster_api.READY_SECONDS} s)",
    )
    # `kubeinit join`: this host's own admin.conf (its API server answers); `up`: the first control plane's
    first = target if REQUEST in ctx.shared else first_target(ctx)
    wanted = {**NODE_KIND, "metadata": {"name": target.host.name}}
    node = ctx.learn(lambda: objects.get(ctx.kube(first), wanted), lambda e: isinstance(e, (Unreachable, ApiError)))
    labels, taints = cluster_api.CONTROL_PLANE_LABELS, cluster_api.CONTROL_PLANE_TAINTS
    if not isinstance(node, Unknown) and objects.node_marked(node, labels, taints):
        yield Skip(f"node {target.host.name} has the control-plane labels and taint")
        return
    yield ApiCall(
        "mark",
        f"/api/v1/nodes/{target.host.name}",
        {"labels": labels, "taints": taints},
        note="labels node-role.kubernetes.io/control-plane, exclude-from-external-load-balancers; taint "
        "node-role.kubernetes.io/control-plane:NoSchedule",
        timeout=cluster_api.READY_SECONDS,
        watch="kubelet",
    )


ETCD = PhaseImpl(plan_etcd_join, etcd.join_facts, preload=etcd.preload, serial=True)
MARK_CONTROL_PLANE = PhaseImpl(plan_mark)
