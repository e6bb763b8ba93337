"""delete cluster frees the cluster's load balancers first: Services of type LoadBalancer are
deleted through the cluster's API (the API-server double of tests/unit/apiserver.py stands for
the cluster; it authenticates EKS tokens as aws-iam-authenticator does, by their signature)."""

from __future__ import annotations

import base64
import sys
import urllib.parse

import pytest
from managed_testlib import ROOT, SECRETS, create_cmd, delete_cmd, succeeds
from test_eks_token import _decode, _sigv4

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from apiserver import make_cluster  # noqa: E402

from kubeinit.kube.client import Client, namespaced

ADMIN = ("kubernetes-admin", ("system:masters",))


@pytest.fixture
def kube(tmp_path):
    c = make_cluster(tmp_path / "kube")
    yield c
    c.api.stop()


def _services(kube, *specs):
    admin = Client.from_kubeconfig(kube.admin_conf)
    for ns, name, kind in specs:
        admin.create(
            namespaced("services", ns),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"type": kind, "ports": [{"port": 80}]},
            },
        )
    admin.close()


def _left(kube) -> list[str]:
    return sorted(f"{ns}/{name}" for (r, ns, name) in kube.api.objects if r == "services")


def _eks_review(tok: str):
    """aws-iam-authenticator's check, done locally: a presigned GetCallerIdentity for this cluster,
    correctly signed with the test's key."""
    if not tok.startswith("k8s-aws-v1."):
        return None
    url = _decode(tok)
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    if "x-k8s-aws-id" not in q.get("X-Amz-SignedHeaders", "").split(";"):
        return None
    ok = _sigv4(SECRETS["aws_secret"], url, {"host": parts.netloc, "x-k8s-aws-id": "demo"}) == q["X-Amz-Signature"]
    return ADMIN if ok else None


def _eks_cluster(aws, cli, kube):
    from moto.eks.models import eks_backends

    succeeds(cli, *create_cmd("eks", "--region", "eu-west-1", "--subnets", "subnet-a,subnet-b"))
    cluster = eks_backends["123456789012"]["eu-west-1"].clusters["demo"]  # where the cluster's API is
    cluster.endpoint = kube.api.url
    cluster.certificate_authority = {"data": base64.b64encode(kube.ca_pem).decode()}
    kube.api.review = _eks_review


def test_eks_delete_removes_load_balancer_services_first(aws, cli, kube):
    _eks_cluster(aws, cli, kube)
    _services(
        kube,
        ("default", "web", "LoadBalancer"),
        ("kube-public", "front", "LoadBalancer"),
        ("default", "internal", "ClusterIP"),
    )
    kube.api.requests.clear()
    r = succeeds(cli, *delete_cmd("eks"))
    assert "deleted Service default/web (type LoadBalancer)" in r.output and "kube-public/front" in r.output
    assert _left(kube) == ["default/internal"]
    deletes = [p for m, p, _ in kube.api.requests if m == "DELETE"]
    assert sorted(deletes) == [
        "/api/v1/namespaces/default/services/web",
        "/api/v1/namespaces/kube-public/services/front",
    ]
    assert all(user == "kubernetes-admin" for _, _, user in kube.api.requests)  # by the minted EKS token
    out = r.output
    assert "k8s-aws-v1." not in out and SECRETS["aws_secret"] not in out
    # the load balancers went before the cluster: the output says so in that order
    assert out.index("deleted Service") < out.index("deleted EKS cluster demo")


def test_keep_load_balancers_leaves_them(aws, cli, kube):
    _eks_cluster(aws, cli, kube)
    _services(kube, ("default", "web", "LoadBalancer"))
    kube.api.requests.clear()
    succeeds(cli, *delete_cmd("eks", "--keep-load-balancers"))
    assert _left(kube) == ["default/web"] and kube.api.requests == []


def test_unreachable_api_warns_and_deletes_the_cluster(aws, cli, kube):
    _eks_cluster(aws, cli, kube)
    kube.api.stop()
    r = succeeds(cli, *delete_cmd("eks"))
    assert "could not delete the cluster's LoadBalancer Services" in r.output
    assert "EKS cluster demo deleted" in r.output


def test_gke_delete_removes_load_balancer_services(gke, cli, kube):
    succeeds(cli, *create_cmd("gke", "--zone", "europe-west1-b", "--project", "proj-1"))
    c = gke.clusters[("proj-1", "europe-west1-b", "demo")]
    c["endpoint"] = f"127.0.0.1:{kube.api.port}"
    c["masterAuth"]["clusterCaCertificate"] = base64.b64encode(kube.ca_pem).decode()
    kube.api.review = lambda tok: ADMIN if tok == SECRETS["gcp_token"] else None  # GKE's token webhook
    _services(kube, ("default", "web", "LoadBalancer"), ("default", "db", "ClusterIP"))
    r = succeeds(cli, *delete_cmd("gke"))
    assert _left(kube) == ["default/db"] and SECRETS["gcp_token"] not in r.output


def test_aks_delete_removes_load_balancer_services(aks, cli, kube, monkeypatch):
    monkeypatch.setattr(aks, "api_server", kube.api.url)  # the cluster's API, in its user credentials
    monkeypatch.setattr(aks, "api_ca_b64", base64.b64encode(kube.ca_pem).decode())
    kube.api.tokens[SECRETS["aks_user_token"]] = ("clusterUser", ("system:masters",))
    succeeds(cli, *create_cmd("aks", "--location", "westeurope", "--nodes", "1"))
    _services(kube, ("default", "web", "LoadBalancer"), ("default", "db", "ClusterIP"))
    r = succeeds(cli, *delete_cmd("aks"))
    assert _left(kube) == ["default/db"] and SECRETS["aks_user_token"] not in r.output
    assert all(user == "clusterUser" for m, _, user in kube.api.requests if m == "DELETE")


def test_dry_run_says_it_and_sends_nothing(aws, gke, aks, cli, kube):
    _eks_cluster(aws, cli, kube)
    aws.requests.clear()
    kube.api.requests.clear()
    r = cli("delete", "cluster", "--provider", "eks", "--name", "demo", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "delete every Service of type LoadBalancer" in r.output
    assert aws.requests == [] and kube.api.requests == []
