"""Joining nodes, as kubeadm join does it, and the two init phases that hand a join over.

join/kubelet-start (every joining host): the cluster found and trusted (token discovery on the
    node itself for `kubeinit join`; for `up`, the first control plane's CA and the run's token,
    so no discovery round trip), then kubeadm's files: ca.crt, bootstrap-kubelet.conf (0600),
    /var/lib/kubelet/config.yaml from the kube-system/kubelet-config ConfigMap, the flags, the
    unit; the kubelet started; and the wait for its TLS bootstrap (kubelet.conf, written by the
    kubelet) and its Node. A host with a kubelet.conf has joined: it only skips.
up's join/bootstrap-token (first control plane): a bootstrap token for this run, only when a
    host still has to join (so a converged re-run only skips), and the kubelet-config the
    joining hosts write.
init's show-join-command: a fresh token, and the worker's join line printed at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kubeinit.certs import tokens
from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import KubeinitError
from kubeinit.facts import Unknown, files
from kubeinit.facts.host import UnitState
from kubeinit.kube import bootstraptoken as bt
from kubeinit.kube import joining, nodestate, tlsbootstrap
from kubeinit.kube.client import ApiError, Unreachable
from kubeinit.kube.discovery import DiscoveryFailed
from kubeinit.phases import PhaseImpl, cluster_api, kubelet
from kubeinit.redact import Secret, reveal
from kubeinit.steps import ApiCall, Notice, Skip, Step

REQUEST = "join-request"  # ctx.shared: the JoinRequest of `kubeinit join`
MATERIAL = "join-material"  # ctx.shared: what up's bootstrap-token phase hands to the joining hosts
HAND_OVER = "hand-over"  # ctx.shared: lines printed after the run (they may hold a token)
CERT_KEY = "certificate-key"  # ctx.shared: the key upload-certs stored the certificates under (a Secret)
CERT_KEY_LINES = "certificate-key-lines"  # ctx.shared: upload-certs' hand-over lines naming that key alone
RUN_TOKEN_TTL = tokens.DEFAULT_TTL // 24  # an hour: long enough for a run, short-lived if it leaks


@dataclass(frozen=True)
class Material:
    """Everything a joining host needs, known where kubeinit runs."""

    server: str
    ca_pem: bytes
    token: Secret
    kubelet_config: str | None  # None: not readable yet (a dry run before the cluster exists)


def _token_secret(token: str, description: str) -> dict:
    return bt.secret_manifest(token, ttl=RUN_TOKEN_TTL, description=description)


def joining_targets(ctx: Context) -> list[Target]:
    """Every host but the first control plane: workers and the control planes that join it."""
    first = ctx.spec.first_control_plane.name
    return [t for t in ctx.targets if t.name != first]


# --- up: join/bootstrap-token on the first control plane ------------------------------------


def plan_run_token(ctx: Context, target: Target) -> Iterator[Step]:
    conf = kubelet.kubeconfig(ctx)
    todo = [t.name for t in joining_targets(ctx) if t.facts.file(conf) is None]
    if not todo:
        yield Skip("every host has joined (each has its kubelet.conf)")
        return
    ca = target.facts.read(kubelet.ca_file(ctx))
    if ca is None:
        raise KubeinitError(f"this host has no {kubelet.ca_file(ctx)}: run the certs phase first")
    token = tokens.generate_token()
    secret = _token_secret(token, f"made by kubeinit up to join {', '.join(todo)}")
    have = yield from cluster_api._read(ctx, target, [_kubelet_config_map()])
    config = None if isinstance(have, Unknown) or have[0] is None else (have[0].get("data") or {}).get("kubelet")
    if config is None:
        yield Notice("kube-system/kubelet-config cannot be read yet: the joining hosts are shown with init's")
    ctx.shared[MATERIAL] = Material(ctx.spec.api_endpoint(), ca, Secret(token), config)
    yield ApiCall(
        "apply",
        f"/api/v1/namespaces/{bt.NAMESPACE}/secrets",
        secret,
        note=f"bootstrap token {tokens.parse_token(token)[0]} (1 h) for {', '.join(todo)}",
    )


def _kubelet_config_map() -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubelet-config", "namespace": "kube-system"}}


# --- join/kubelet-start on each joining host ------------------------------------------------


def _material(ctx: Context) -> Material | Unknown:
    if MATERIAL in ctx.shared:  # up: handed over by join/bootstrap-token
        return ctx.shared[MATERIAL]
    req: joining.JoinRequest | None = ctx.shared.get(REQUEST)
    if req is None:
        raise KubeinitError("no join material: in `up`, run join/bootstrap-token first (`--only join`)")

    def find() -> Material:
        cluster = joining.trusted(req)
        token = req.bootstrap_token
        return Material(cluster.server, cluster.ca_pem, Secret(token), joining.kubelet_config(cluster, token))

    return ctx.learn(find, lambda e: isinstance(e, (Unreachable, DiscoveryFailed, ApiError)))


def plan_kubelet_start(ctx: Context, target: Target) -> Iterator[Step]:
    conf = kubelet.kubeconfig(ctx)
    if target.facts.file(conf) is not None:
        yield Skip(f"{target.name} has joined: the kubelet wrote {conf} in its TLS bootstrap")
        state = target.facts.get(UnitState("kubelet"))
        if state.active != "active" or state.enabled != "enabled":
            yield from _start_only()
        nodes = _registered(ctx)
        if isinstance(nodes, set) and target.host.name not in nodes:
            # a run killed between the kubelet's bootstrap and its Node: wait for the Node, as the join would
            yield _bootstrap_wait(conf, target)
        return
    resolved = target.facts.get(UnitState("systemd-resolved")).active == "active"
    m = _material(ctx)
    if isinstance(m, Unknown):
        yield Notice(f"the cluster cannot be found yet ({m.error}): the files are shown with init's settings")
        m = Material(ctx.spec.api_endpoint(), b"", Secret("abcdef.0123456789abcdef"), None)
    yield from ensure_file(target, kubelet.ca_file(ctx), m.ca_pem, 0o644, "the cluster CA")
    from kubeinit import kubeconfig as kc

    boot = kc.bootstrap(m.server, kc.b64(m.ca_pem), reveal(m.token), ctx.spec.name)
    yield from ensure_file(target, kubelet.bootstrap_kubeconfig(ctx), Secret(boot), 0o600, "bootstrap-kubelet.conf")
    config = joining.for_this_node(m.kubelet_config or kubelet.config_yaml(ctx, False), resolved)
    yield from kubelet.plan_kubelet_start(ctx, target, config)
    yield _bootstrap_wait(conf, target)


def _bootstrap_wait(conf: str, target: Target) -> ApiCall:
    return ApiCall(
        tlsbootstrap.VERB,
        conf,
        {"node": target.host.name},
        note=f"the kubelet's TLS bootstrap ({conf}) and node {target.host.name} registered",
        timeout=tlsbootstrap.TIMEOUT,
        watch="kubelet",
    )


_NODES = threading.Lock()


def _registered(ctx: Context) -> set[str] | Unknown | None:
    """The Nodes' names, read once per `up` through the first control plane (Unknown while a dry
    run cannot ask it); None for `kubeinit join` on the node itself, where no control plane is a
    target of the run: there a kubelet.conf is taken as joined."""
    first = next((t for t in ctx.targets if t.name == ctx.spec.first_control_plane.name), None)
    if first is None or REQUEST in ctx.shared:
        return None
    with _NODES:
        if "join-nodes" not in ctx.shared:
            client = ctx.kube(first)
            ctx.shared["join-nodes"] = ctx.learn(
                lambda: {n.name for n in nodestate.read(client)},
                lambda e: isinstance(e, (Unreachable, ApiError)),
            )
        return ctx.shared["join-nodes"]


def _start_only() -> Iterator[Step]:
    from kubeinit.steps import Run

    yield Run(("systemctl", "enable", "--now", "kubelet"), note="enable and start the kubelet")


# --- init: show-join-command -----------------------------------------------------------------


def plan_show_join_command(ctx: Context, target: Target) -> Iterator[Step]:
    from kubeinit.certs.pin import ca_pin

    ca = target.facts.read(kubelet.ca_file(ctx))
    if ca is None:
        raise KubeinitError(f"this host has no {kubelet.ca_file(ctx)}: run the certs phase first")
    token = tokens.generate_token()
    yield ApiCall(
        "apply",
        f"/api/v1/namespaces/{bt.NAMESPACE}/secrets",
        bt.secret_manifest(token, description="made by kubeinit init for joining nodes"),
        note=f"bootstrap token {tokens.parse_token(token)[0]} (24 h) for the join command",
    )
    endpoint = ctx.spec.api_endpoint().removeprefix("https://")
    line = f"kubeinit join {endpoint} --token {token} --discovery-token-ca-cert-hash {ca_pin(ca)}"
    lines = ctx.shared.setdefault(HAND_OVER, [])
    lines.extend(["To join a worker, run this on it as root:", f"  {line}"])
    key = ctx.shared.get(CERT_KEY)
    if key is None:
        lines.append(
            "To join a control plane, upload the certificates first (`kubeinit init phase upload-certs "
            "--upload-certs` prints the line with its --certificate-key)."
        )
    else:  # the key is printed once: in the control-plane line, instead of upload-certs' own lines
        lines[:] = [x for x in lines if x not in ctx.shared.get(CERT_KEY_LINES, [])]
        lines.extend(
            [
                "To join a control plane, run this on it as root (keep the key secret: it opens the CA keys, for 2 h):",
                f"  {line} --control-plane --certificate-key {str(reveal(key))}",
            ]
        )
    yield Notice("the join command is printed at the end of the run")


KUBELET_START = PhaseImpl(plan_kubelet_start, kubelet.facts, preload=kubelet.preload)
RUN_TOKEN = PhaseImpl(plan_run_token, lambda ctx, t: files([kubelet.ca_file(ctx)]))
SHOW_JOIN_COMMAND = PhaseImpl(plan_show_join_command, lambda ctx, t: files([kubelet.ca_file(ctx)]))
