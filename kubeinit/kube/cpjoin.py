"""What `kubeinit join --control-plane` learns of the cluster before it plans, as kubeadm join's
FetchInitConfigurationFromCluster: kube-system/kubeadm-config, read with the join's bootstrap token
(upload-config/kubeadm's Role lets system:bootstrappers get it), from the cluster discovery trusted.

    read(cluster, token) -> ClusterSettings        the ClusterConfiguration and the pod network annotation
    control_plane_spec(req, settings, name, address) -> ClusterSpec
        the cluster's settings (controlPlaneEndpoint, networking, version, certificatesDir, extra args);
        as hosts, the etcd members kubeadm-config names (etcd.external.endpoints: kubeinit's etcd is a
        systemd service) as the control planes before this one, so control-plane-join adds this member
        through them; then this host, the only one the run works on
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from kubeinit.errors import NotAvailableYet, SpecError, UserError
from kubeinit.kube.client import ApiError, Client
from kubeinit.kube.discovery import DiscoveryFailed
from kubeinit.kube.joining import Cluster, JoinRequest
from kubeinit.spec.model import ClusterSpec, Host

KUBEADM_CONFIG = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"
POD_NETWORK = "kubeinit.dev/pod-network"  # the annotation upload-config/kubeadm writes (phases/cluster_api.py)
SOURCE = "kube-system/kubeadm-config"


@dataclass(frozen=True)
class ClusterSettings:
    config: dict  # the ClusterConfiguration document
    cni: str  # "" when kubeadm-config does not say


def read(cluster: Cluster, token: str) -> ClusterSettings:
    client = Client(cluster.server, cluster.tls(), token=token, kubeconfig="(bootstrap token)")
    try:
        cm = client.get(KUBEADM_CONFIG)
    except ApiError as e:
        raise DiscoveryFailed(
            f"cannot read {SOURCE} from {cluster.server} with the bootstrap token ({e}); run init's "
            "upload-config/kubeadm phase on the control plane"
        ) from None
    finally:
        client.close()
    text = (cm.get("data") or {}).get("ClusterConfiguration") or ""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DiscoveryFailed(f"{SOURCE} on {cluster.server}: its ClusterConfiguration is not YAML ({e})") from None
    if not isinstance(config, dict):
        raise DiscoveryFailed(f"{SOURCE} on {cluster.server} holds no ClusterConfiguration")
    cni = ((cm.get("metadata") or {}).get("annotations") or {}).get(POD_NETWORK, "")
    return ClusterSettings(config, str(cni))


def etcd_endpoints(config: dict) -> list[str]:
    """The client URLs of the etcd members the cluster names (a stacked etcd of kubeadm's names none)."""
    external = (config.get("etcd") or {}).get("external") or {}
    return [str(u) for u in external.get("endpoints") or []]


def control_plane_spec(req: JoinRequest, settings: ClusterSettings, name: str, address: str) -> ClusterSpec:
    from kubeinit.spec.kubeadm import from_kubeadm

    config = settings.config
    if not config.get("controlPlaneEndpoint"):  # kubeadm refuses the same
        raise UserError(
            f"the cluster has no controlPlaneEndpoint ({SOURCE}): a control plane cannot join it; a cluster "
            "meant for several control planes sets controlPlaneEndpoint at init"
        )
    urls = etcd_endpoints(config)
    if not urls:
        raise NotAvailableYet(
            f"joining a control plane to a cluster whose {SOURCE} names no external etcd endpoints "
            "(kubeadm's stacked etcd)",
            "make the cluster with kubeinit (its etcd is a service on each control plane)",
        )
    try:
        spec = from_kubeadm([config], SOURCE)
    except SpecError as e:
        raise DiscoveryFailed(f"kubeinit cannot take the cluster's settings: {e}") from None
    members = tuple(
        Host(name=f"etcd member {u}", address=urlsplit(u).hostname or "", role="control-plane") for u in urls
    )
    me = Host(name=name, address=address, role="control-plane", local=True)
    extra = {k: dict(v) for k, v in spec.extra_args.items()}
    if req.kubelet_extra_args:
        extra["kubelet"] = {**extra.get("kubelet", {}), **req.kubelet_extra_args}
    networking = spec.networking
    if settings.cni:
        networking = dataclasses.replace(networking, cni=settings.cni)
    return dataclasses.replace(
        spec, hosts=(*members, me), extra_args=extra, networking=networking, source="(kubeinit join --control-plane)"
    )
