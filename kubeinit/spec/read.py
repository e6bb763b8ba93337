"""The one cluster-file loader: kubeinit's `kind: Cluster` (hosts, or a `managed:` cloud cluster)
or kubeadm's v1beta4 documents, read into a frozen ClusterSpec and validated.

`require` says what the command needs: "hosts" (init, up, reset: the default), "managed"
(create cluster) or None (config validate: either). Every command reads files through here,
so a file `config validate` accepts is one some command accepts, and the reverse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubeinit.errors import SpecError

from . import addons, sections
from .model import (
    API_VERSION,
    COMPONENTS,
    KUBEADM_API,
    ClusterSpec,
    Host,
    Networking,
    PKIOptions,
    RuntimeSettings,
    SSHOptions,
)
from .reader import Reader, hours, kind_of, read_documents, str_list, str_map
from .validate import validate

REQUIRES = ("hosts", "managed", None)


def load_file(path: str | Path, require: str | None = "hosts") -> ClusterSpec:
    """Read and validate a cluster file (kubeinit's or kubeadm's v1beta4)."""
    return load_documents(read_documents(path), source=str(Path(path)), require=require)


def load_documents(docs: list[Any], source: str | None = None, require: str | None = "hosts") -> ClusterSpec:
    if not docs:
        raise SpecError("", "is empty; write a Cluster document (see `kubeinit config print init-defaults`)", source)
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise SpecError(f"document {i + 1}", f"must be a mapping, not {kind_of(d)}", source)
    kinds = [(d.get("apiVersion"), d.get("kind")) for d in docs]
    if any(api == KUBEADM_API for api, _ in kinds):
        from .kubeadm import from_kubeadm

        spec = from_kubeadm(docs, source)
    elif len(docs) > 1:
        raise SpecError("", f"holds {len(docs)} documents; a kubeinit cluster file holds one Cluster", source)
    else:
        spec = _read_cluster(docs[0], source)
    check_required(spec, require)
    validate(spec)
    return spec


def from_dict(raw: dict[str, Any], source: str | None = None, require: str | None = "hosts") -> ClusterSpec:
    spec = _read_cluster(raw, source)
    check_required(spec, require)
    validate(spec)
    return spec


def check_required(spec: ClusterSpec, require: str | None) -> None:
    """What the command needs of the file, said before the rest is judged."""
    if require not in REQUIRES:
        raise ValueError(f"require={require!r}")
    if require == "managed" and spec.managed is None:
        raise SpecError("managed", "missing: the file has no managed section", spec.source)
    if require == "hosts" and spec.managed is not None and not spec.hosts:
        where = spec.source if spec.source and not spec.source.startswith("(") else "FILE"
        raise SpecError(
            "hosts",
            f"is empty: this file describes a managed cluster (managed:); create it with "
            f"`kubeinit create cluster -f {where}`",
            spec.source,
        )


def _read_cluster(raw: dict[str, Any], source: str | None) -> ClusterSpec:
    r = Reader(raw, "", source)
    api = r.get("apiVersion", str)
    if api != API_VERSION:
        r.fail(
            f"{api!r} is not supported; use {API_VERSION} (or kubeadm's {KUBEADM_API})"
            if api
            else f"is missing; use {API_VERSION}",
            "apiVersion",
        )
    kind = r.get("kind", str)
    if kind != "Cluster":
        r.fail(f"{kind!r} is not supported; use Cluster" if kind else "is missing; use Cluster", "kind")
    d = ClusterSpec
    top: dict[str, Any] = dict(
        name=r.get("name", str, d.name),
        kubernetes_version=r.get("kubernetesVersion", str, d.kubernetes_version),
        control_plane_endpoint=r.get("controlPlaneEndpoint", str),
        bind_port=r.get("bindPort", int, d.bind_port),
        image_repository=r.get("imageRepository", str, d.image_repository),
        kubeconfig_dir=r.get("kubeconfigDir", str, d.kubeconfig_dir),
    )

    n = r.child("networking")
    networking = Networking(
        service_subnet=n.get("serviceSubnet", str, Networking.service_subnet),
        pod_subnet=n.get("podSubnet", str, Networking.pod_subnet),
        dns_domain=n.get("dnsDomain", str, Networking.dns_domain),
        cni=n.get("cni", str, Networking.cni),
    )
    n.done()

    p = r.child("pki")
    pki = PKIOptions(
        algorithm=p.get("keyAlgorithm", str, PKIOptions.algorithm),
        validity_hours=hours(p, "certificateValidity", PKIOptions.validity_hours),
        ca_validity_hours=hours(p, "caCertificateValidity", PKIOptions.ca_validity_hours),
        cert_sans=str_list(p, "certSANs"),
        cert_dir=p.get("certificatesDir", str, PKIOptions.cert_dir),
    )
    p.done()

    hosts = tuple(_host(h, f"hosts[{i}]", source) for i, h in enumerate(r.get("hosts", list, [])))

    comps = r.child("components")
    extra_args = {}
    for c in COMPONENTS:
        cr = comps.child(c)
        extra_args[c] = str_map(cr, "extraArgs")
        cr.done()
    comps.done()

    artifacts = sections.artifacts(r.child("artifacts"))
    rt = r.child("runtime")
    runtime = RuntimeSettings(containerd=sections.containerd(rt.child("containerd")))
    rt.done()
    proxy, dns = addons.proxy(r.child("proxy")), addons.dns(r.child("dns"))

    managed = r.get("managed", dict)
    r.done()
    if managed is not None:
        from kubeinit.managed.spec import parse_managed

        # the cloud cluster's name defaults to the file's own name, as given (not kubeinit's default)
        managed = parse_managed(managed, "managed", name=raw.get("name"), source=source)
    return ClusterSpec(
        **top,
        networking=networking,
        pki=pki,
        hosts=hosts,
        extra_args=extra_args,
        artifacts=artifacts,
        runtime=runtime,
        proxy=proxy,
        dns=dns,
        managed=managed,
        source=source,
    )


def _host(raw: Any, path: str, source: str | None) -> Host:
    r = Reader(raw, path, source)
    name = r.get("name", str)
    if not name:
        r.fail("is missing; every host needs a name", "name")
    address = r.get("address", str)
    if not address:
        r.fail("is missing; give the host's IP address or DNS name", "address")
    role = r.get("role", str, "worker")
    s = r.child("ssh")
    ssh = SSHOptions(
        user=s.get("user", str, "root"),
        port=s.get("port", int, 22),
        key=s.get("key", str),
        bastion=s.get("bastion", str),
    )
    s.done()
    r.done()
    return Host(name=name, address=address, role=role, ssh=ssh)
