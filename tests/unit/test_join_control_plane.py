"""`kubeinit join --control-plane` on the host itself: the cluster's settings read from kubeadm-config
with the join line's bootstrap token against the RBAC-strict API-server double (tests/unit/apiserver.py),
then up's joining-control-plane phases planned for this host (FactsStub): the kubeadm-certs Secret,
the etcd member added through the member kubeadm-config names, the Node marked through this host's
own admin.conf, and a re-run after the Secret expired only skipping download-certs."""

from __future__ import annotations

import hashlib

import pytest
from factsstub import FactsStub
from phase_harness import cluster_file, publish_cluster_info, run_phases
from test_upload_certs import NODE_TOKEN, SHARED, cluster, upload  # noqa: F401 (fixture)

from kubeinit import spec as specmod
from kubeinit.certs.pin import ca_pin, certificate_key
from kubeinit.cli.join import control_plane_spec
from kubeinit.context import Context, Options, Target
from kubeinit.errors import UserError
from kubeinit.facts import FileState
from kubeinit.kube import copycerts, joining
from kubeinit.kube.client import Client
from kubeinit.phases import cp_prepare, etcd_join, join
from kubeinit.redact import Secret
from kubeinit.steps import ApiCall, Skip, Upload
from kubeinit.workflow import join_phases

PKI_REL = "pki"


def publish(cluster, **fields) -> None:
    """init's upload-config/kubeadm for a cluster file with `fields`, then cluster-info signed for the token."""
    run_phases(specmod.from_dict(cluster_file(cluster, **fields)), ["upload-config/kubeadm"])
    publish_cluster_info(cluster)


@pytest.fixture
def ha(cluster):
    endpoint = f"127.0.0.1:{cluster.api.port}"
    publish(cluster, controlPlaneEndpoint=endpoint, networking={"podSubnet": "10.32.0.0/16", "cni": "bridge"})
    return cluster


def request(cluster, key: str | None = None) -> joining.JoinRequest:
    return joining.JoinRequest(
        endpoint=f"127.0.0.1:{cluster.api.port}",
        token=Secret(NODE_TOKEN),
        pins=(ca_pin(cluster.ca_pem),),
        discovery_timeout=1,
        node_name="cp-2",
        control_plane=True,
        certificate_key=Secret(key or certificate_key()),
        advertise_address="10.0.0.2",
        kubelet_extra_args={"node-labels": "tier=cp"},
    )


def context(cluster, req, files: dict[str, FileState] | None = None) -> tuple[Context, Target]:
    spec = control_plane_spec(req)
    me = next(h for h in spec.hosts if h.local)
    t = Target(me, lambda h: None, facts=FactsStub({}, files))
    return Context(spec, [t], Options(), shared={join.REQUEST: req}), t


def test_the_clusters_settings_come_from_kubeadm_config_read_with_the_bootstrap_token(ha):
    spec = control_plane_spec(request(ha))
    assert spec.control_plane_endpoint == f"127.0.0.1:{ha.api.port}"
    assert spec.api_endpoint() == f"https://127.0.0.1:{ha.api.port}"
    assert (spec.networking.pod_subnet, spec.networking.cni) == ("10.32.0.0/16", "bridge")
    assert spec.kubernetes_version == specmod.from_dict(cluster_file(ha)).kubernetes_version
    assert spec.pki.cert_dir == str(ha.root / PKI_REL) and spec.name == "lab"
    assert [(h.address, h.role, h.local) for h in spec.hosts] == [
        ("127.0.0.1", "control-plane", False),  # the etcd member kubeadm-config names
        ("10.0.0.2", "control-plane", True),
    ]
    assert spec.hosts[-1].name == "cp-2" and spec.extra_args["kubelet"]["node-labels"] == "tier=cp"


def test_a_cluster_without_a_control_plane_endpoint_is_refused_before_anything_is_written(cluster):
    publish(cluster)
    with pytest.raises(UserError, match="no controlPlaneEndpoint .* cannot join"):
        control_plane_spec(request(cluster))


def test_every_joining_control_plane_phase_works_on_this_host_and_etcd_joins_through_the_named_member(ha):
    ctx, t = context(ha, request(ha))
    leaves = [leaf for p in join_phases() for leaf in p.leaves()]
    for path in (
        "control-plane-prepare/download-certs",
        "control-plane-join/etcd",
        "control-plane-join/mark-control-plane",
    ):
        assert ctx.targets_for(next(p for p in leaves if p.path == path)) == [t], path
    assert etcd_join.members_before(ctx, t) == ["https://127.0.0.1:2379"]
    script = etcd_join.add_member_script(ctx, t)
    assert "--endpoints=https://127.0.0.1:2379 " in script
    assert "member add cp-2 --peer-urls=https://10.0.0.2:2380" in script


def test_download_certs_takes_the_shared_files_from_the_secret(ha):
    key = certificate_key()
    upload(ha, key)
    ctx, t = context(ha, request(ha, key))
    ups = {s.path: s for s in cp_prepare.plan_download_certs(ctx, t) if isinstance(s, Upload)}
    assert sorted(ups) == sorted(f"{ha.root / PKI_REL}/{rel}" for rel in SHARED)


def test_a_rerun_holding_the_shared_files_skips_even_once_the_secret_is_gone(ha):
    pki = ha.root / PKI_REL
    mine = {f"{pki}/{rel}": FileState("0" * 64, cp_prepare.SHARED[rel]) for rel in SHARED}
    mine[f"{pki}/ca.crt"] = FileState(hashlib.sha256(ha.ca_pem).hexdigest(), 0o644)
    ctx, t = context(ha, request(ha), mine)
    steps = list(cp_prepare.plan_download_certs(ctx, t))
    assert len(steps) == 1 and isinstance(steps[0], Skip)
    mine[f"{pki}/ca.crt"] = FileState("1" * 64, 0o644)  # another cluster's CA: the Secret is asked (never uploaded)
    ctx, t = context(ha, request(ha), mine)
    with pytest.raises(copycerts.NoCerts, match="never uploaded"):
        list(cp_prepare.plan_download_certs(ctx, t))


def test_mark_control_plane_goes_through_this_hosts_own_admin_conf(ha):
    ctx, t = context(ha, request(ha))
    client = Client.from_kubeconfig_data(ha.admin_conf.read_bytes(), "this host's admin.conf")
    ctx.shared["kube"] = {t.name: client}  # what ctx.kube(t) reads from this host's admin.conf
    try:
        steps = list(etcd_join.plan_mark(ctx, t))
    finally:
        client.close()
    assert [(s.verb, s.path) for s in steps if isinstance(s, ApiCall)] == [
        ("wait", "/readyz"),
        ("mark", "/api/v1/nodes/cp-2"),
    ]


def test_a_join_configurations_control_plane_gives_the_key_and_the_advertise_address(tmp_path):
    key = certificate_key()
    path = tmp_path / "join.yaml"
    path.write_text(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"
        "discovery:\n  bootstrapToken:\n    apiServerEndpoint: 10.0.0.1:6443\n    token: abcdef.0123456789abcdef\n"
        "    caCertHashes: [sha256:00]\n"
        f"controlPlane:\n  certificateKey: {key}\n  localAPIEndpoint:\n    advertiseAddress: 10.0.0.2\n"
    )
    req = joining.from_config(str(path), joining.JoinRequest())
    req.check()
    assert req.control_plane and req.advertise_address == "10.0.0.2" and str(req.certificate_key.value) == key
