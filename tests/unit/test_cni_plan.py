"""The cni phase: flannel's and calico's manifests (rendered, validated for every supported
minor, CRDs too, applied through the RBAC-strict API-server double and skipped when applied), and bridge's per-host
plan over parsed facts and the Nodes the double holds (podCIDR, InternalIP)."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from apiserver import make_cluster
from factsstub import FactsStub, state
from test_cluster_api import View

from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError
from kubeinit.facts.host import Unit, UnitState
from kubeinit.kube import nodes as nodesmod
from kubeinit.kube import objects
from kubeinit.kube.client import ApiError, Client, Unreachable
from kubeinit.phases import cni, cni_bridge
from kubeinit.spec.model import SUPPORTED_MINORS
from kubeinit.steps import Notice, Run, Upload, is_change
from kubeinit.workflow import find, init_phases, up_phases


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path / "cluster")
    yield c
    c.api.stop()


def make_spec(cluster, cni_name: str, pod_subnet: str = "10.244.0.0/16", workers: int = 0):
    hosts = [{"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"}]
    hosts += [{"name": f"w-{i}", "address": f"127.0.0.{i + 1}", "role": "worker"} for i in range(1, workers + 1)]
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "lab",
            "kubernetesVersion": "v1.33.1",
            "bindPort": cluster.api.port if cluster else 6443,
            "kubeconfigDir": str(cluster.root) if cluster else "/etc/kubernetes",
            "networking": {"podSubnet": pod_subnet, "cni": cni_name},
            "hosts": hosts,
        }
    )


def run(cluster, spec):
    ctx = Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options())
    return execute(ctx, [find(init_phases(), "cni")], View())


# --- the spec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "error"),
    [
        ({"cni": "weave"}, "networking.cni: 'weave' is not one of flannel, calico, bridge, none"),
        ({"cni": "bridge", "podSubnet": ""}, "networking.podSubnet: is empty, but networking.cni bridge needs"),
        ({"podSubnet": "10.244.0.0/25"}, "'10.244.0.0/25' is smaller than a /24, which each node gets of it"),
        ({"cni": "calico", "podSubnet": "fd00::/40"}, "'fd00::/40' is larger than a /48"),
        ({"podSubnet": "fd00::/56"}, "flannel needs an IPv4 range first"),
        ({"cni": "calico", "podSubnet": "fd00::/56"}, "calico as kubeinit sets it up (BGP and IPIP over IPv4) needs"),
    ],
)
def test_the_spec_refuses_a_pod_network_that_cannot_work(net, error):
    raw = {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "hosts": [{"name": "cp-1", "address": "10.0.0.1", "role": "control-plane"}],
        "networking": net,
    }
    with pytest.raises(specmod.SpecError) as e:
        specmod.from_dict(raw)
    assert error in str(e.value)


def test_flannel_is_the_default_and_none_needs_no_pod_subnet():
    raw = {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "hosts": [{"name": "cp-1", "address": "10.0.0.1", "role": "control-plane"}],
    }
    assert specmod.from_dict(raw).networking.cni == "flannel"
    assert specmod.from_dict({**raw, "networking": {"cni": "none", "podSubnet": ""}}).networking.cni == "none"


# --- flannel and calico --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["flannel", "calico"])
@pytest.mark.parametrize("minor", list(SUPPORTED_MINORS))
def test_the_manifests_validate_for_every_supported_minor(name, minor):
    spec = make_spec(None, name, "10.244.0.0/16,fd00:10:244::/56" if name == "calico" else "10.244.0.0/16")
    objs = cni.manifest(Context(spec, []))
    for obj in objs:
        kubernetes_validate.validate(obj, f"1.{minor}.0", strict=True)
    images = {c["image"] for o in objs if o["kind"] in ("DaemonSet", "Deployment") for c in _containers(o)}
    assert images and all(":" in i and not i.endswith(":latest") for i in images), images


def _containers(obj):
    pod = obj["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


def test_flannel_is_applied_with_the_pod_subnet_and_a_rerun_only_skips(cluster):
    summary = run(cluster, make_spec(cluster, "flannel", "10.32.0.0/16"))
    api = cluster.api
    cfg = api.objects[("configmaps", "kube-system", "kube-flannel-cfg")]["data"]
    assert json.loads(cfg["net-conf.json"])["Network"] == "10.32.0.0/16"
    ds = api.objects[("daemonsets", "kube-system", "kube-flannel-ds")]
    assert {c["image"] for c in _containers(ds)} == {
        f"ghcr.io/flannel-io/flannel:{cni.FLANNEL}",
        f"ghcr.io/flannel-io/flannel-cni-plugin:{cni.FLANNEL_CNI_PLUGIN}",
    }
    assert summary.total_changed == 5  # ServiceAccount, ClusterRole, binding, ConfigMap, DaemonSet
    flanneld = [c for c in _containers(ds) if c["name"] == "kube-flannel"][0]
    cp = make_spec(cluster, "flannel", "10.32.0.0/16").first_control_plane.address
    assert f"--iface-can-reach={cp}" in flanneld["args"]  # not the default route's interface (Vagrant's NAT)
    # the server fills in defaults: the stored DaemonSet no longer equals what was written
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    ds["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    assert run(cluster, make_spec(cluster, "flannel", "10.32.0.0/16")).total_changed == 0
    # another pod subnet: the ConfigMap (and only it) is written again
    assert run(cluster, make_spec(cluster, "flannel", "10.40.0.0/16")).total_changed == 1
    cfg = api.objects[("configmaps", "kube-system", "kube-flannel-cfg")]["data"]
    assert json.loads(cfg["net-conf.json"])["Network"] == "10.40.0.0/16"


def _env(obj, container: str) -> dict:
    pod = obj["spec"]["template"]["spec"]
    (c,) = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == container]
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def test_calico_is_applied_crds_first_with_the_pod_subnet_and_a_rerun_only_skips(cluster):
    summary = run(cluster, make_spec(cluster, "calico", "10.32.0.0/16"))
    api = cluster.api
    writes = [path for method, path, _ in api.requests if method in ("POST", "PUT")]
    crds = [i for i, p in enumerate(writes) if "/customresourcedefinitions" in p]
    assert len(crds) == 20 and crds == list(range(20)), writes  # before anything that may need them
    ippools = api.objects[("customresourcedefinitions", "", "ippools.crd.projectcalico.org")]
    assert ippools["spec"]["scope"] == "Cluster" and ippools["status"]["acceptedNames"]["kind"] == "IPPool"
    ds = api.objects[("daemonsets", "kube-system", "calico-node")]
    env = _env(ds, "calico-node")
    assert env["CALICO_IPV4POOL_CIDR"] == "10.32.0.0/16" and env["FELIX_IPV6SUPPORT"] == "false"
    assert "CALICO_IPV6POOL_CIDR" not in env
    deploy = api.objects[("deployments", "kube-system", "calico-kube-controllers")]
    images = {c["image"] for o in (ds, deploy) for c in _containers(o)}
    assert images == {f"docker.io/calico/{n}:{cni.CALICO}" for n in ("cni", "node", "kube-controllers")}
    binding = api.objects[("clusterrolebindings", "", "calico-node")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "calico-node", "namespace": "kube-system"}]
    assert summary.total_changed == len(cni.manifest(Context(make_spec(cluster, "calico", "10.32.0.0/16"), [])))
    # the server fills in defaults and status: still the same objects
    ds["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    assert run(cluster, make_spec(cluster, "calico", "10.32.0.0/16")).total_changed == 0


def test_calico_dual_stack_gets_both_pools():
    objs = cni.manifest(Context(make_spec(None, "calico", "10.244.0.0/16,fd00:10:244::/56"), []))
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    env = _env(ds, "calico-node")
    assert (env["CALICO_IPV4POOL_CIDR"], env["CALICO_IPV6POOL_CIDR"]) == ("10.244.0.0/16", "fd00:10:244::/56")
    assert (env["IP6"], env["FELIX_IPV6SUPPORT"]) == ("autodetect", "true")
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap"]
    conf = json.loads(cm["data"]["cni_network_config"].replace("__CNI_MTU__", "0"))
    assert conf["plugins"][0]["ipam"] == {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}


def test_the_double_refuses_a_crd_a_real_server_refuses(cluster):
    objs = cni.manifest(Context(make_spec(None, "calico"), []))
    anp = next(o for o in objs if o["metadata"]["name"] == "adminnetworkpolicies.policy.networking.k8s.io")
    wrong_name = {**anp, "metadata": {**anp["metadata"], "name": "anps.policy.networking.k8s.io"}}
    unapproved = {**anp, "metadata": {"name": anp["metadata"]["name"]}}
    client = Client.from_kubeconfig(cluster.admin_conf)
    for obj, why in ((wrong_name, "must be spec.names.plural"), (unapproved, "api-approved.kubernetes.io")):
        with pytest.raises(ApiError, match=why):
            objects.apply(client, obj)
    objects.apply(client, anp)
    assert ("customresourcedefinitions", "", anp["metadata"]["name"]) in cluster.api.objects
    client.close()


def test_none_applies_nothing(cluster):
    assert run(cluster, make_spec(cluster, "none", "")).total_changed == 0
    assert not any(r == "daemonsets" for r, _, _ in cluster.api.objects)


# --- bridge --------------------------------------------------------------------------------

CONVERGED_UNIT = Unit("active", "enabled")
NO_UNIT = Unit()


def register(cluster, name: str, cidr: str | None, ip: str) -> None:
    cluster.api.objects[("nodes", "", name)] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "namespace": "", "uid": name, "resourceVersion": "3"},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]},
    }


def stub(routes=frozenset(), masquerading=False, unit=NO_UNIT, missing=frozenset(), files=None) -> FactsStub:
    return FactsStub(
        {
            cni_bridge.PodRoutes(): cni_bridge.Network(frozenset(routes), masquerading),
            cni_bridge.PLUGIN_FILES: frozenset(missing),
            UnitState(cni_bridge.SERVICE): unit,
        },
        files,
    )


def bridge_plans(cluster, stubs: dict[str, FactsStub], workers: int = 2, shared=None) -> dict[str, list]:
    spec = make_spec(cluster, "bridge", workers=workers)
    admin = cluster.admin_conf
    stubs["cp-1"].planned[str(admin)] = (admin.read_bytes(), 0o600)  # read from the host, as ctx.kube does
    targets = [Target(h, lambda h: LocalConnection(h.name), facts=stubs[h.name]) for h in spec.hosts]
    ctx = Context(spec, targets, Options(), shared=dict(shared or {}))
    out = {}
    for t in targets:
        declared = cni.CNI.facts(ctx, t)
        t.facts.gather(declared)
        t.facts.declared = set(declared)
        out[t.name] = list(cni.CNI.plan(ctx, t))
    ctx.close()
    return out


def three_nodes(cluster):
    register(cluster, "cp-1", "10.244.0.0/24", "192.168.50.10")
    register(cluster, "w-1", "10.244.1.0/24", "192.168.50.11")
    register(cluster, "w-2", "10.244.2.0/24", "192.168.50.12")


def test_bridge_gives_each_host_its_pod_cidr_and_routes_to_the_others(cluster):
    three_nodes(cluster)
    plans = bridge_plans(cluster, {n: stub() for n in ("cp-1", "w-1", "w-2")})
    w1 = {s.path: s.data.decode() for s in plans["w-1"] if isinstance(s, Upload)}
    conf = json.loads(w1[cni_bridge.CONFLIST])
    bridge = conf["plugins"][0]
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", "cni0", False)
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.1.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]
    script = w1[cni_bridge.SCRIPT]
    assert "ip route replace 10.244.0.0/24 via 192.168.50.10 proto 147" in script
    assert "ip route replace 10.244.2.0/24 via 192.168.50.12 proto 147" in script
    assert "10.244.1.0/24 via" not in script  # not to itself
    assert "-s 10.244.1.0/24 ! -d 10.244.0.0/16" in script and "-j MASQUERADE" in script
    assert f"ExecStart=/bin/sh {cni_bridge.SCRIPT}" in w1[cni_bridge.UNIT]
    runs = [s for s in plans["w-1"] if isinstance(s, Run)]
    assert len(runs) == 1 and f"systemctl enable -q --now {cni_bridge.SERVICE}" in runs[0].command()
    assert "10.244.0.0/24 via 192.168.50.10" in runs[0].note
    # each host's own range
    cp = {s.path: s.data.decode() for s in plans["cp-1"] if isinstance(s, Upload)}
    assert '"subnet": "10.244.0.0/24"' in cp[cni_bridge.CONFLIST]


def test_bridge_on_a_converged_host_only_skips_and_a_missing_route_is_set_again(cluster):
    three_nodes(cluster)
    first = bridge_plans(cluster, {n: stub() for n in ("cp-1", "w-1", "w-2")})
    files = {n: {s.path: state(s.data, s.mode) for s in first[n] if isinstance(s, Upload)} for n in first}
    routes = {
        "cp-1": {("10.244.1.0/24", "192.168.50.11"), ("10.244.2.0/24", "192.168.50.12")},
        "w-1": {("10.244.0.0/24", "192.168.50.10"), ("10.244.2.0/24", "192.168.50.12")},
        "w-2": {("10.244.0.0/24", "192.168.50.10"), ("10.244.1.0/24", "192.168.50.11")},
    }
    again = bridge_plans(
        cluster, {n: stub(routes[n], True, CONVERGED_UNIT, files=files[n]) for n in ("cp-1", "w-1", "w-2")}
    )
    assert not [s for steps in again.values() for s in steps if is_change(s)]
    # a route lost (a reboot before the unit ran, someone's `ip route del`): the script runs again
    lost = bridge_plans(
        cluster,
        {
            n: stub(
                routes[n] - {("10.244.2.0/24", "192.168.50.12")} if n == "w-1" else routes[n],
                True,
                CONVERGED_UNIT,
                files=files[n],
            )
            for n in ("cp-1", "w-1", "w-2")
        },
    )
    assert [type(s) for s in lost["w-1"] if is_change(s)] == [Run]
    assert not [s for s in lost["w-2"] if is_change(s)]


def test_a_node_that_joins_later_is_routed_to_on_the_next_run(cluster):
    register(cluster, "cp-1", "10.244.0.0/24", "192.168.50.10")
    register(cluster, "w-1", "10.244.1.0/24", "192.168.50.11")
    before = bridge_plans(cluster, {n: stub() for n in ("cp-1", "w-1")}, workers=1)
    files = {n: {s.path: state(s.data, s.mode) for s in before[n] if isinstance(s, Upload)} for n in before}
    register(cluster, "w-2", "10.244.2.0/24", "192.168.50.12")
    after = bridge_plans(
        cluster,
        {
            "cp-1": stub({("10.244.1.0/24", "192.168.50.11")}, True, CONVERGED_UNIT, files=files["cp-1"]),
            "w-1": stub({("10.244.0.0/24", "192.168.50.10")}, True, CONVERGED_UNIT, files=files["w-1"]),
            "w-2": stub(),
        },
    )
    for n in ("cp-1", "w-1"):  # the conflist stays; the script gains the route, and runs
        changed = [s for s in after[n] if is_change(s)]
        assert [getattr(s, "path", None) for s in changed] == [cni_bridge.SCRIPT, None], changed
        assert "10.244.2.0/24 via 192.168.50.12" in changed[1].note


def test_bridge_says_what_is_missing(cluster, monkeypatch):
    monkeypatch.setattr(nodesmod, "CIDR_WAIT", 0.2)
    register(cluster, "cp-1", "10.244.0.0/24", "192.168.50.10")
    with pytest.raises(KubeinitError, match=r"CNI plugins /opt/cni/bin/portmap are missing: run the runtime phase"):
        bridge_plans(cluster, {"cp-1": stub(missing={"/opt/cni/bin/portmap"}), "w-1": stub()}, workers=1)
    cluster.api.stop()
    cluster = make_cluster(cluster.root.parent / "second")
    register(cluster, "cp-1", "10.244.0.0/24", "192.168.50.10")
    with pytest.raises(KubeinitError, match=r"node w-1 is not registered yet.*kubeinit up --only join"):
        bridge_plans(cluster, {"cp-1": stub(), "w-1": stub()}, workers=1)
    register(cluster, "w-1", None, "192.168.50.11")
    with pytest.raises(KubeinitError, match=r"node w-1 has no podCIDR after 0 s: the controller-manager"):
        bridge_plans(cluster, {"cp-1": stub(), "w-1": stub()}, workers=1)
    cluster.api.stop()


def test_bridge_counts_the_plugins_this_runs_runtime_phase_installs(cluster):
    # up --dry-run on bare hosts: the runtime phase planned the CNI plugins, the host has none yet
    from kubeinit.phases import runtime

    three_nodes(cluster)
    bare = {"/opt/cni/bin/bridge", "/opt/cni/bin/host-local", "/opt/cni/bin/portmap", "/opt/cni/bin/loopback"}
    stubs = {n: stub(missing=bare) for n in ("cp-1", "w-1", "w-2")}
    planned = {runtime.PLANNED: {(n, "cni-plugins") for n in ("cp-1", "w-1", "w-2")}}
    plans = bridge_plans(cluster, stubs, shared=planned)
    assert all(any(isinstance(s, Upload) and s.path == cni_bridge.CONFLIST for s in p) for p in plans.values())
    planned = {runtime.PLANNED: {("cp-1", "cni-plugins"), ("w-2", "cni-plugins")}}  # w-1's not planned: refused
    with pytest.raises(KubeinitError, match=r"are missing: run the runtime phase"):
        bridge_plans(cluster, {n: stub(missing=bare) for n in ("cp-1", "w-1", "w-2")}, shared=planned)


def test_bridge_runs_after_join_in_up():
    names = [p.path for p in up_phases() for p in p.leaves()]
    assert names.index("cni") > max(i for i, n in enumerate(names) if n.startswith("join/"))


def test_a_dry_run_before_the_api_answers_says_what_bridge_will_do(cluster):
    spec = make_spec(cluster, "bridge")
    cluster.api.stop()
    s = stub()
    s.planned[str(cluster.admin_conf)] = (cluster.admin_conf.read_bytes(), 0o600)
    t = Target(spec.hosts[0], lambda h: LocalConnection(h.name), facts=s)
    ctx = Context(spec, [t], Options(dry_run=True))
    steps = list(cni.CNI.plan(ctx, t))
    assert [type(x) for x in steps] == [Notice] and "cannot be read yet" in steps[0].text
    with pytest.raises(Unreachable):  # a real run stops on it
        list(cni.CNI.plan(Context(spec, [t], Options()), t))
