"""The API phases of init (wait-control-plane, upload-config, bootstrap-token) run by the
executor against the API-server test double (tests/unit/apiserver.py), reached as kubeinit
reaches a control plane: admin.conf read from the host, the server dialled through the
host's connection (here this machine's), TLS checked against the cluster CA."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import yaml
from apiserver import make_cluster
from phase_harness import View, cluster_file, run_phases
from sshserver import client_key, server  # noqa: F401 (fixtures)

from kubeinit import spec as specmod
from kubeinit.errors import StepFailed
from kubeinit.kube import admins, objects
from kubeinit.kube.client import Client, Unreachable
from kubeinit.steps import Notice

PHASES = ["wait-control-plane", "upload-config/kubeadm", "upload-config/kubelet", "bootstrap-token"]
MARK = ["mark-control-plane"]


@pytest.fixture
def cluster(tmp_path):
    """The control plane as init's API phases find it: admin.conf is not bound to anything yet, so
    the phases must make ClusterRoleBinding kubeadm:cluster-admins (with super-admin.conf) first."""
    c = make_cluster(tmp_path / "cluster", admins_bound=False)
    yield c
    c.api.stop()


def make_spec(cluster, pod_subnet: str = "10.244.0.0/16"):
    return specmod.from_dict(
        cluster_file(
            cluster,
            kubernetesVersion="v1.33.1",
            networking={"podSubnet": pod_subnet},
            components={"apiServer": {"extraArgs": {"audit-log-maxage": "7"}}},
        )
    )


def run(cluster, spec=None, dry_run=False, phases=PHASES, view=None):
    return run_phases(spec or make_spec(cluster), phases, view, dry_run=dry_run)


def register_node(cluster, name: str = "cp-1", taints: list | None = None) -> None:
    """What the kubelet does when it starts: the Node object, with labels of its own."""
    cluster.api.objects[("nodes", "", name)] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "namespace": "",
            "uid": "u1",
            "resourceVersion": "5",
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": name},
        },
        "spec": {"taints": taints or [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
    }


def cm(cluster, ns, name) -> dict:
    return cluster.api.objects[("configmaps", ns, name)]


def test_the_phases_write_kubeadms_objects_and_a_rerun_only_skips(cluster):
    summary = run(cluster)
    api = cluster.api
    assert summary.total_changed == 15, summary.changed  # the binding, 3 + 3 + 8 objects; waiting changes nothing
    # upload-config/kubeadm: a ClusterConfiguration kubeadm (and kubeinit) read back
    conf = yaml.safe_load(cm(cluster, "kube-system", "kubeadm-config")["data"]["ClusterConfiguration"])
    assert (conf["apiVersion"], conf["kind"]) == ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration")
    back = specmod.load_documents([conf])
    assert back.kubernetes_version == "v1.33.1" and back.networking.pod_subnet == "10.244.0.0/16"
    assert back.extra_args["apiServer"] == {"audit-log-maxage": "7"}
    assert conf["etcd"]["external"]["endpoints"] == ["https://127.0.0.1:2379"]
    # upload-config/kubelet: the KubeletConfiguration kubelet-start writes
    kubelet = yaml.safe_load(cm(cluster, "kube-system", "kubelet-config")["data"]["kubelet"])
    assert kubelet["kind"] == "KubeletConfiguration" and kubelet["clusterDNS"] == ["10.96.0.10"]
    # RBAC as kubeadm makes it (reference §4.3, §4.8)
    crb = {
        n: (o["roleRef"]["name"], [(s["kind"], s["name"]) for s in o["subjects"]])
        for (r, _, n), o in api.objects.items()
        if r == "clusterrolebindings"
    }
    bootstrappers = [("Group", "system:bootstrappers:kubeadm:default-node-token")]
    assert crb == {
        "kubeadm:cluster-admins": ("cluster-admin", [("Group", "kubeadm:cluster-admins")]),  # admin.conf's group
        "kubeadm:kubelet-bootstrap": ("system:node-bootstrapper", bootstrappers),
        "kubeadm:get-nodes": ("kubeadm:get-nodes", bootstrappers),
        "kubeadm:node-autoapprove-bootstrap": (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            bootstrappers,
        ),
        "kubeadm:node-autoapprove-certificate-rotation": (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [("Group", "system:nodes")],
        ),
    }
    role = api.objects[("roles", "kube-public", "kubeadm:bootstrap-signer-clusterinfo")]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"], "verbs": ["get"]}
    ]
    binding = api.objects[("rolebindings", "kube-public", "kubeadm:bootstrap-signer-clusterinfo")]
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("User", "system:anonymous")]
    readers = api.objects[("rolebindings", "kube-system", "kubeadm:nodes-kubeadm-config")]["subjects"]
    assert [s["name"] for s in readers] == ["system:bootstrappers:kubeadm:default-node-token", "system:nodes"]
    # cluster-info: admin.conf's server and CA, client-go's layout, no users
    info = cm(cluster, "kube-public", "cluster-info")["data"]["kubeconfig"]
    admin = yaml.safe_load(cluster.admin_conf.read_text())["clusters"][0]["cluster"]
    parsed = yaml.safe_load(info)
    assert parsed["clusters"] == [
        {
            "cluster": {"certificate-authority-data": admin["certificate-authority-data"], "server": admin["server"]},
            "name": "",
        }
    ]
    assert parsed["users"] is None and info.endswith("users: null\n")

    # admin.conf was refused, so super-admin.conf made its binding: that one request, nothing else
    assert [(m, p) for m, p, u in api.requests if u == "kubernetes-super-admin"] == [
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
    ]
    assert api.connections == 2, "one kept connection for admin.conf's requests, one for super-admin.conf's"
    writes = [r for r in api.requests if r[0] in ("POST", "PUT")]
    again = run(cluster)
    assert again.total_changed == 0, again.changed
    assert [r for r in api.requests if r[0] in ("POST", "PUT")] == writes, "a re-run writes nothing"


def test_a_changed_setting_replaces_only_that_object_and_keeps_what_others_added(cluster):
    run(cluster)
    # the bootstrapsigner controller signs cluster-info with a key of its own: not kubeinit's to remove
    key = ("configmaps", "kube-public", "cluster-info")
    cluster.api.objects[key]["data"]["jws-kubeconfig-abcdef"] = "eyJ..sig"
    summary = run(cluster, make_spec(cluster, pod_subnet="10.50.0.0/16"))
    assert summary.total_changed == 1
    conf = yaml.safe_load(cm(cluster, "kube-system", "kubeadm-config")["data"]["ClusterConfiguration"])
    assert conf["networking"]["podSubnet"] == "10.50.0.0/16"
    assert cluster.api.objects[key]["data"]["jws-kubeconfig-abcdef"] == "eyJ..sig"


def test_dry_run_reads_the_cluster_and_writes_nothing(cluster):
    view = View()
    run(cluster, dry_run=True, view=view)  # admin.conf may read nothing yet: every object is shown as new
    notes = [s.text for e in view.events if e[0] == "planned" for s in e[3] if isinstance(s, Notice)]
    assert any(
        "is not a cluster admin yet: the run makes ClusterRoleBinding kubeadm:cluster-admins with "
        "super-admin.conf first" in n
        for n in notes
    ), notes
    cluster.api.objects[("clusterrolebindings", "", "kubeadm:cluster-admins")] = dict(admins.BINDING)  # as a run does
    run(cluster, dry_run=True)
    assert not [r for r in cluster.api.requests if r[0] not in ("GET",)]
    assert any(r[1].endswith("/configmaps/kubeadm-config") for r in cluster.api.requests), "facts were read"


def test_wait_gives_up_with_one_clear_sentence(cluster, tmp_path):
    client = Client.from_kubeconfig(cluster.admin_conf)
    objects.wait_ready(client, "/readyz", timeout=2)  # the double is ready
    cluster.api.stop()
    client.close()  # the double's stop leaves kept connections open; a stopped API server's close
    with pytest.raises(
        Unreachable,
        match=r"did not answer /readyz with ok within 1 s \(last: cannot reach the API "
        r"server .*connection refused\).*`journalctl -u kubelet`.*`crictl logs "
        r"\$\(crictl ps -q --name kube-apiserver\)`",
    ):
        objects.wait_ready(client, "/readyz", timeout=1, interval=0.2)


def test_wait_keeps_asking_a_server_that_is_not_listening_then_starting(tmp_path):
    """As in a real init: the wait starts before the API server listens; then it answers 403
    (no RBAC roles yet), then /readyz 500, then ok. kubeadm's waiter asks again through all of it."""
    c = make_cluster(tmp_path / "cluster", start=False)
    c.api.starting(forbidden=2, unready=2)
    late = threading.Timer(1.0, c.start)
    late.start()
    try:
        summary = run(c, phases=["wait-control-plane"])
    finally:
        late.join()
        c.api.stop()
    assert summary.total_changed == 0
    readyz = [r for r in c.api.requests if r[1] == "/readyz"]
    assert len(readyz) == 5, readyz  # 403, 403, 500, 500, ok


def test_wait_times_out_on_a_server_that_stays_forbidden_with_its_last_answer(cluster):
    cluster.api.starting(forbidden=1000, unready=0)
    client = Client.from_kubeconfig(cluster.admin_conf)
    with pytest.raises(
        Unreachable,
        match=r"within 1 s \(last: it answered 403 Forbidden: forbidden: User "
        r"\"kubernetes-admin\" cannot get path \"/readyz\"\)",
    ):
        objects.wait_ready(client, "/readyz", timeout=1, interval=0.2)


def test_no_admin_conf_on_the_host_is_a_clear_failure(cluster):
    (cluster.root / "admin.conf").unlink()
    with pytest.raises(
        StepFailed,
        match=r"cp-1: phase wait-control-plane failed .*has no .*admin\.conf: "
        r"run the kubeconfig phase first",
    ):
        run(cluster)


def test_over_ssh_the_api_is_reached_through_the_hosts_connection(cluster, server, client_key, tmp_path):
    """As `kubeinit up` does from a workstation: admin.conf is read over SSH and the API server
    is dialled through the SSH connection (direct-tcpip to the host's 127.0.0.1)."""
    from kubeinit.spec import SSHOptions
    from kubeinit.ssh import SSHConnection

    kh = tmp_path / "known_hosts"
    kh.write_text(server.known_hosts_line())
    spec = make_spec(cluster)
    host = dataclasses.replace(spec.hosts[0], ssh=SSHOptions(user="root", port=server.port, key=client_key[1]))
    spec = dataclasses.replace(spec, hosts=(host, *spec.hosts[1:]))
    summary = run_phases(spec, PHASES, connect=lambda h: SSHConnection(h, known_hosts=kh))
    assert summary.total_changed == 15
    assert cluster.api.connections == 2, "one tunnel and TLS handshake for admin.conf, one for super-admin.conf"
    assert any(c.startswith("cat -- ") and c.endswith("admin.conf") for c in server.commands)


def test_mark_control_plane_adds_kubeadms_labels_and_taint_and_keeps_the_kubelets(cluster):
    threading.Timer(1.0, register_node, args=(cluster,)).start()  # the kubelet registers a moment later
    assert run(cluster, phases=MARK).total_changed == 2  # kubeadm:cluster-admins, then the node
    node = cluster.api.objects[("nodes", "", "cp-1")]
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "cp-1",
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
    }
    assert node["spec"]["taints"] == [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
    ]
    assert run(cluster, phases=MARK).total_changed == 0, "a marked node is left alone"


def test_a_node_that_never_registers_is_one_sentence(cluster, monkeypatch):
    from kubeinit.phases import cluster_api

    monkeypatch.setattr(cluster_api, "READY_SECONDS", 1)
    with pytest.raises(StepFailed, match=r"node cp-1 did not register within 1 s; is its kubelet running"):
        run(cluster, phases=MARK)
