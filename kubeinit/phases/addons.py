"""The addon phases, as kubeadm installs them (cmd/kubeadm/app/phases/addons):

addon/coredns     ConfigMap coredns (the Corefile), ClusterRole and ClusterRoleBinding system:coredns,
                  ServiceAccount coredns, Deployment coredns (2 replicas, the CoreDNS version kubeadm
                  pins for the cluster's minor) and Service kube-dns at the 10th address of the
                  service subnet (53/udp, 53/tcp, 9153)
addon/kube-proxy  ServiceAccount kube-proxy, ClusterRoleBinding kubeadm:node-proxier (system:node-proxier),
                  Role and RoleBinding kube-proxy (joining nodes read its ConfigMap), ConfigMap
                  kube-proxy (config.conf: a KubeProxyConfiguration with the cluster file's
                  proxy.config merged in; kubeconfig.conf), DaemonSet kube-proxy

The objects are rendered from templates/addons/ and applied through cluster_api.ensure: each is
written only when the cluster does not hold it as wanted, so a re-run only skips. `proxy.disabled`
or `dns.disabled` in the cluster file skips the addon, as kubeadm's.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from typing import Any

import yaml

from kubeinit import render
from kubeinit.context import Context, Target
from kubeinit.phases import PhaseImpl, cluster_api
from kubeinit.spec import ClusterSpec
from kubeinit.spec.addons import PROXY_API, PROXY_KIND, PROXY_KUBECONFIG
from kubeinit.spec.model import thawed
from kubeinit.steps import Skip, Step

# kubeadm's constants.CoreDNSVersion on each release branch (cmd/kubeadm/app/constants/constants.go)
COREDNS_VERSIONS = {31: "v1.11.3", 32: "v1.11.3", 33: "v1.12.0", 34: "v1.12.1", 35: "v1.13.1"}
COREDNS_REPLICAS = 2  # kubeadm's coreDNSReplicas, on creation; afterwards the Deployment's own count stays
CACHE_DISABLE_SINCE = 33  # kubeadm's Corefile stops caching the cluster domain (kubernetes#128359)
DEFAULT_REGISTRY = "registry.k8s.io"  # where CoreDNS sits under coredns/, as kubeadm's GetDNSImage says
PROXY_TEMPLATE, COREDNS_TEMPLATE = "addons/kube-proxy.yaml.j2", "addons/coredns.yaml.j2"
HASH_ANNOTATION = "kubeadm.kubernetes.io/component-config.hash"


def plan_kube_proxy(ctx: Context, target: Target) -> Iterator[Step]:
    if ctx.spec.proxy.disabled:
        yield Skip("kube-proxy is not installed: the cluster file sets proxy.disabled")
        return
    yield from cluster_api.ensure(ctx, target, kube_proxy_objects(ctx.spec))


def plan_coredns(ctx: Context, target: Target) -> Iterator[Step]:
    if ctx.spec.dns.disabled:
        yield Skip("CoreDNS is not installed: the cluster file sets dns.disabled")
        return
    yield from cluster_api.ensure(ctx, target, coredns_objects(ctx.spec), adopt=keep_replicas)


def keep_replicas(want: dict, have: dict | None) -> dict:
    """The Deployment's replicas as the cluster has them (scaled by its admin or an autoscaler),
    as kubeadm keeps them; COREDNS_REPLICAS only when it is made."""
    if want["kind"] != "Deployment" or have is None or "replicas" not in (have.get("spec") or {}):
        return want
    return {**want, "spec": {**want["spec"], "replicas": have["spec"]["replicas"]}}


def kube_proxy_objects(spec: ClusterSpec) -> list[dict]:
    text = render.render(
        PROXY_TEMPLATE,
        image=f"{spec.image_repository}/kube-proxy:{spec.kubernetes_version.replace('+', '_')}",
        server=spec.api_endpoint(),
        config=yaml.safe_dump(kube_proxy_config(spec), sort_keys=True).rstrip("\n"),
    )
    objs = _documents(text)
    if not spec.proxy.config:  # kubeadm signs the config it made alone: `kubeadm upgrade` may regenerate it
        cm = next(o for o in objs if o["kind"] == "ConfigMap")
        cm["metadata"]["annotations"] = {HASH_ANNOTATION: config_hash(cm["data"])}
    return objs


def kube_proxy_config(spec: ClusterSpec) -> dict[str, Any]:
    """kubeadm's KubeProxyConfiguration defaults (componentconfigs/kubeproxy.go) with the cluster
    file's proxy.config merged over them; kube-proxy defaults every field left out."""
    base: dict[str, Any] = {
        "apiVersion": PROXY_API,
        "kind": PROXY_KIND,
        "bindAddress": _wildcard(spec),
        "clientConnection": {"kubeconfig": PROXY_KUBECONFIG},
    }
    if spec.networking.pod_subnet.strip():
        base["clusterCIDR"] = spec.networking.pod_subnet
    return _merged(base, thawed(spec.proxy.config))


def coredns_objects(spec: ClusterSpec) -> list[dict]:
    text = render.render(
        COREDNS_TEMPLATE,
        image=coredns_image(spec),
        replicas=COREDNS_REPLICAS,
        dns_ip=spec.networking.dns_ip,
        domain=spec.networking.dns_domain,
        cache_disable=spec.minor >= CACHE_DISABLE_SINCE,
    )
    return _documents(text)


def coredns_image(spec: ClusterSpec) -> str:
    """kubeadm's GetDNSImage: dns.imageRepository or the cluster's, with coredns/ under the default
    registry; dns.imageTag or the version kubeadm pins for the minor."""
    repo = spec.dns.image_repository or spec.image_repository
    if repo == DEFAULT_REGISTRY:
        repo = f"{repo}/coredns"
    return f"{repo}/coredns:{spec.dns.image_tag or COREDNS_VERSIONS[spec.minor]}"


def config_hash(data: dict[str, str]) -> str:
    """kubeadm's ChecksumForConfigMap: sha256 over the values in key order."""
    h = hashlib.sha256()
    for key in sorted(data):
        h.update(data[key].encode())
    return f"sha256:{h.hexdigest()}"


def _wildcard(spec: ClusterSpec) -> str:
    """0.0.0.0 or ::, by the family of the first control plane's address (kubeadm's advertise
    address); a host name: by the service subnet's."""
    try:
        v6 = ipaddress.ip_address(spec.first_control_plane.address).version == 6
    except ValueError:
        v6 = spec.networking.service_network.version == 6
    return "::" if v6 else "0.0.0.0"


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _warm() -> None:
    render.warm(PROXY_TEMPLATE, COREDNS_TEMPLATE)


KUBE_PROXY = PhaseImpl(plan_kube_proxy, preload=_warm)
COREDNS = PhaseImpl(plan_coredns, preload=_warm)
