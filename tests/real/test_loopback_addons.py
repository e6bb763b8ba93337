"""Loopback tier: `kubeinit init phase addon all` against the real kube-apiserver and
controller-manager (loopback.py) creates kubeadm's CoreDNS and kube-proxy objects, as the real
server stores and defaults them; a re-run only skips. (Named to run after test_loopback.py, whose
first test needs admin.conf still unbound.)"""

from __future__ import annotations

import json

import pytest
import yaml
from loopback import missing

pytestmark = [pytest.mark.real, pytest.mark.skipif(bool(missing()), reason=missing() or "-")]

ADDONS = {
    ("kube-system", "serviceaccounts"): ["coredns", "kube-proxy"],
    ("kube-system", "configmaps"): ["coredns", "kube-proxy"],
    ("kube-system", "roles"): ["kube-proxy"],
    ("kube-system", "rolebindings"): ["kube-proxy"],
    ("kube-system", "services"): ["kube-dns"],
    ("kube-system", "deployments"): ["coredns"],
    ("kube-system", "daemonsets"): ["kube-proxy"],
    ("", "clusterroles"): ["system:coredns"],
    ("", "clusterrolebindings"): ["system:coredns", "kubeadm:node-proxier"],
}


def snapshot(cp) -> dict[str, str]:
    """Each addon object's spec generation (workloads: their status changes as the controllers run)
    or resourceVersion (the rest): a write by kubeinit changes it."""
    out = {}
    for (ns, kind), names in ADDONS.items():
        r = cp.kubectl("get", kind, *names, *(["-n", ns] if ns else []), "-o", "json")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        for item in got["items"] if "items" in got else [got]:
            meta = item["metadata"]
            out[f"{kind}/{meta['name']}"] = str(meta.get("generation") or meta["resourceVersion"])
    return out


def get(cp, kind: str, name: str) -> dict:
    r = cp.kubectl("-n", "kube-system", "get", kind, name, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_addons_on_the_real_server_and_a_rerun_only_skips(control_plane):
    cp = control_plane
    dry = cp.phase("addon all --dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "api apply DaemonSet kube-system/kube-proxy" in dry.stdout, dry.stdout
    assert "api apply Service kube-system/kube-dns" in dry.stdout
    assert cp.kubectl("-n", "kube-system", "get", "daemonset", "kube-proxy").returncode != 0, "a dry run wrote"

    r = cp.phase("addon all")
    assert r.returncode == 0, r.stdout + r.stderr
    have = snapshot(cp)
    assert len(have) == sum(map(len, ADDONS.values())), have

    svc = get(cp, "service", "kube-dns")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [(53, "UDP"), (53, "TCP"), (9153, "TCP")]
    dep = get(cp, "deployment", "coredns")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/coredns/coredns:v1.11.3"
    ds = get(cp, "daemonset", "kube-proxy")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-proxy:v1.31.4"
    conf = yaml.safe_load(get(cp, "configmap", "kube-proxy")["data"]["config.conf"])
    assert conf["kind"] == "KubeProxyConfiguration" and conf["clusterCIDR"] == "10.244.0.0/16"
    # the real RBAC: kube-proxy's ServiceAccount may now do what system:node-proxier allows
    who = "system:serviceaccount:kube-system:kube-proxy"
    assert cp.kubectl("auth", "can-i", "watch", "endpointslices.discovery.k8s.io", "--as", who).stdout.strip() == "yes"
    coredns = "system:serviceaccount:kube-system:coredns"
    assert cp.kubectl("auth", "can-i", "list", "services", "--as", coredns).stdout.strip() == "yes"

    again = cp.phase("addon all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "api apply" not in again.stdout, again.stdout
    assert snapshot(cp) == have, "a second run wrote something"
