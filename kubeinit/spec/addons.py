"""Reading the addons' sections of a cluster file: `proxy` (kube-proxy) and `dns` (CoreDNS).

    proxy:
      disabled: false          # kubeadm's ClusterConfiguration.proxy.disabled: no kube-proxy addon
      config:                  # fields of a KubeProxyConfiguration, merged over kubeinit's
        mode: ipvs             # iptables (kube-proxy's default), ipvs or nftables
        conntrack: {maxPerCore: 0}
    dns:
      disabled: false          # kubeadm's ClusterConfiguration.dns.disabled: no CoreDNS addon
      imageRepository: ...     # and imageTag: CoreDNS's image, as kubeadm's dns fields

kube-proxy refuses a config it cannot read and its pods then crash on every node, so the config
is checked here, field by field against kube-proxy's v1alpha1 type, with the YAML path of the
first wrong field. A kubeadm file's KubeProxyConfiguration document is read by the same check.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kubeinit.errors import SpecError

from .model import DNSSettings, ProxySettings
from .reader import Reader, kind_of

PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
PROXY_KIND = "KubeProxyConfiguration"
PROXY_KUBECONFIG = "/var/lib/kube-proxy/kubeconfig.conf"  # where the DaemonSet mounts the ConfigMap
MODES = ("iptables", "ipvs", "nftables")

_DURATION = re.compile(r"^(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")
_INT32 = (0, 2**31 - 1)
DUR, IP, CIDRS, STRS, GATES, MAPPING, NUMBER = "duration", "ip", "cidrs", "strs", "gates", "mapping", "number"
# KubeProxyConfiguration v1alpha1 as kube-proxy 1.31-1.35 reads it (winkernel left out: Linux hosts only).
# A type, a (min, max) integer range, a tuple of allowed words, or a nested mapping.
FIELDS: dict[str, Any] = {
    "featureGates": GATES,
    "clientConnection": {
        "kubeconfig": str,
        "acceptContentTypes": str,
        "contentType": str,
        "qps": NUMBER,
        "burst": _INT32,
    },
    "logging": MAPPING,
    "hostnameOverride": str,
    "bindAddress": IP,
    "healthzBindAddress": str,
    "metricsBindAddress": str,
    "bindAddressHardFail": bool,
    "enableProfiling": bool,
    "showHiddenMetricsForVersion": str,
    "mode": ("", *MODES),
    "iptables": {
        "masqueradeBit": (0, 31),
        "masqueradeAll": bool,
        "localhostNodePorts": bool,
        "syncPeriod": DUR,
        "minSyncPeriod": DUR,
    },
    "ipvs": {
        "syncPeriod": DUR,
        "minSyncPeriod": DUR,
        "scheduler": str,
        "excludeCIDRs": CIDRS,
        "strictARP": bool,
        "tcpTimeout": DUR,
        "tcpFinTimeout": DUR,
        "udpTimeout": DUR,
    },
    "nftables": {"masqueradeBit": (0, 31), "masqueradeAll": bool, "syncPeriod": DUR, "minSyncPeriod": DUR},
    "detectLocalMode": ("", "ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix"),
    "detectLocal": {"bridgeInterface": str, "interfaceNamePrefix": str},
    "clusterCIDR": str,
    "nodePortAddresses": STRS,
    "oomScoreAdj": (-1000, 1000),
    "conntrack": {
        "maxPerCore": _INT32,
        "min": _INT32,
        "tcpEstablishedTimeout": DUR,
        "tcpCloseWaitTimeout": DUR,
        "tcpBeLiberal": bool,
        "udpTimeout": DUR,
        "udpStreamTimeout": DUR,
    },
    "configSyncPeriod": DUR,
    "portRange": str,
}


def proxy(r: Reader) -> ProxySettings:
    disabled = r.get("disabled", bool, False)
    config = r.get("config", dict, {})
    r.done()
    return ProxySettings(disabled=disabled, config=proxy_config(config, r.sub("config"), r.source))


def dns(r: Reader) -> DNSSettings:
    disabled = r.get("disabled", bool, False)
    repo, tag = r.get("imageRepository", str), r.get("imageTag", str)
    r.done()
    if repo is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.:_/-]*", repo):
        r.fail(f"{repo!r} is not an image repository like registry.example.com/k8s", "imageRepository")
    if tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        r.fail(f"{tag!r} is not an image tag like v1.12.0", "imageTag")
    return DNSSettings(disabled=disabled, image_repository=repo or None, image_tag=tag or None)


def proxy_config(raw: dict, path: str, source: str | None) -> dict[str, Any]:
    """The user's KubeProxyConfiguration fields, checked (apiVersion and kind, if given, must be
    kube-proxy's; they are not kept)."""
    out = dict(raw)
    for key, want in (("apiVersion", PROXY_API), ("kind", PROXY_KIND)):
        if key in out and out.pop(key) != want:
            raise SpecError(f"{path}.{key}", f"{raw[key]!r} is not {want}", source)
    _check(out, FIELDS, path, source)
    kubeconfig = (out.get("clientConnection") or {}).get("kubeconfig")
    if kubeconfig not in (None, "", PROXY_KUBECONFIG):
        raise SpecError(
            f"{path}.clientConnection.kubeconfig",
            f"{kubeconfig!r} is not where the kube-proxy DaemonSet mounts its kubeconfig; leave it out "
            f"(it is {PROXY_KUBECONFIG})",
            source,
        )
    return out


def _check(value: dict, schema: dict, path: str, source: str | None) -> None:
    for key, v in value.items():
        where = f"{path}.{key}"
        if key not in schema:
            raise SpecError(where, f"unknown field {key!r} (known fields: {', '.join(sorted(schema))})", source)
        _field(v, schema[key], where, source)


def _field(v: Any, kind: Any, where: str, source: str | None) -> None:
    def fail(msg: str):
        raise SpecError(where, msg, source)

    if isinstance(kind, dict) or kind == MAPPING:
        if not isinstance(v, dict):
            fail(f"must be a mapping, not {kind_of(v)}")
        if isinstance(kind, dict):
            _check(v, kind, where, source)
    elif kind is bool:
        if not isinstance(v, bool):
            fail(f"must be true or false, not {kind_of(v)}")
    elif kind is str:
        if not isinstance(v, str):
            fail(f"must be text, not {kind_of(v)}")
    elif kind == NUMBER:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            fail(f"must be a number of 0 or more, not {v!r}")
    elif isinstance(kind, tuple) and all(isinstance(k, int) for k in kind):
        lo, hi = kind
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            fail(f"must be an integer from {lo} to {hi}, not {v!r}")
    elif isinstance(kind, tuple):
        if v not in kind:
            fail(f"{v!r} is not one of {', '.join(k for k in kind if k)}")
    elif kind == DUR:
        if not isinstance(v, str) or not _DURATION.match(v):
            fail(f"{v!r} is not a duration like 30s, 1m or 1h0m0s")
    elif kind == IP:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            fail(f"{v!r} is not an IP address")
    elif kind in (STRS, CIDRS):
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            fail(f"must be a list of text, not {kind_of(v)}")
        for i, x in enumerate(v if kind == CIDRS else []):
            try:
                ipaddress.ip_network(x, strict=False)
            except ValueError:
                raise SpecError(f"{where}[{i}]", f"{x!r} is not a CIDR like 10.0.0.0/8", source) from None
    elif kind == GATES:
        if not isinstance(v, dict) or not all(isinstance(g, bool) for g in v.values()):
            fail("must map feature gate names to true or false")
    else:  # pragma: no cover - a schema entry without a check is a bug
        raise TypeError(kind)
