"""kubeconfig/<name>: kubeadm's kubeconfig files, signed by the cluster CA."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from kubeinit.certs import kubeconfig as kc
from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import UserError
from kubeinit.phases import NamedPhase
from kubeinit.phases.certs import pki_config
from kubeinit.redact import Secret
from kubeinit.steps import Notice, Skip, Step


def plan_kubeconfig(ctx: Context, target: Target, name: str) -> Iterator[Step]:
    spec = kc.select([name])[0]
    ca_crt_path = posixpath.join(ctx.cert_dir, "ca.crt")
    path = posixpath.join(ctx.kubeconfig_dir, spec.file)
    got = target.facts.read_many([ca_crt_path, posixpath.join(ctx.cert_dir, "ca.key"), path])
    ca_crt, ca_key, current = got.values()
    if ca_crt is None:
        raise UserError(f"{ca_crt_path} does not exist; run the certs phase first (`kubeinit init phase certs ca`)")
    plan = kc.plan_kubeconfigs(
        pki_config(ctx.spec, target.host),
        ca_crt,
        ca_key,
        {spec.file: current} if current is not None else {},
        only=[name],
    )
    for w in plan.warnings:
        yield Notice(w)
    for f in plan.files:
        yield from ensure_file(target, posixpath.join(ctx.kubeconfig_dir, f.path), Secret(f.content), f.mode)
    for rel in plan.reused:
        yield Skip(f"using the existing {posixpath.join(ctx.kubeconfig_dir, rel)}")


KUBECONFIG = NamedPhase(plan_kubeconfig)  # bound to a kubeconfig's name by the tree
