"""cni: the pod network, as networking.cni names it ("applies the CNI").

flannel, calico  their manifests (kubeinit/templates/cni, pinned image versions, the pod subnet
                 rendered in), applied through the API on the first control plane, each object
                 only when it differs, in the manifest's order (calico's CRDs first); their
                 DaemonSets set up every node, joined later too
bridge           no image, no daemon: each host's CNI config and routes (cni_bridge.py)
none             nothing: the user installs a pod network (nodes stay NotReady until then)

An object "differs" when the cluster's copy lacks a field kubeinit writes, or carries another
digest of kubeinit's object in the annotation kubeinit.dev/applied: a server fills in defaults
(a DaemonSet's updateStrategy, a container's terminationMessagePath), so a workload's spec as
read back never equals the one written, and the digest is what says it is the same one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator

import yaml

from kubeinit.context import Context, Target
from kubeinit.facts import Unknown
from kubeinit.kube import admins, objects
from kubeinit.phases import PhaseImpl, cluster_api, cni_bridge
from kubeinit.render import render, warm
from kubeinit.steps import ApiCall, Notice, Skip, Step

# Pinned by this release of kubeinit.
FLANNEL = "v0.26.7"
FLANNEL_CNI_PLUGIN = "v1.6.2-flannel1"
CALICO = "v3.29.3"
APPLIED = "kubeinit.dev/applied"


def manifest(ctx: Context) -> list[dict]:
    """The objects of the flannel or calico manifest for this cluster, each with its digest."""
    cni, subnet = ctx.spec.networking.cni, ctx.spec.networking.pod_subnet
    by_version = {ipaddress.ip_network(c.strip()).version: c.strip() for c in subnet.split(",") if c.strip()}
    if cni == "flannel":
        text = render(
            "cni/flannel.yaml.j2",
            version=FLANNEL,
            cni_plugin_version=FLANNEL_CNI_PLUGIN,
            network=by_version[4],
            ipv6_network=by_version.get(6, ""),
            reach=_address(ctx.spec.first_control_plane.address),
        )
    else:  # the spec makes sure of an IPv4 range (validate._check_cni)
        text = render("cni/calico.yaml.j2", version=CALICO, ipv4_pool=by_version[4], ipv6_pool=by_version.get(6, ""))
    return [stamped(doc) for doc in yaml.safe_load_all(text) if doc]


def _address(text: str) -> str:
    """`text` if it is an IP address (flannel's --iface-can-reach takes no name), else ""."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def stamped(obj: dict) -> dict:
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), APPLIED: digest}}}


def up_to_date(have: dict | None, want: dict) -> bool:
    if have is None:
        return False
    mine = want["metadata"]["annotations"][APPLIED]
    return ((have.get("metadata") or {}).get("annotations") or {}).get(APPLIED) == mine or objects.matches(have, want)


def plan(ctx: Context, target: Target) -> Iterator[Step]:
    cni, first = ctx.spec.networking.cni, ctx.spec.first_control_plane.name
    if cni == "bridge":
        yield from cni_bridge.plan(ctx, target)
    elif target.name != first:
        yield Skip(
            f"networking.cni is {cni}: nothing to do on this host" + (f" ({first} applies it)" * (cni != "none"))
        )
    elif cni == "none":
        yield Notice("networking.cni is none: install a pod network yourself; the nodes stay NotReady until then")
    else:
        yield from _apply(ctx, target, manifest(ctx))


def _apply(ctx: Context, target: Target, wanted: list[dict]) -> Iterator[Step]:
    have = yield from cluster_api._read(ctx, target, wanted)
    if isinstance(have, Unknown):
        why = str(have) if isinstance(have.error, admins.NotAuthorized) else "the API server does not answer yet"
        yield Notice(f"{why}: every object is shown as it would be written")
        have = [None] * len(wanted)
    for obj, there in zip(wanted, have, strict=True):
        if up_to_date(there, obj):
            yield Skip(f"{objects.label(obj)} is up to date")
        else:
            yield ApiCall("apply", objects.collection(obj), obj)


def facts(ctx: Context, target: Target):
    return cni_bridge.facts(ctx, target) if ctx.spec.networking.cni == "bridge" else []


def _preload() -> None:
    warm("cni/flannel.yaml.j2", "cni/calico.yaml.j2", *cni_bridge.TEMPLATES)


CNI = PhaseImpl(plan, facts, preload=_preload)
