"""admin.conf's authority over the cluster, made sure of as kubeadm >= 1.29 does it
(`EnsureAdminClusterRoleBinding`, reference §3).

admin.conf's user is in the group kubeadm:cluster-admins, which may do nothing until the
ClusterRoleBinding kubeadm:cluster-admins binds it to the ClusterRole cluster-admin. On a run's
first use of the API as the admin, kubeinit asks with admin.conf; when that is refused, it makes
the binding with super-admin.conf (system:masters: authorised without RBAC; kept on the first
control plane only and used for nothing else), then waits until the authorizer lets admin.conf
in: it honours a new binding about a second later, and only once the server's RBAC bootstrap has
made the ClusterRole cluster-admin.

    ensure(admin, super_admin, dry_run=False) -> what was done, "" when admin.conf was allowed
    admin(ctx, target) -> ctx.kube(target), made sure of once per run and host
    NotAuthorized      (--dry-run) admin.conf is refused and nothing may be written to fix it
"""

from __future__ import annotations

import posixpath
import time
from typing import Callable

from kubeinit.errors import KubeinitError
from kubeinit.kube import objects
from kubeinit.kube.client import ApiError, Client, Unreachable

NAME = "kubeadm:cluster-admins"  # the binding and the group share kubeadm's name
BINDING = {"apiVersion": objects.RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": NAME},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": NAME}]}
TIMEOUT = 60.0  # kubeadm's KubernetesAPICall timeout
INTERVAL = 0.5  # kubeadm's KubernetesAPICallRetryInterval
SUPER_ADMIN = "super-admin.conf"
BIND_YOURSELF = (f"kubectl create clusterrolebinding {NAME} --clusterrole=cluster-admin --group={NAME} "
                 f"(as a system:masters user)")


class NotAuthorized(Unreachable):
    """--dry-run: admin.conf is refused; a real run would make the binding first."""


def ensure(admin: Client, super_admin: Callable[[], Client | None], dry_run: bool = False,
           timeout: float = TIMEOUT, interval: float = INTERVAL) -> str:
    """Make sure `admin` may do everything; -> a sentence on what was done ("" for nothing).
    A server that is not reachable raises Unreachable at once (wait-control-plane waits for it)."""
    path = objects.item(BINDING)
    who = f"{admin.kubeconfig}'s user {admin.user!r}"
    deadline = time.monotonic() + timeout
    while True:  # the binding, read as admin.conf: 200 it may, 403 it may not (yet)
        try:
            admin.get(path)
            return ""
        except ApiError as e:
            if e.code == 403:
                break
            if e.code == 404:  # allowed through something else (an older system:masters admin.conf)
                if dry_run:
                    return f"would make ClusterRoleBinding {NAME} with admin.conf"
                _create(admin, deadline, interval, "admin.conf")
                return f"made ClusterRoleBinding {NAME} with admin.conf"
            if e.code == 401 or time.monotonic() >= deadline:
                raise
        time.sleep(interval)  # 5xx/429: a server still starting
    if dry_run:
        raise NotAuthorized(f"{who} is not a cluster admin yet: the run makes ClusterRoleBinding {NAME} with "
                            f"{SUPER_ADMIN} first")
    sup = super_admin()
    if sup is None:
        raise KubeinitError(f"{who} may do nothing (403 Forbidden): the ClusterRoleBinding {NAME} is missing and "
                            f"there is no {SUPER_ADMIN} beside it to make it; run the kubeconfig phase on the "
                            f"first control plane (`kubeinit init phase kubeconfig super-admin`), or: {BIND_YOURSELF}")
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
            raise KubeinitError(f"{who} was still refused {timeout:.0f} s after ClusterRoleBinding {NAME} was made "
                                f"with {SUPER_ADMIN} (last: {last}); does the API server authorize with RBAC "
                                "(--authorization-mode=Node,RBAC) and has it made the ClusterRole cluster-admin? "
                                f"`kubectl --kubeconfig {SUPER_ADMIN} get clusterrole cluster-admin` shows it")
        time.sleep(interval)


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


def admin(ctx, target) -> Client:
    """The cluster's API server as its admin (ctx.kube), made sure of on the run's first use on
    this host; what was done is kept in ctx.shared for the phase to show (pop_note)."""
    client = ctx.kube(target)
    done = ctx.shared.setdefault("kube-admins", {})
    if target.name not in done:
        def super_admin() -> Client | None:
            path = posixpath.join(ctx.kubeconfig_dir, SUPER_ADMIN)
            data = target.facts.read(path)
            if data is None:
                return None
            port = ctx.spec.bind_port
            return Client.from_kubeconfig_data(data, f"{target.name}:{path}",
                                               dial=lambda: target.conn.dial("127.0.0.1", port))

        done[target.name] = ensure(client, super_admin, dry_run=ctx.options.dry_run)
        if done[target.name]:
            ctx.shared.setdefault("kube-admin-notes", {})[target.name] = done[target.name]
    return client


def pop_note(ctx, target) -> str:
    """What admin() did on this host, once."""
    return ctx.shared.get("kube-admin-notes", {}).pop(target.name, "")
