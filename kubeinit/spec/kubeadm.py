"""kubeadm's v1beta4 InitConfiguration + ClusterConfiguration documents, translated to a ClusterSpec
(the fields the two share; the rest of kubeadm's fields are accepted and left to kubeinit's defaults)."""

from __future__ import annotations

from kubeinit.errors import SpecError

from . import addons
from .model import KUBEADM_API, ClusterSpec, DNSSettings, Host, Networking, PKIOptions, ProxySettings
from .reader import Reader, hours, str_list


def from_kubeadm(docs: list[dict], source: str | None) -> ClusterSpec:
    d, net, pki = ClusterSpec, Networking(), PKIOptions()
    top: dict = {}
    netf: dict = {}
    pkif: dict = {}
    extra_args: dict[str, dict[str, str]] = {}
    node_name = advertise = None
    proxy_disabled = False
    dns = DNSSettings()
    proxy_config: dict = {}
    for i, doc in enumerate(docs):
        api, kind = doc.get("apiVersion"), doc.get("kind")
        base = f"document {i + 1} ({kind or 'no kind'})"
        if api != KUBEADM_API:
            if kind == "KubeProxyConfiguration" and api == addons.PROXY_API:
                proxy_config = addons.proxy_config(doc, base, source)
                continue
            if kind == "KubeletConfiguration":
                continue  # accepted by kubeadm; kubeinit keeps its own defaults for now
            raise SpecError(f"{base}.apiVersion", f"{api!r} cannot be mixed with {KUBEADM_API}", source)
        r = Reader(doc, "", source)
        r.used |= {"apiVersion", "kind"}
        if kind == "InitConfiguration":
            nr = r.child("nodeRegistration")
            node_name = nr.get("name", str)
            nr.used |= {
                "criSocket",
                "taints",
                "kubeletExtraArgs",
                "ignorePreflightErrors",
                "imagePullPolicy",
                "imagePullSerial",
            }
            nr.done()
            le = r.child("localAPIEndpoint")
            advertise = le.get("advertiseAddress", str)
            top["bind_port"] = le.get("bindPort", int, top.get("bind_port", d.bind_port))
            le.done()
            r.used |= {"bootstrapTokens", "dryRun", "certificateKey", "skipPhases", "patches", "timeouts"}
            r.done()
        elif kind == "ClusterConfiguration":
            top["name"] = r.get("clusterName", str, d.name)
            top["kubernetes_version"] = r.get("kubernetesVersion", str, d.kubernetes_version)
            top["control_plane_endpoint"] = r.get("controlPlaneEndpoint", str)
            top["image_repository"] = r.get("imageRepository", str, d.image_repository)
            pkif["cert_dir"] = r.get("certificatesDir", str, pki.cert_dir)
            pkif["algorithm"] = r.get("encryptionAlgorithm", str, pki.algorithm)
            pkif["validity_hours"] = hours(r, "certificateValidityPeriod", pki.validity_hours)
            pkif["ca_validity_hours"] = hours(r, "caCertificateValidityPeriod", pki.ca_validity_hours)
            n = r.child("networking")
            netf["service_subnet"] = n.get("serviceSubnet", str, net.service_subnet)
            netf["pod_subnet"] = n.get("podSubnet", str, net.pod_subnet)
            netf["dns_domain"] = n.get("dnsDomain", str, net.dns_domain)
            n.done()
            for key in ("apiServer", "controllerManager", "scheduler"):
                c = r.child(key)
                extra_args[key] = _kubeadm_args(c)
                if key == "apiServer":
                    pkif["cert_sans"] = str_list(c, "certSANs")
                c.used |= {"extraVolumes", "extraEnvs"}
                c.done()
            proxy_disabled = addons.proxy(r.child("proxy")).disabled
            dns = addons.dns(r.child("dns"))
            r.used |= {"etcd", "featureGates"}
            r.done()
        else:
            raise SpecError(
                f"{base}.kind",
                f"{kind!r} is not supported here; use InitConfiguration and ClusterConfiguration",
                source,
            )
    from kubeinit.localhost import default_address, local_hostname

    host = Host(
        name=node_name or local_hostname(), address=advertise or default_address(), role="control-plane", local=True
    )
    return ClusterSpec(
        **top,
        networking=Networking(**netf),
        pki=PKIOptions(**pkif),
        extra_args=extra_args,
        hosts=(host,),
        proxy=ProxySettings(disabled=proxy_disabled, config=proxy_config),
        dns=dns,
        source=source,
    )


def _kubeadm_args(r: Reader) -> dict[str, str]:
    items = r.get("extraArgs", list, [])
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        path = f"{r.sub('extraArgs')}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SpecError(path, "must be a mapping with name and value (v1beta4 list form)", r.source)
        out[item["name"]] = str(item.get("value", ""))
    return out
