"""Flags over the file (`init`, `reset`): a new spec, validated, with the flag named in errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kubeinit.errors import SpecError

from .model import ClusterSpec, Host
from .validate import is_ip, validate


def local_default() -> ClusterSpec:
    """The embedded default: a single-node cluster on this machine (its address found by apply_overrides)."""
    from kubeinit.localhost import local_hostname

    return ClusterSpec(source="(embedded default)", hosts=(Host(name=local_hostname(), address="", local=True),))


@dataclass(frozen=True)
class Overrides:
    """Flags that override the file (kubeadm's names)."""

    advertise_address: str | None = None
    control_plane_endpoint: str | None = None
    node_name: str | None = None
    kubernetes_version: str | None = None
    pod_network_cidr: str | None = None
    service_cidr: str | None = None
    cert_dir: str | None = None
    kubeconfig_dir: str | None = None
    cert_extra_sans: list[str] | None = None


def apply_overrides(spec: ClusterSpec, o: Overrides, local: bool = True) -> ClusterSpec:
    """A new spec with the flags applied, validated; flags are named in errors by their flag name."""
    replace = dataclasses.replace
    top: dict = {}
    if o.kubernetes_version is not None:
        top["kubernetes_version"] = o.kubernetes_version
    if o.control_plane_endpoint is not None:
        top["control_plane_endpoint"] = o.control_plane_endpoint
    if o.kubeconfig_dir is not None:
        top["kubeconfig_dir"] = o.kubeconfig_dir
    net = {k: v for k, v in (("pod_subnet", o.pod_network_cidr), ("service_subnet", o.service_cidr)) if v is not None}
    pki: dict = {} if o.cert_dir is None else {"cert_dir": o.cert_dir}
    if o.cert_extra_sans:
        pki["cert_sans"] = (*spec.pki.cert_sans, *o.cert_extra_sans)
    spec = replace(spec, **top, networking=replace(spec.networking, **net), pki=replace(spec.pki, **pki))
    if local:
        spec = replace(spec, hosts=(_local_host(spec, o),))
    given = {path for path, attr in _FLAG_FOR.items() if getattr(o, attr) is not None}
    try:
        validate(spec)
    except SpecError as e:
        if e.path in given:  # the flag, not the file, carried the bad value
            raise SpecError(_FLAG_NAME[e.path], e.message) from None
        raise
    return spec


def _local_host(spec: ClusterSpec, o: Overrides) -> Host:
    from kubeinit.localhost import default_address, local_hostname

    host = spec.hosts[0] if spec.hosts else Host(name=local_hostname(), address="")
    fields: dict = {"local": True}
    if o.node_name is not None:
        fields["name"] = o.node_name
    if o.advertise_address is not None:
        if not is_ip(o.advertise_address):
            raise SpecError("--apiserver-advertise-address", f"{o.advertise_address!r} is not an IP address")
        fields["address"] = o.advertise_address
    if not fields.get("address", host.address):
        fields["address"] = default_address()
    return dataclasses.replace(host, **fields)


_FLAG_FOR = {  # YAML path -> Overrides attribute
    "kubernetesVersion": "kubernetes_version",
    "controlPlaneEndpoint": "control_plane_endpoint",
    "networking.podSubnet": "pod_network_cidr",
    "networking.serviceSubnet": "service_cidr",
    "hosts[0].name": "node_name",
    "hosts[0].address": "advertise_address",
    "pki.certificatesDir": "cert_dir",
}
_FLAG_NAME = {
    "kubernetesVersion": "--kubernetes-version",
    "controlPlaneEndpoint": "--control-plane-endpoint",
    "networking.podSubnet": "--pod-network-cidr",
    "networking.serviceSubnet": "--service-cidr",
    "hosts[0].name": "--node-name",
    "hosts[0].address": "--apiserver-advertise-address",
    "pki.certificatesDir": "--cert-dir",
}
