"""control-plane-prepare on a joining control plane, as kubeadm join's:

download-certs   the cluster's shared CAs and keys (kubeadm's list: ca, sa, front-proxy-ca, etcd/ca),
                 read from the first control plane over its SSH connection and uploaded here, so no
                 kubeadm-certs Secret is needed in `up`; a host holding another cluster's CA is refused
certs            this host's own certificates (API server, etcd server and peer, the clients), made
                 fresh where kubeinit runs with the host's name and address, signed by those CAs
kubeconfig       admin.conf (at the controlPlaneEndpoint), controller-manager.conf and scheduler.conf
control-plane    the static pod manifests of kube-apiserver, kube-controller-manager, kube-scheduler

Each is init's phase of the same name applied to this host, so a re-run only skips. `kubeinit join
--control-plane --certificate-key` fetches the shared certificates from the kubeadm-certs Secret instead
(kube/copycerts.py), with the join's bootstrap token; a host holding them all, with the CA discovery
trusted, only skips (the Secret lives 2 h: a re-run later still converges).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator

from kubeinit.certs import pki, sealed
from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import KubeinitError, NotAvailableYet, UserError
from kubeinit.facts import Fact, Unknown, files
from kubeinit.kube import copycerts, joining
from kubeinit.kube.client import Unreachable
from kubeinit.kube.discovery import DiscoveryFailed
from kubeinit.kube.joining import JoinRequest
from kubeinit.phases import PhaseImpl, certs, control_plane, kubeconfig
from kubeinit.phases.join import REQUEST
from kubeinit.redact import Secret, reveal
from kubeinit.steps import Notice, Skip, Step

# kubeadm's copycerts list (cmd/kubeadm/app/phases/copycerts), relative to the cert dir, with its modes
SHARED = {
    "ca.crt": pki.CERT_MODE,
    "ca.key": pki.KEY_MODE,
    "sa.key": pki.KEY_MODE,
    "sa.pub": pki.PUBLIC_KEY_MODE,
    "front-proxy-ca.crt": pki.CERT_MODE,
    "front-proxy-ca.key": pki.KEY_MODE,
    "etcd/ca.crt": pki.CERT_MODE,
    "etcd/ca.key": pki.KEY_MODE,
}
NODE_CERTS = (
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "etcd-server",
    "etcd-peer",
    "etcd-healthcheck-client",
    "apiserver-etcd-client",
)
KUBECONFIGS = ("admin", "controller-manager", "scheduler")  # kubeadm join writes no super-admin.conf
COMPONENTS = ("apiserver", "controller-manager", "scheduler")


def first_target(ctx: Context) -> Target:
    """The first control plane, as this run reaches it (`up`); `kubeinit join` has none."""
    first = ctx.spec.first_control_plane.name
    for t in ctx.targets:
        if t.name == first:
            return t
    raise NotAvailableYet(
        "joining a control plane outside `kubeinit up` (the shared certificates from the kubeadm-certs Secret)",
        "list the host as a control plane in the cluster file and run `kubeinit up`",
    )


def _shared_paths(ctx: Context) -> dict[str, str]:
    return {rel: posixpath.join(ctx.cert_dir, rel) for rel in SHARED}


def plan_download_certs(ctx: Context, target: Target) -> Iterator[Step]:
    paths = _shared_paths(ctx)
    if REQUEST in ctx.shared:  # `kubeinit join --control-plane`: from the kubeadm-certs Secret
        if _has_them(ctx, target, ctx.shared[REQUEST]):
            yield Skip("this host has the shared CAs and keys, with the cluster's CA")
            return
        got = _from_secret(ctx, ctx.shared[REQUEST])
        if isinstance(got, Unknown):
            yield Notice(f"the kubeadm-certs Secret cannot be read yet ({got.error}): the shared files are not shown")
            return
        theirs, where, again = got, "in Secret kube-system/kubeadm-certs", "join again"
    else:
        first = first_target(ctx)
        read = first.facts.read_many(paths.values())
        theirs, where, again = (
            {rel: read[path] for rel, path in paths.items()},
            f"on {first.name}",
            "run `kubeinit up` again",
        )
        if theirs["ca.crt"] is None:
            raise KubeinitError(
                f"{first.name} has no {paths['ca.crt']} to share: run the certs phase first "
                "(`kubeinit up --only certs`)"
            )
    for rel, path in paths.items():
        data = theirs[rel]
        if not data:  # an external CA keeps its key elsewhere: the leaves must be given instead
            yield Notice(f"no {rel} {where}: not copied")
            continue
        have = target.facts.file(path)
        if have is not None and have.sha256 != hashlib.sha256(data).hexdigest():
            raise KubeinitError(
                f"{path} on this host is not the cluster's (the one {where}): it is left from another "
                f"cluster; reset this host (`kubeinit reset` on it) and {again}"
            )
        mode = SHARED[rel]
        content = Secret(data) if mode == pki.KEY_MODE else data
        yield from ensure_file(target, path, content, mode, f"{rel}, shared, {where}")


def _has_them(ctx: Context, target: Target, req: JoinRequest) -> bool:
    paths = _shared_paths(ctx)
    have = target.facts.file(paths["ca.crt"])
    if have is None or any(target.facts.file(p) is None for p in paths.values()):
        return False
    cluster = ctx.learn(lambda: joining.trusted(req), lambda e: isinstance(e, (Unreachable, DiscoveryFailed)))
    return not isinstance(cluster, Unknown) and have.sha256 == hashlib.sha256(cluster.ca_pem).hexdigest()


def _from_secret(ctx: Context, req: JoinRequest) -> dict[str, bytes | None] | Unknown:
    """The shared files in the kubeadm-certs Secret (kubeadm's DownloadCerts), or Unknown in a dry run
    that cannot reach the cluster yet."""
    if req.certificate_key is None:
        raise UserError("join --control-plane needs --certificate-key (the key `init --upload-certs` printed)")
    key = str(sealed.key_of(str(reveal(req.certificate_key))).value)  # a JoinConfiguration's is unchecked

    def fetch() -> dict[str, bytes | None]:
        got = copycerts.download(joining.trusted(req), req.bootstrap_token, key)
        missing = [rel for rel in SHARED if rel.replace("/", "-") not in got]
        if missing:
            raise KubeinitError(
                f"Secret kube-system/kubeadm-certs holds no {missing[0]}: upload the certificates again"
            )
        return {rel: got[rel.replace("/", "-")] for rel in SHARED}

    return ctx.learn(fetch, lambda e: isinstance(e, (Unreachable, DiscoveryFailed)))


def plan_certs(ctx: Context, target: Target) -> Iterator[Step]:
    for name in NODE_CERTS:
        yield from certs.plan_cert(ctx, target, name)


def plan_kubeconfigs(ctx: Context, target: Target) -> Iterator[Step]:
    for name in KUBECONFIGS:
        yield from kubeconfig.plan_kubeconfig(ctx, target, name)


def plan_control_plane(ctx: Context, target: Target) -> Iterator[Step]:
    for name in COMPONENTS:
        yield from control_plane.plan_component(ctx, target, name)


def _download_facts(ctx: Context, target: Target) -> list[Fact]:
    return files(_shared_paths(ctx).values())


DOWNLOAD_CERTS = PhaseImpl(plan_download_certs, _download_facts)
CERTS = PhaseImpl(plan_certs)
KUBECONFIG = PhaseImpl(plan_kubeconfigs)
CONTROL_PLANE = PhaseImpl(plan_control_plane, control_plane.facts, preload=control_plane.preload)
