"""What `kubeinit join` is told, and how it finds the cluster from it (kubeadm join's discovery).

    JoinRequest        the flags, or a JoinConfiguration (kubeadm.k8s.io/v1beta4) given with --config
    trusted(request)   -> Cluster: the server and CA, by token discovery (kube/discovery.py) or a
                       --discovery-file kubeconfig (its CA checked against the server's cluster-info)
    kubelet_config(cluster, token) -> the KubeletConfiguration kubeadm's kubelet-config ConfigMap holds,
                       read as the bootstrap token (the RBAC upload-config/kubelet grants it)

Nothing here writes anything: a failed discovery leaves the host as it was.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubeinit import kubeconfig as kc
from kubeinit.certs import tokens
from kubeinit.errors import NotAvailableYet, UserError
from kubeinit.kube import discovery
from kubeinit.kube.client import ApiError, Client
from kubeinit.redact import Secret, reveal

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_CONFIG = "/api/v1/namespaces/kube-system/configmaps/kubelet-config"


@dataclass(frozen=True)
class JoinRequest:
    endpoint: str = ""  # host:port of the API server (token discovery)
    token: Secret | None = None  # --token: discovery and TLS bootstrap
    pins: tuple[str, ...] = ()
    unsafe_skip_ca_verification: bool = False
    discovery_file: str = ""
    tls_bootstrap_token: Secret | None = None
    node_name: str | None = None
    control_plane: bool = False
    certificate_key: Secret | None = None  # --certificate-key: opens the kubeadm-certs Secret (upload-certs)
    advertise_address: str = ""  # --apiserver-advertise-address (default: the default route's interface)
    discovery_timeout: float = discovery.TIMEOUT
    kubelet_extra_args: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap_token(self) -> str:
        """The token the kubelet bootstraps with (kubeadm: --tls-bootstrap-token, else --token)."""
        return _text(self.tls_bootstrap_token or self.token)

    def check(self) -> None:
        """kubeadm's validation of the discovery options: exactly one way to find the cluster."""
        if self.control_plane and self.certificate_key is None:  # the shared CAs come from the kubeadm-certs Secret
            raise UserError(
                "join --control-plane needs --certificate-key (the key `kubeinit init phase upload-certs "
                "--upload-certs` printed)"
            )
        if self.discovery_file:
            if self.endpoint or self.pins:
                raise UserError("--discovery-file cannot be mixed with an endpoint or --discovery-token-ca-cert-hash")
            if not self.bootstrap_token:
                raise UserError("with --discovery-file, give --tls-bootstrap-token (or --token) for the kubelet")
        else:
            if not self.endpoint:
                raise UserError("give the API server's host:port (or --discovery-file)")
            if self.token is None:
                raise UserError(
                    "give --token (kubeinit token create --print-join-command on a control plane prints it)"
                )
            if not self.pins and not self.unsafe_skip_ca_verification:
                raise UserError(
                    "give --discovery-token-ca-cert-hash sha256:<hash> (the join command prints it), or "
                    "--discovery-token-unsafe-skip-ca-verification"
                )
        if self.bootstrap_token:
            tokens.parse_token(self.bootstrap_token)  # a malformed token: exit 2 before anything is asked


def from_config(path: str, given: JoinRequest) -> JoinRequest:
    """A JoinConfiguration document (v1beta4); flags given as well win, as with kubeadm's --config."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"--config {path}: cannot read it ({e})") from None
    joins = [d for d in docs if isinstance(d, dict) and d.get("kind") == "JoinConfiguration"]
    if len(joins) != 1 or joins[0].get("apiVersion") != KUBEADM_API:
        raise UserError(f"--config {path}: expected one JoinConfiguration of apiVersion {KUBEADM_API}")
    j = joins[0]
    d = j.get("discovery") or {}
    bt, df = d.get("bootstrapToken") or {}, d.get("file") or {}
    nr = j.get("nodeRegistration") or {}
    extra = {a["name"]: str(a.get("value", "")) for a in nr.get("kubeletExtraArgs") or [] if isinstance(a, dict)}
    timeout = (j.get("timeouts") or {}).get("discovery")
    seconds = given.discovery_timeout
    if timeout:
        from kubeinit.kube.bootstraptoken import parse_duration

        seconds = parse_duration(str(timeout), "timeouts.discovery").total_seconds()
    token = given.token or (Secret(bt["token"]) if bt.get("token") else None)
    tls = given.tls_bootstrap_token or (Secret(d["tlsBootstrapToken"]) if d.get("tlsBootstrapToken") else None)
    cp = j.get("controlPlane") or {}
    cp_key = cp.get("certificateKey")
    advertise = (cp.get("localAPIEndpoint") or {}).get("advertiseAddress") or ""
    return JoinRequest(
        endpoint=given.endpoint or bt.get("apiServerEndpoint", ""),
        token=token,
        pins=given.pins or tuple(bt.get("caCertHashes") or ()),
        unsafe_skip_ca_verification=given.unsafe_skip_ca_verification or bool(bt.get("unsafeSkipCAVerification")),
        discovery_file=given.discovery_file or df.get("kubeConfigPath", ""),
        tls_bootstrap_token=tls,
        node_name=given.node_name or nr.get("name"),
        control_plane=given.control_plane or "controlPlane" in j,
        certificate_key=given.certificate_key or (Secret(str(cp_key)) if cp_key else None),
        advertise_address=given.advertise_address or str(advertise),
        discovery_timeout=seconds,
        kubelet_extra_args={**extra, **given.kubelet_extra_args},
    )


def _text(secret: Secret | None) -> str:
    v = reveal(secret) if secret is not None else ""
    return v.decode() if isinstance(v, bytes) else v


@dataclass(frozen=True)
class Cluster:
    """The cluster a node joins, trusted: its API server's URL and CA."""

    server: str
    ca_pem: bytes

    def tls(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        return ctx


def trusted(req: JoinRequest) -> Cluster:
    if req.discovery_file:
        return _from_file(req.discovery_file)
    found = discovery.discover(
        req.endpoint,
        _text(req.token),
        list(req.pins),
        req.unsafe_skip_ca_verification,
        timeout=req.discovery_timeout,
    )
    return Cluster(found["server"], base64.b64decode(found["certificate-authority-data"]))


def _from_file(path: str) -> Cluster:
    """kubeadm's file discovery: the kubeconfig's cluster, checked by reading cluster-info with its CA."""
    if path.startswith(("https://", "http://")):
        raise NotAvailableYet("a --discovery-file URL", "download it and give its path")
    try:
        text = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"--discovery-file {path}: cannot read it ({e.strerror or e})") from None
    conf = kc.load(text, f"--discovery-file {path}")
    cluster = kc.current(conf, f"--discovery-file {path}").cluster
    server = cluster.get("server") or ""
    ca = cluster.get("certificate-authority-data")
    if ca:
        ca_pem = base64.b64decode(ca)
    elif cluster.get("certificate-authority"):
        ca_pem = (Path(path).parent / cluster["certificate-authority"]).read_bytes()
    else:
        raise UserError(f"--discovery-file {path}: its cluster names no certificate authority to trust")
    found = Cluster(server, ca_pem)
    try:
        Client(server, found.tls(), kubeconfig=f"--discovery-file {path}").get(discovery.CLUSTER_INFO)
    except ApiError as e:
        raise discovery.DiscoveryFailed(f"the cluster at {server} has no readable cluster-info ({e})") from None
    return found


def kubelet_config(cluster: Cluster, token: str) -> str:
    """data.kubelet of kube-system/kubelet-config, read as the bootstrap token."""
    client = Client(cluster.server, cluster.tls(), token=token, kubeconfig="(bootstrap token)")
    try:
        cm = client.get(KUBELET_CONFIG)
    except ApiError as e:
        raise discovery.DiscoveryFailed(
            f"cannot read kube-system/kubelet-config from {cluster.server} with the bootstrap token ({e}); "
            "run init's upload-config/kubelet and bootstrap-token phases on the control plane"
        ) from None
    finally:
        client.close()
    text = (cm.get("data") or {}).get("kubelet")
    if not text:
        raise discovery.DiscoveryFailed(f"kube-system/kubelet-config on {cluster.server} holds no `kubelet` key")
    return text


RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"


def for_this_node(config: str, resolved_active: bool) -> str:
    """kubeadm's per-node mutation of the cluster's KubeletConfiguration: with systemd-resolved
    running, the kubelet reads the real upstream servers, not the 127.0.0.53 stub."""
    if resolved_active and "resolvConf:" not in config:
        return config.rstrip("\n") + f"\nresolvConf: {RESOLVED_CONF}\n"
    return config
