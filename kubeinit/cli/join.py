"""`kubeinit join`: this host joins a cluster as a worker, with kubeadm join's flags and phases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeinit import workflow

from .options import DryRun, Ignore, Skip, ignore_set

Token = Annotated[
    str | None,
    typer.Option(help="The bootstrap token, for discovery and the TLS bootstrap (kept secret).", show_default=False),
]
TlsToken = Annotated[
    str | None,
    typer.Option(help="The token the kubelet bootstraps with (default: --token).", show_default=False),
]
DiscoveryFile = Annotated[
    str | None,
    typer.Option(help="A kubeconfig with the cluster's server and CA, instead of token discovery.", show_default=False),
]
NodeName = Annotated[str | None, typer.Option(help="This node's name (default: the host name).", show_default=False)]
Pins = Annotated[
    list[str] | None,
    typer.Option(
        "--discovery-token-ca-cert-hash", help="The CA's public key pin, sha256:<hex> (repeatable).", show_default=False
    ),
]
Unsafe = Annotated[
    bool,
    typer.Option("--discovery-token-unsafe-skip-ca-verification", help="Trust the cluster without a CA pin (unsafe)."),
]
JoinConfig = Annotated[
    Path | None, typer.Option("--config", help="A JoinConfiguration (kubeadm.k8s.io/v1beta4).", show_default=False)
]


def request(
    endpoint,
    token,
    pins,
    unsafe,
    discovery_file,
    tls_token,
    node_name,
    control_plane,
    config,
    cert_key=None,
    advertise=None,
):
    from kubeinit.certs.sealed import key_of
    from kubeinit.kube import joining
    from kubeinit.redact import Secret

    req = joining.JoinRequest(
        endpoint=endpoint or "",
        token=Secret(token) if token else None,
        pins=tuple(pins or ()),
        unsafe_skip_ca_verification=unsafe,
        discovery_file=discovery_file or "",
        tls_bootstrap_token=Secret(tls_token) if tls_token else None,
        node_name=node_name,
        control_plane=control_plane,
        certificate_key=key_of(cert_key) if cert_key else None,
        advertise_address=advertise or "",
    )
    if config is not None:
        req = joining.from_config(str(config), req)
    return req


def local_spec(req):
    """This host as a worker of a cluster it knows only by its endpoint (not a target of any phase)."""
    from kubeinit.localhost import default_address, local_hostname
    from kubeinit.spec.model import ClusterSpec, Host

    where = req.endpoint or "the cluster of --discovery-file"
    host = req.endpoint.rsplit(":", 1)[0].strip("[]") if req.endpoint else "0.0.0.0"
    return ClusterSpec(
        source="(kubeinit join)",
        control_plane_endpoint=req.endpoint or None,
        extra_args={"kubelet": dict(req.kubelet_extra_args)} if req.kubelet_extra_args else {},
        hosts=(
            Host(name=where, address=host, role="control-plane"),
            Host(name=req.node_name or local_hostname(), address=default_address(), role="worker", local=True),
        ),
    )


def control_plane_spec(req):
    """This host as a control plane joining the cluster, with the cluster's settings (its kubeadm-config)."""
    from kubeinit.kube import cpjoin, joining
    from kubeinit.localhost import default_address, local_hostname

    settings = cpjoin.read(joining.trusted(req), req.bootstrap_token)
    return cpjoin.control_plane_spec(
        req, settings, req.node_name or local_hostname(), req.advertise_address or default_address()
    )


def join(
    api_server_endpoint: Annotated[
        str | None, typer.Argument(help="host:port of the API server.", show_default=False)
    ] = None,
    token: Token = None,
    discovery_token_ca_cert_hash: Pins = None,
    discovery_token_unsafe_skip_ca_verification: Unsafe = False,
    discovery_file: DiscoveryFile = None,
    tls_bootstrap_token: TlsToken = None,
    node_name: NodeName = None,
    config: JoinConfig = None,
    control_plane: Annotated[
        bool, typer.Option("--control-plane", help="Join as a control plane (with --certificate-key).")
    ] = False,
    certificate_key: Annotated[
        str | None,
        typer.Option(help="With --control-plane: the key that opens the kubeadm-certs Secret.", show_default=False),
    ] = None,
    apiserver_advertise_address: Annotated[
        str | None,
        typer.Option(
            help="With --control-plane: this host's address for its API server and etcd (default: the default "
            "route's interface).",
            show_default=False,
        ),
    ] = None,
    skip_phases: Skip = None,
    ignore_preflight_errors: Ignore = None,
    dry_run: DryRun = False,
):
    """Join this host to a cluster as a worker (kubeadm join's phases): discovery, bootstrap-kubelet.conf,
    the kubelet, and the wait for its TLS bootstrap and Node; with --control-plane also the shared
    certificates from the kubeadm-certs Secret, its own certificates, kubeconfigs, static pods and etcd member."""
    from kubeinit.phases.join import REQUEST
    from kubeinit.runner import Run, run_workflow, skip_hint

    req = request(
        api_server_endpoint,
        token,
        discovery_token_ca_cert_hash,
        discovery_token_unsafe_skip_ca_verification,
        discovery_file,
        tls_bootstrap_token,
        node_name,
        control_plane,
        config,
        certificate_key,
        apiserver_advertise_address,
    )
    req.check()
    if dry_run:  # one look at the cluster, not kubeadm's 5 minutes of asking again
        import dataclasses

        req = dataclasses.replace(req, discovery_timeout=0)
    phases = workflow.select(workflow.join_phases(), None, skip_phases)
    run_workflow(
        Run(
            "join",
            control_plane_spec(req) if req.control_plane else local_spec(req),
            phases,
            lambda _p: "kubeinit join again with the same flags (a re-run skips what is done)",
            skip_hint,
            dry_run,
            ignore_set(ignore_preflight_errors),
            shared={REQUEST: req},
        )
    )
