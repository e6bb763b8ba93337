"""certs/<name>: kubeadm's PKI under the cert dir, made where kubeinit runs.

The library (kubeinit.certs.pki) decides from the files already there what
to make and what to reuse; this phase only reads them and turns the answer
into uploads. Keys travel as Secrets, so no plan or log ever shows them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import timedelta

from kubeinit.certs import catalogue, pki
from kubeinit.context import Context, Target, ensure_file
from kubeinit.phases import NamedPhase
from kubeinit.redact import Secret
from kubeinit.spec import ClusterSpec, Host
from kubeinit.steps import Notice, Skip, Step


def pki_config(spec: ClusterSpec, host: Host) -> catalogue.PKIConfig:
    return catalogue.PKIConfig(
        node_name=host.name,
        advertise_address=host.address,
        service_subnet=spec.networking.service_subnet,
        dns_domain=spec.networking.dns_domain,
        control_plane_endpoint=spec.control_plane_endpoint,
        apiserver_cert_sans=tuple(spec.pki.cert_sans),
        algorithm=spec.pki.algorithm,
        validity=timedelta(hours=spec.pki.validity_hours),
        ca_validity=timedelta(hours=spec.pki.ca_validity_hours),
        cluster_name=spec.name,
        bind_port=spec.bind_port,
    )


def all_pki_paths() -> list[str]:
    paths = [p for s in catalogue.CATALOGUE for p in (s.crt, s.key)]
    return [*paths, "sa.key", "sa.pub"]


def existing_pki(ctx: Context, target: Target) -> dict[str, bytes]:
    """The cert dir as the host has it (plus what this run already planned)."""
    full = {rel: posixpath.join(ctx.cert_dir, rel) for rel in all_pki_paths()}
    got = target.facts.read_many(full.values())
    return {rel: data for rel, path in full.items() if (data := got[path]) is not None}


def plan_cert(ctx: Context, target: Target, name: str) -> Iterator[Step]:
    plan = pki.plan_pki(pki_config(ctx.spec, target.host), existing_pki(ctx, target), only=[name])
    for w in plan.warnings:
        yield Notice(w)
    for f in plan.files:
        content = Secret(f.content) if f.mode == pki.KEY_MODE else f.content
        yield from ensure_file(target, posixpath.join(ctx.cert_dir, f.path), content, f.mode)
    for rel in plan.reused:
        yield Skip(f"using the existing {posixpath.join(ctx.cert_dir, rel)}")
    if plan.external_cas:
        ctx.shared["external_cas"] = set(plan.external_cas)


CERT = NamedPhase(plan_cert)  # bound to a certificate's name by the tree
