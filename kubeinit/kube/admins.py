"""admin.conf's authority over the cluster, made sure of as kubeadm >= 1.29 does it
(`EnsureAdminClusterRoleBinding`, reference §3).

admin.conf's user is in the group kubeadm:cluster-admins, which may do nothing until the
ClusterRoleBinding kubeadm:cluster-admins binds it to the ClusterRole cluster-admin. A plan reads
whether admin.conf may read that binding (a fact: Unknown while the server cannot be asked yet)
and, unless it may, yields a step; the executor applies it: it asks with admin.conf; when that is
refused, it makes the binding with super-admin.conf (system:masters: authorised without RBAC; kept
on the first control plane only and used for nothing else), then waits until the authorizer lets
admin.conf in: it honours a new binding about a second later, and only once the server's RBAC
bootstrap has made the ClusterRole cluster-admin.

    state(admin) -> ALLOWED | MISSING | REFUSED    (reads only)
    plan(ctx, target) -> the fact, after yielding the ensure step when it is needed
    ensure(admin, super_admin) -> what was done, "" when admin.conf was allowed
    apply(ctx, target, step) -> ensure() for the executor's ApiCall "ensure-admins"
    NotAuthorized      admin.conf is refused until the ensure step has run
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from kubeinit.errors import KubeinitError
from kubeinit.facts import Unknown
from kubeinit.kube import objects
from kubeinit.kube.client import ApiError, Client, Unreachable
from kubeinit.steps import ApiCall, Step

if TYPE_CHECKING:
    from kubeinit.context import Context, Target

NAME = "kubeadm:cluster-admins"  # the binding and the group share kubeadm's name
BINDING = {
    "apiVersion": objects.RBAC,
    "kind": "ClusterRoleBinding",
    "metadata": {"name": NAME},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": NAME}],
}
TIMEOUT = 60.0  # kubeadm's KubernetesAPICall timeout
INTERVAL = 0.5  # kubeadm's KubernetesAPICallRetryInterval
SUPER_ADMIN = "super-admin.conf"
BIND_YOURSELF = (
    f"kubectl create clusterrolebinding {NAME} --clusterrole=cluster-admin --group={NAME} (as a system:masters user)"
)
VERB = "ensure-admins"

ALLOWED = "allowed"  # the binding is there and admin.conf may read it
MISSING = "missing"  # admin.conf may (through something else: an older system:masters admin.conf); no binding
REFUSED = "refused"  # 403: admin.conf may do nothing yet


class NotAuthorized(Unreachable):
    """admin.conf is refused; the run makes the binding first (the ensure step)."""


def state(admin: Client, timeout: float = TIMEOUT, interval: float = INTERVAL) -> str:
    """Whether `admin` may read the binding, read only. A server that is not reachable raises
    Unreachable at once (wait-control-plane waits for it); 5xx/429 are asked again (a server starting)."""
    deadline = time.monotonic() + timeout
    while True:  # the binding, read as admin.conf: 200 it may, 403 it may not (yet)
        try:
            admin.get(objects.item(BINDING))
            return ALLOWED
        except ApiError as e:
            if e.code == 403:
                return REFUSED
            if e.code == 404:
                return MISSING
            if e.code == 401 or time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def step(via: str) -> ApiCall:
    return ApiCall(VERB, objects.item(BINDING), dict(BINDING), timeout=TIMEOUT, via=via)


def plan(ctx: Context, target: Target) -> Generator[Step, None, str | Unknown]:
    """The fact (ALLOWED, MISSING, REFUSED or Unknown), after yielding the ensure step unless
    admin.conf is allowed; returned by `yield from`. Once per run and host: a later phase sees what
    the executor made sure of, or that an earlier phase planned the step and it was not applied."""
    known = ctx.shared.setdefault("kube-admins", {})
    if known.get(target.name) in (ALLOWED, REFUSED):  # REFUSED: planned, not applied
        return known[target.name]
    got = ctx.learn(lambda: state(ctx.kube(target)), lambda e: isinstance(e, Unreachable))
    if got == ALLOWED:
        known[target.name] = ALLOWED
        return got
    yield step("admin.conf" if got == MISSING else SUPER_ADMIN)
    if not isinstance(got, Unknown):
        known[target.name] = REFUSED  # until the executor has applied the step
    return got


def refused(admin: Client) -> NotAuthorized:
    return NotAuthorized(
        f"{_who(admin)} is not a cluster admin yet: the run makes ClusterRoleBinding {NAME} with {SUPER_ADMIN} first"
    )


def ensure(
    admin: Client, super_admin: Callable[[], Client | None], timeout: float = TIMEOUT, interval: float = INTERVAL
) -> str:
    """Make sure `admin` may do everything; -> a sentence on what was done ("" for nothing).
    A server that is not reachable raises Unreachable at once (wait-control-plane waits for it)."""
    path = objects.item(BINDING)
    who = _who(admin)
    deadline = time.monotonic() + timeout
    got = state(admin, timeout, interval)
    if got == ALLOWED:
        return ""
    if got == MISSING:  # allowed through something else (an older system:masters admin.conf)
        _create(admin, deadline, interval, "admin.conf")
        return f"made ClusterRoleBinding {NAME} with admin.conf"
    sup = super_admin()
    if sup is None:
        raise KubeinitError(
            f"{who} may do nothing (403 Forbidden): the ClusterRoleBinding {NAME} is missing and "
            f"there is no {SUPER_ADMIN} beside it to make it; run the kubeconfig phase on the "
            f"first control plane (`kubeinit init phase kubeconfig super-admin`), or: {BIND_YOURSELF}"
        )
    try:
        _create(sup, deadline, interval, SUPER_ADMIN)
    finally:
        sup.close()
    last = ""
    while True:  # until the authorizer honours it (and the RBAC bootstrap has made cluster-admin)
        try:
            admin.get(path)
            return f"made ClusterRoleBinding {NAME} with {SUPER_ADMIN}: admin.conf is a cluster admin"
        except (ApiError, Unreachable) as e:
            if isinstance(e, ApiError) and e.code == 401:
                raise
            last = _short(e)
        if time.monotonic() >= deadline:
            raise KubeinitError(
                f"{who} was still refused {timeout:.0f} s after ClusterRoleBinding {NAME} was made "
                f"with {SUPER_ADMIN} (last: {last}); does the API server authorize with RBAC "
                "(--authorization-mode=Node,RBAC) and has it made the ClusterRole cluster-admin? "
                f"`kubectl --kubeconfig {SUPER_ADMIN} get clusterrole cluster-admin` shows it"
            )
        time.sleep(interval)


def _who(admin: Client) -> str:
    return f"{admin.kubeconfig}'s user {admin.user!r}"


def _create(client: Client, deadline: float, interval: float, via: str) -> None:
    """POST the binding (already there is as good), asking again while the server is starting."""
    while True:
        try:
            client.create(objects.collection(BINDING), BINDING)
            return
        except ApiError as e:
            if e.reason == "AlreadyExists":
                return
            if e.code == 401 or time.monotonic() >= deadline:
                raise KubeinitError(f"cannot make ClusterRoleBinding {NAME} with {via}: {e}") from None
        except Unreachable as e:
            if time.monotonic() >= deadline:
                raise KubeinitError(f"cannot make ClusterRoleBinding {NAME} with {via}: {e}") from None
        time.sleep(interval)


def _short(e: Exception) -> str:
    if isinstance(e, ApiError):
        return f"{e.code} {e.reason}" + (f": {e.detail[:160]}" if e.detail else "")
    return str(e).split(";", 1)[0]


def apply(ctx, target, call: ApiCall) -> str:
    """The executor's ensure step: ensure() with admin.conf, super-admin.conf read from the
    target (the first control plane) over its connection only if admin.conf is refused."""

    def super_admin() -> Client | None:
        path = posixpath.join(ctx.kubeconfig_dir, SUPER_ADMIN)
        data = target.facts.read(path)
        if data is None:
            return None
        port = ctx.spec.bind_port
        return Client.from_kubeconfig_data(
            data, f"{target.name}:{path}", dial=lambda: target.conn.dial("127.0.0.1", port)
        )

    done = ensure(ctx.kube(target), super_admin, timeout=call.timeout or TIMEOUT)
    ctx.shared.setdefault("kube-admins", {})[target.name] = ALLOWED
    return done
