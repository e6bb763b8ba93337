"""admin.conf's authority (kubeinit/kube/admins.py, kubeadm's EnsureAdminClusterRoleBinding):
its group kubeadm:cluster-admins is nothing until the ClusterRoleBinding kubeadm:cluster-admins
exists; the API phases make it with super-admin.conf when admin.conf is refused. Against the
API-server double, whose authorizer is RBAC with system:masters as the only superuser."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from apiserver import make_cluster
from test_cluster_api import View, make_spec, run

from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError, StepFailed
from kubeinit.kube import admins
from kubeinit.kube.client import ApiError, Client
from kubeinit.workflow import find, init_phases

CONFIGMAPS = "/api/v1/namespaces/kube-system/configmaps"


@pytest.fixture
def unbound(tmp_path):
    """A control plane before init's API phases; the authorizer honours a binding 1 s after it is
    written, as kube-apiserver's does."""
    c = make_cluster(tmp_path / "cluster", admins_bound=False, binding_delay=1.0)
    yield c
    c.api.stop()


def test_the_double_authorizes_as_rbac_does(unbound):
    api = unbound.api
    admin = Client.from_kubeconfig(unbound.admin_conf)
    with pytest.raises(ApiError, match=r'403 Forbidden: configmaps is forbidden: User "kubernetes-admin" cannot list'):
        admin.list(CONFIGMAPS)  # kubeadm:cluster-admins is no group of superusers
    assert Client.from_kubeconfig(unbound.kubeconfig("super-admin.conf")).list(CONFIGMAPS)["items"] == []
    # a RoleBinding grants in its namespace only, and resourceNames only those objects
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "kube-system"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "r", "namespace": "kube-system"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubernetes-admin"}],
    }
    api.objects[("roles", "kube-system", "r")] = role
    api.objects[("rolebindings", "kube-system", "r")] = binding
    assert api.allowed(("kubernetes-admin", ()), "get", "configmaps", "kube-system", "a")
    assert not api.allowed(("kubernetes-admin", ()), "get", "configmaps", "kube-system", "b")
    assert not api.allowed(("kubernetes-admin", ()), "list", "configmaps", "kube-system")
    assert not api.allowed(("kubernetes-admin", ()), "get", "configmaps", "kube-public", "a")
    assert not api.allowed(("kubernetes-admin", ()), "get", "secrets", "kube-system", "a")


def test_the_phases_bind_admin_conf_with_super_admin_conf_and_wait_until_it_is_honoured(unbound):
    assert run(unbound, phases=["upload-config/kubeadm"]).total_changed == 4  # the binding is a step of its own
    api = unbound.api
    crb = api.objects[("clusterrolebindings", "", "kubeadm:cluster-admins")]
    assert crb["roleRef"]["name"] == "cluster-admin"
    assert [(s["kind"], s["name"]) for s in crb["subjects"]] == [("Group", "kubeadm:cluster-admins")]
    made = api.requests.index(
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "kubernetes-super-admin")
    )
    polls = [r for r in api.requests[made + 1 :] if r[1].endswith("/clusterrolebindings/kubeadm:cluster-admins")]
    assert len(polls) >= 2, "admin.conf was asked again until the authorizer honoured the binding"
    assert [r for r in api.requests if r[2] == "kubernetes-super-admin"] == [api.requests[made]], (
        "super-admin.conf is used for the binding and nothing else"
    )
    if shutil.which("kubectl"):  # and the real client, as the admin, may now read the cluster
        got = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(unbound.admin_conf),
                "-n",
                "kube-system",
                "get",
                "configmaps",
                "kubeadm-config",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert got.returncode == 0 and got.stdout.strip() == "configmap/kubeadm-config", got.stderr
    before = list(api.requests)
    assert run(unbound, phases=["upload-config/kubeadm", "bootstrap-token"]).total_changed == 8
    assert not [r for r in api.requests[len(before) :] if r[2] == "kubernetes-super-admin"], "bound: not asked again"


def test_without_super_admin_conf_a_refused_admin_conf_is_one_clear_line(unbound):
    (unbound.root / "super-admin.conf").unlink()
    with pytest.raises(
        StepFailed,
        match=r"cp-1: phase upload-config/kubeadm failed at 'api ensure ClusterRoleBinding "
        r"kubeadm:cluster-admins \(with super-admin\.conf\)': .*admin\.conf's user "
        r"'kubernetes-admin' may do nothing \(403 Forbidden\): the ClusterRoleBinding "
        r"kubeadm:cluster-admins is missing and there is no super-admin\.conf .*"
        r"kubectl create clusterrolebinding kubeadm:cluster-admins "
        r"--clusterrole=cluster-admin --group=kubeadm:cluster-admins",
    ):
        run(unbound, phases=["upload-config/kubeadm"])
    assert not [r for r in unbound.api.requests if r[0] != "GET"]


def test_waiting_needs_no_binding(unbound):
    """wait-control-plane reads /readyz, which a real server serves to anyone: no binding is made for it."""
    assert run(unbound, phases=["wait-control-plane"]).total_changed == 0
    assert ("clusterrolebindings", "", "kubeadm:cluster-admins") not in unbound.api.objects


def test_a_binding_the_authorizer_never_honours_ends_in_one_sentence(unbound):
    del unbound.api.objects[("clusterroles", "", "cluster-admin")]  # the RBAC bootstrap never made it
    admin = Client.from_kubeconfig(unbound.admin_conf)
    sup = Client.from_kubeconfig(unbound.kubeconfig("super-admin.conf"))
    with pytest.raises(
        KubeinitError,
        match=r"'kubernetes-admin' was still refused 1 s after ClusterRoleBinding "
        r"kubeadm:cluster-admins was made with super-admin\.conf \(last: 403 "
        r"Forbidden: .*\); does the API server authorize with RBAC",
    ):
        admins.ensure(admin, lambda: sup, timeout=1, interval=0.2)


def test_an_admin_conf_allowed_otherwise_makes_the_binding_itself(tmp_path):
    """An admin.conf of system:masters (kubeadm before 1.29) may read, so it makes the binding itself."""
    c = make_cluster(tmp_path / "c", admins_bound=False)
    try:
        sup = Client.from_kubeconfig(c.kubeconfig("super-admin.conf"))
        assert admins.ensure(sup, lambda: None) == "made ClusterRoleBinding kubeadm:cluster-admins with admin.conf"
        assert admins.ensure(sup, lambda: None) == ""
        assert [r[0] for r in c.api.requests] == ["GET", "POST", "GET"]
    finally:
        c.api.stop()


ENSURE = "api ensure ClusterRoleBinding kubeadm:cluster-admins (with super-admin.conf)"


def test_planning_only_reads_and_a_dry_run_shows_the_ensure_step_once(unbound):
    """The binding is a step the executor applies, not a write made while planning: a plan asks
    the server only with GET, and a --dry-run shows the step (in the first phase that needs it)."""
    spec = make_spec(unbound)
    ctx = Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options())
    steps = list(find(init_phases(), "upload-config/kubeadm").impl().plan(ctx, ctx.targets[0]))
    assert steps[0].describe() == ENSURE
    assert unbound.api.requests and not [r for r in unbound.api.requests if r[0] != "GET"], "planning wrote"
    assert ("clusterrolebindings", "", "kubeadm:cluster-admins") not in unbound.api.objects
    ctx.close()

    view = View()
    run(unbound, dry_run=True, view=view, phases=["upload-config/kubeadm", "bootstrap-token"])
    planned = [s.describe() for e in view.events if e[0] == "planned" for s in e[3]]
    assert planned.count(ENSURE) == 1, planned
    assert not [r for r in unbound.api.requests if r[0] != "GET"], "a dry run wrote"


def test_a_bound_cluster_plans_no_ensure_step(unbound):
    unbound.api.objects[("clusterrolebindings", "", "kubeadm:cluster-admins")] = dict(admins.BINDING)
    view = View()
    run(unbound, dry_run=True, view=view, phases=["upload-config/kubeadm"])
    planned = [s.describe() for e in view.events if e[0] == "planned" for s in e[3]]
    assert not [d for d in planned if "ensure" in d], planned


def test_a_dry_run_before_the_server_answers_shows_the_ensure_step(unbound):
    """The fact is Unknown then (Context.learn): the plan shows what a real run does first."""
    unbound.api.stop()
    view = View()
    run(unbound, dry_run=True, view=view, phases=["upload-config/kubeadm"])
    planned = [s.describe() for e in view.events if e[0] == "planned" for s in e[3]]
    assert planned[0] == ENSURE and "the API server does not answer yet" in planned[1], planned
