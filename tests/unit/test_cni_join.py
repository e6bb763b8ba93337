"""join's cni phase: a node joined with `kubeinit join` sets up its share of the pod network from
what it reads with its own kubelet.conf: networking.cni (kubeadm-config's annotation, written by
init's upload-config/kubeadm), the pod range, and the Nodes. Against the RBAC-strict API-server
double; the joining host's facts are given parsed."""

from __future__ import annotations

import json

import pytest
from apiserver import RBAC, make_cluster
from factsstub import FactsStub, NoHost
from test_cluster_api import View
from test_cni_plan import make_spec, register, stub

from kubeinit.apply import execute
from kubeinit.certs.catalogue import PKIConfig
from kubeinit.certs.kubeconfig import plan_kubeconfigs
from kubeinit.cli.join import local_spec
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.kube import joining
from kubeinit.phases import cni_bridge, cni_join
from kubeinit.steps import Notice, Run, Skip, Upload
from kubeinit.workflow import find, init_phases, join_phases

KUBELET_CONF = "/etc/kubernetes/kubelet.conf"


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path / "cluster")
    # kube-apiserver's Node authorizer lets every node read Nodes (its nodeRules); the double has
    # only RBAC, so the same grant is given to system:nodes here, and nothing more
    c.api.objects[("clusterroles", "", "test:node-authorizer")] = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": "test:node-authorizer", "namespace": ""},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}],
    }
    c.api.objects[("clusterrolebindings", "", "test:node-authorizer")] = {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "test:node-authorizer", "namespace": ""},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "test:node-authorizer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
    }
    yield c
    c.api.stop()


def init_with(cluster, cni: str) -> None:
    """init's upload-config/kubeadm for a cluster of this pod network (kubeadm-config and its RBAC)."""
    spec = make_spec(cluster, cni)
    ctx = Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options())
    execute(ctx, [find(init_phases(), "upload-config/kubeadm")], View())
    ctx.close()


def kubelet_conf(cluster, node: str) -> bytes:
    """What the kubelet's TLS bootstrap leaves: a client certificate of system:node:<node>, group system:nodes."""
    cfg = PKIConfig(node_name=node, advertise_address="127.0.0.1", bind_port=cluster.api.port, algorithm="ECDSA-P256")
    ca_key = (cluster.root / "pki" / "ca.key").read_bytes()
    (f,) = plan_kubeconfigs(cfg, cluster.ca_pem, ca_key, {}, only=["kubelet.conf"]).files
    return f.content


class Host(NoHost):
    """Answers reads of these files (None for any other)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def read(self, path):
        return self.files.get(path)


def plan(cluster, joined: bool = True) -> list:
    spec = local_spec(joining.JoinRequest(endpoint=f"127.0.0.1:{cluster.api.port}", node_name="w-1"))
    me = next(h for h in spec.hosts if h.local)
    given = stub()
    # kubelet-start's facts saw no kubelet.conf: the kubelet wrote it afterwards, in its TLS bootstrap
    host = Host({KUBELET_CONF: kubelet_conf(cluster, "w-1")} if joined else {})
    s = FactsStub(given._given, {KUBELET_CONF: None}, conn=host)
    t = Target(me, lambda h: LocalConnection(h.name), facts=s)
    ctx = Context(spec, [t], Options())
    declared = cni_join.JOIN.facts(ctx, t)
    t.facts.gather(declared)
    t.facts.declared = set(declared)
    try:
        return list(cni_join.JOIN.plan(ctx, t))
    finally:
        ctx.close()


def test_a_joined_node_on_bridge_writes_its_conflist_and_routes_to_the_nodes_there(cluster):
    init_with(cluster, "bridge")
    register(cluster, "cp-1", "10.244.0.0/24", "192.168.50.10")
    register(cluster, "w-1", "10.244.1.0/24", "192.168.50.11")
    steps = plan(cluster)
    files = {s.path: s.data.decode() for s in steps if isinstance(s, Upload)}
    conf = json.loads(files[cni_bridge.CONFLIST])
    assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    script = files[cni_bridge.SCRIPT]
    assert "ip route replace 10.244.0.0/24 via 192.168.50.10 proto 147" in script
    assert "-s 10.244.1.0/24 ! -d 10.244.0.0/16" in script, "the pod range read from kubeadm-config"
    assert [type(s) for s in steps].count(Run) == 1
    assert any(isinstance(s, Notice) and "kubeinit init phase cni" in s.text for s in steps)


@pytest.mark.parametrize("cni", ["flannel", "none"])
def test_a_pod_network_of_daemonsets_or_the_users_writes_nothing_on_the_node(cluster, cni):
    init_with(cluster, cni)
    register(cluster, "w-1", "10.244.1.0/24", "192.168.50.11")
    steps = plan(cluster)
    assert [type(s) for s in steps] == [Skip] and f"networking.cni is {cni}" in steps[0].reason


def test_a_node_not_joined_yet_is_told_so_and_the_cluster_is_not_asked(cluster):
    cluster.api.stop()  # nothing may be asked
    steps = plan(cluster, joined=False)
    assert [type(s) for s in steps] == [Notice] and "has not joined yet" in steps[0].text


def test_a_cluster_kubeinit_did_not_make_gets_nothing_and_a_notice(cluster):
    init_with(cluster, "bridge")
    cm = cluster.api.objects[("configmaps", "kube-system", "kubeadm-config")]
    cm["metadata"].pop("annotations")
    steps = plan(cluster)
    assert [type(s) for s in steps] == [Notice] and "does not name the pod network" in steps[0].text


def test_cni_is_joins_last_phase():
    assert [p.path for p in join_phases() for p in p.leaves()][-1] == "cni"
