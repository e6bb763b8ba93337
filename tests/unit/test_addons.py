"""The addon phases (addon/coredns, addon/kube-proxy) run by the executor against the RBAC-strict
API-server double (tests/unit/apiserver.py) as admin.conf, the cluster file's proxy/dns sections,
and the manifests checked against Kubernetes' own schemas for every supported minor."""

from __future__ import annotations

import copy

import kubernetes_validate
import phase_harness
import pytest
import yaml
from apiserver import make_cluster
from phase_harness import View, run_phases

from kubeinit import spec as specmod
from kubeinit.context import Context, Options
from kubeinit.errors import SpecError
from kubeinit.kube import objects
from kubeinit.phases import addons, cluster_api
from kubeinit.steps import ApiCall, Skip

PHASES = ["addon/coredns", "addon/kube-proxy"]
OBJECTS = {
    ("configmaps", "kube-system", "coredns"),
    ("clusterroles", "", "system:coredns"),
    ("clusterrolebindings", "", "system:coredns"),
    ("serviceaccounts", "kube-system", "coredns"),
    ("deployments", "kube-system", "coredns"),
    ("services", "kube-system", "kube-dns"),
    ("serviceaccounts", "kube-system", "kube-proxy"),
    ("clusterrolebindings", "", "kubeadm:node-proxier"),
    ("roles", "kube-system", "kube-proxy"),
    ("rolebindings", "kube-system", "kube-proxy"),
    ("configmaps", "kube-system", "kube-proxy"),
    ("daemonsets", "kube-system", "kube-proxy"),
}


@pytest.fixture
def cluster(tmp_path):
    """The control plane as the addon phases find it after init's earlier phases: admin.conf's
    group is bound to cluster-admin (kubeadm:cluster-admins), and nothing else is granted."""
    c = make_cluster(tmp_path / "cluster")
    yield c
    c.api.stop()


def cluster_file(cluster=None, **extra) -> dict:
    return phase_harness.cluster_file(cluster, **{"kubernetesVersion": "v1.33.1", **extra})


def run(cluster, dry_run=False, view=None, **extra):
    return run_phases(specmod.from_dict(cluster_file(cluster, **extra)), PHASES, view, dry_run=dry_run)


def writes(cluster) -> list:
    return [r for r in cluster.api.requests if r[0] not in ("GET",)]


def test_the_addons_are_kubeadms_objects_made_as_admin_conf_and_a_rerun_only_skips(cluster):
    summary = run(cluster, proxy={"config": {"mode": "ipvs", "conntrack": {"maxPerCore": 0}}})
    api = cluster.api
    assert summary.total_changed == len(OBJECTS), summary.changed
    assert OBJECTS <= set(api.objects)
    assert {u for m, _, u in writes(cluster)} == {"kubernetes-admin"}, "admin.conf made every object"

    ds = api.objects[("daemonsets", "kube-system", "kube-proxy")]
    pod = ds["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.k8s.io/kube-proxy:v1.33.1"
    assert pod["serviceAccountName"] == "kube-proxy" and pod["hostNetwork"] is True
    assert pod["priorityClassName"] == "system-node-critical" and pod["tolerations"] == [{"operator": "Exists"}]
    cm = api.objects[("configmaps", "kube-system", "kube-proxy")]
    conf = yaml.safe_load(cm["data"]["config.conf"])
    assert conf == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "clusterCIDR": "10.244.0.0/16",
        "conntrack": {"maxPerCore": 0},
        "mode": "ipvs",
    }
    kc = yaml.safe_load(cm["data"]["kubeconfig.conf"])
    assert kc["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{api.port}"
    assert kc["users"][0]["user"] == {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    assert "annotations" not in cm["metadata"], "a config with the user's fields is not signed as kubeadm's own"
    crb = api.objects[("clusterrolebindings", "", "kubeadm:node-proxier")]
    assert crb["roleRef"]["name"] == "system:node-proxier"
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}]
    rb = api.objects[("rolebindings", "kube-system", "kube-proxy")]
    assert [s["name"] for s in rb["subjects"]] == ["system:bootstrappers:kubeadm:default-node-token"]

    svc = api.objects[("services", "kube-system", "kube-dns")]
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [(53, "UDP"), (53, "TCP"), (9153, "TCP")]
    dep = api.objects[("deployments", "kube-system", "coredns")]
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/coredns/coredns:v1.12.0"
    assert (
        "kubernetes cluster.local in-addr.arpa ip6.arpa"
        in api.objects[("configmaps", "kube-system", "coredns")]["data"]["Corefile"]
    )

    before = writes(cluster)
    again = run(cluster, proxy={"config": {"mode": "ipvs", "conntrack": {"maxPerCore": 0}}})
    assert again.total_changed == 0, again.changed
    assert writes(cluster) == before, "a re-run writes nothing"


def test_without_admin_rights_nothing_is_written_and_the_failure_says_so(tmp_path):
    """admin.conf's group bound to nothing and no super-admin.conf to bind it with: the double
    refuses as kube-apiserver would, and the phase fails instead of pretending."""
    c = make_cluster(tmp_path / "cluster", admins_bound=False)
    (c.root / "super-admin.conf").unlink()
    try:
        with pytest.raises(Exception, match=r"addon/coredns"):
            run(c)
        assert not [k for k in c.api.objects if k in OBJECTS]
    finally:
        c.api.stop()


def test_coredns_keeps_the_replicas_the_cluster_scaled_it_to(cluster):
    run(cluster)
    key = ("deployments", "kube-system", "coredns")
    cluster.api.objects[key]["spec"]["replicas"] = 3  # `kubectl scale`, or an autoscaler
    assert run(cluster).total_changed == 0, "the scaled Deployment is left alone"
    summary = run(cluster, kubernetesVersion="v1.34.1")  # a newer CoreDNS: the Deployment is replaced
    assert summary.total_changed == 2, summary.changed  # and the DaemonSet's kube-proxy image
    dep = cluster.api.objects[key]
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith("coredns:v1.12.1")


def test_a_changed_proxy_config_rewrites_only_the_configmap(cluster):
    run(cluster)
    cm = cluster.api.objects[("configmaps", "kube-system", "kube-proxy")]
    assert cm["metadata"]["annotations"]["kubeadm.kubernetes.io/component-config.hash"].startswith("sha256:")
    before = writes(cluster)
    summary = run(cluster, proxy={"config": {"mode": "nftables"}})
    assert summary.total_changed == 1
    assert [(m, p) for m, p, _ in writes(cluster)[len(before) :]] == [
        ("PUT", "/api/v1/namespaces/kube-system/configmaps/kube-proxy")
    ]
    assert yaml.safe_load(cluster.api.objects[("configmaps", "kube-system", "kube-proxy")]["data"]["config.conf"])[
        "mode"
    ] == ("nftables")


def test_dry_run_shows_each_object_and_writes_nothing(cluster):
    view = View()
    run(cluster, dry_run=True, view=view)
    shown = [s.describe() for s in view.steps() if isinstance(s, ApiCall)]
    assert "api apply DaemonSet kube-system/kube-proxy" in shown
    assert "api apply Service kube-system/kube-dns" in shown
    assert len(shown) == len(OBJECTS)
    assert not writes(cluster)


def test_disabled_addons_are_skipped_with_the_reason(cluster):
    disabled = {"proxy": {"disabled": True}, "dns": {"disabled": True}}
    assert run(cluster, **disabled).total_changed == 0 and not writes(cluster)
    view = View()
    run(cluster, dry_run=True, view=view, **disabled)
    assert not [s for s in view.steps() if isinstance(s, ApiCall)]
    reasons = [s.reason for s in view.steps() if isinstance(s, Skip)]
    assert "kube-proxy is not installed: the cluster file sets proxy.disabled" in reasons
    assert "CoreDNS is not installed: the cluster file sets dns.disabled" in reasons


def spec_of(**extra):
    return specmod.from_dict(cluster_file(**extra))


def test_images_follow_image_repository_and_dns_overrides_as_kubeadms():
    spec = spec_of(imageRepository="mirror.example.com/k8s", kubernetesVersion="v1.31.4")
    ds = next(o for o in addons.kube_proxy_objects(spec) if o["kind"] == "DaemonSet")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.example.com/k8s/kube-proxy:v1.31.4"
    assert (
        addons.coredns_image(spec) == "mirror.example.com/k8s/coredns:v1.11.3"
    )  # no coredns/ sub-path off the default
    spec = spec_of(dns={"imageRepository": "dns.example.com", "imageTag": "v1.12.2"})
    assert addons.coredns_image(spec) == "dns.example.com/coredns:v1.12.2"


def test_every_supported_minor_has_kubeadms_coredns_version():
    assert set(addons.COREDNS_VERSIONS) == set(specmod.SUPPORTED_MINORS)


def test_the_dns_service_is_the_tenth_address_and_the_corefile_caches_by_minor():
    spec = spec_of(
        networking={"serviceSubnet": "10.100.0.0/16", "dnsDomain": "lab.internal"}, kubernetesVersion="v1.32.3"
    )
    objs = {o["kind"]: o for o in addons.coredns_objects(spec)}
    assert objs["Service"]["spec"]["clusterIP"] == "10.100.0.10"
    corefile = objs["ConfigMap"]["data"]["Corefile"]
    assert "kubernetes lab.internal in-addr.arpa ip6.arpa" in corefile
    assert "    cache 30\n" in corefile and "disable success" not in corefile  # 1.32's kubeadm
    newer = addons.coredns_objects(spec_of(kubernetesVersion="v1.35.0"))[0]["data"]["Corefile"]
    assert "cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }" in newer


def test_an_ipv6_control_plane_gets_kube_proxys_ipv6_wildcard():
    spec = specmod.from_dict(
        {
            **cluster_file(),
            "networking": {"serviceSubnet": "fd00:10::/112", "podSubnet": "10.244.0.0/16,fd00:20::/56"},
            "hosts": [{"name": "cp-1", "address": "fd00::1", "role": "control-plane"}],
        }
    )
    assert addons.kube_proxy_config(spec)["bindAddress"] == "::"
    assert spec.networking.dns_ip == "fd00:10::a"


@pytest.mark.parametrize("minor", list(specmod.SUPPORTED_MINORS))
def test_the_manifests_validate_against_kubernetes_schemas(minor):
    spec = spec_of(kubernetesVersion=f"v1.{minor}.2", proxy={"config": {"mode": "nftables"}})
    for obj in addons.kube_proxy_objects(spec) + addons.coredns_objects(spec):
        kubernetes_validate.validate(obj, f"1.{minor}.0", strict=True)


def test_server_defaults_and_omitted_zero_values_still_match():
    """What a real API server returns for the DaemonSet: defaults added, `readOnly: false` dropped."""
    ds = next(o for o in addons.kube_proxy_objects(spec_of()) if o["kind"] == "DaemonSet")
    served = copy.deepcopy(ds)
    served["metadata"] |= {
        "uid": "u",
        "generation": 1,
        "annotations": {"deprecated.daemonset.template.generation": "1"},
    }
    spec = served["spec"]
    spec["revisionHistoryLimit"] = 10
    spec["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 0}
    pod = spec["template"]["spec"]
    pod |= {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "x"}
    c = pod["containers"][0]
    c |= {"terminationMessagePath": "/dev/termination-log", "resources": {}}
    del c["volumeMounts"][1]["readOnly"]
    pod["volumes"][0]["configMap"]["defaultMode"] = 420
    pod["volumes"][2]["hostPath"]["type"] = ""
    assert objects.matches(served, ds)
    c["image"] = "registry.k8s.io/kube-proxy:v1.30.0"
    assert not objects.matches(served, ds)
    c["image"] = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    c["env"].append({"name": "EXTRA", "value": "1"})
    assert not objects.matches(served, ds), "a list kubeinit writes is compared whole"


@pytest.mark.parametrize(
    ("proxy", "where", "message"),
    [
        ({"config": {"mode": "userspace"}}, "proxy.config.mode", "'userspace' is not one of iptables, ipvs, nftables"),
        ({"config": {"conntrack": {"maxPerCore": -1}}}, "proxy.config.conntrack.maxPerCore", "integer from 0"),
        ({"config": {"conntrack": {"maxPerCore": True}}}, "proxy.config.conntrack.maxPerCore", "integer from 0"),
        ({"config": {"conntrak": {}}}, "proxy.config.conntrak", "unknown field 'conntrak'"),
        ({"config": {"iptables": {"syncPeriod": "often"}}}, "proxy.config.iptables.syncPeriod", "not a duration"),
        ({"config": {"ipvs": {"excludeCIDRs": ["10.0.0.0/33"]}}}, "proxy.config.ipvs.excludeCIDRs[0]", "not a CIDR"),
        ({"config": {"bindAddress": "eth0"}}, "proxy.config.bindAddress", "not an IP address"),
        ({"config": {"kind": "KubeletConfiguration"}}, "proxy.config.kind", "is not KubeProxyConfiguration"),
        ({"config": {"clientConnection": {"kubeconfig": "/etc/kp.conf"}}}, "kubeconfig", "DaemonSet mounts"),
        ({"config": {"featureGates": {"Foo": "yes"}}}, "proxy.config.featureGates", "true or false"),
        ({"disabled": "no"}, "proxy.disabled", "must be true or false"),
        ({"enabled": False}, "proxy.enabled", "unknown field 'enabled'"),
    ],
)
def test_the_proxy_section_is_checked_with_its_path(proxy, where, message):
    with pytest.raises(SpecError) as e:
        spec_of(proxy=proxy)
    assert e.value.path.endswith(where) and message in str(e.value), str(e.value)


def test_a_kubeadm_file_s_kube_proxy_configuration_and_disabled_addons_are_read():
    docs = [
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "kubernetesVersion": "v1.33.0",
            "dns": {"disabled": True},
            "proxy": {"disabled": False},
        },
        {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", "mode": "ipvs"},
    ]
    spec = specmod.load_documents(docs)
    assert spec.dns.disabled and not spec.proxy.disabled
    assert addons.kube_proxy_config(spec)["mode"] == "ipvs"
    docs[1]["conntrack"] = {"maxPerCore": "lots"}
    with pytest.raises(SpecError, match=r"document 2 \(KubeProxyConfiguration\)\.conntrack\.maxPerCore"):
        specmod.load_documents(docs)


def test_kubeadm_config_records_disabled_addons_for_kubeadm_upgrade():
    conf = yaml.safe_load(
        cluster_api.cluster_configuration(
            Context(spec_of(proxy={"disabled": True}, dns={"imageTag": "v1.12.2"}), [], Options())
        )
    )
    assert conf["proxy"] == {"disabled": True} and conf["dns"] == {"imageTag": "v1.12.2"}
    back = specmod.load_documents([conf])
    assert back.proxy.disabled and back.dns.image_tag == "v1.12.2"
