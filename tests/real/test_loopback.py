"""Loopback tier: kubeinit's own commands against a real etcd, kube-apiserver, controller-manager,
scheduler and kubelet on 127.0.0.1, all started from the files kubeinit writes (conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from loopback import free_ports, kubeinit, missing, real_bin, rendered, set_flag, wait_for

from kubeinit import kubeconfig
from kubeinit.certs import jws, pin
from kubeinit.kube import discovery

pytestmark = [pytest.mark.real, pytest.mark.skipif(bool(missing()), reason=missing() or "-")]

TOKEN = "loopbk.0123456789abcdef"
# what init's API phases write (reference §4.3, §4.8) and the binding that makes admin.conf an admin
WRITTEN = {
    ("kube-system", "configmaps"): ["kubeadm-config", "kubelet-config"],
    ("kube-system", "roles"): ["kubeadm:nodes-kubeadm-config", "kubeadm:kubelet-config"],
    ("kube-system", "rolebindings"): ["kubeadm:nodes-kubeadm-config", "kubeadm:kubelet-config"],
    ("kube-public", "configmaps"): ["cluster-info"],
    ("kube-public", "roles"): ["kubeadm:bootstrap-signer-clusterinfo"],
    ("kube-public", "rolebindings"): ["kubeadm:bootstrap-signer-clusterinfo"],
    ("", "clusterroles"): ["kubeadm:get-nodes"],
    ("", "clusterrolebindings"): [
        "kubeadm:cluster-admins",
        "kubeadm:kubelet-bootstrap",
        "kubeadm:get-nodes",
        "kubeadm:node-autoapprove-bootstrap",
        "kubeadm:node-autoapprove-certificate-rotation",
    ],
}
API_PHASES = ("upload-config all", "bootstrap-token")


def versions(cp) -> dict[str, str]:
    """resourceVersion of every object the API phases write: any write changes it."""
    out = {}
    for (ns, kind), names in WRITTEN.items():
        r = cp.kubectl("get", kind, *names, *(["-n", ns] if ns else []), "-o", "json")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        for item in got["items"] if "items" in got else [got]:  # one name: the object itself
            out[f"{kind}/{ns}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def can_i(cp) -> str:
    return cp.kubectl("auth", "can-i", "*", "*").stdout.strip()


@pytest.fixture(scope="session")
def api_phases(control_plane):
    """init's API phases, as a user runs them after the control plane is up (once per session)."""
    before = can_i(control_plane)
    dry = control_plane.phase("upload-config all --dry-run")
    results = {"dry-run": dry, "dry-run can-i": can_i(control_plane)}
    results.update({p: control_plane.phase(p) for p in API_PHASES})
    return before, results


def test_wait_control_plane_started_before_the_server(control_plane):
    assert control_plane.waiting_when_started, "the waiter was asking a port nothing listened on yet"
    r = control_plane.wait_result
    assert r.returncode == 0, r.stdout + r.stderr
    assert "wait-control-plane" in r.stdout + r.stderr


def test_api_phases_make_admin_conf_a_cluster_admin_and_a_rerun_changes_nothing(control_plane, api_phases):
    before, results = api_phases
    assert before == "no", "admin.conf's group is bound to nothing on a fresh real server"
    dry = results.pop("dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "api ensure ClusterRoleBinding kubeadm:cluster-admins (with super-admin.conf)" in dry.stdout, dry.stdout
    assert results.pop("dry-run can-i") == "no", "a dry run made the binding"
    for phase, r in results.items():
        assert r.returncode == 0, f"{phase}: {r.stdout}{r.stderr}"
    assert (
        "api ensure ClusterRoleBinding kubeadm:cluster-admins (with super-admin.conf)"
        in results["upload-config all"].stdout
    )
    assert can_i(control_plane) == "yes"
    have = versions(control_plane)
    assert len(have) == sum(map(len, WRITTEN.values())), have
    for phase in API_PHASES:
        again = control_plane.phase(phase)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "super-admin" not in again.stdout
    assert versions(control_plane) == have, "a second run wrote something"


def test_token_create_list_delete_with_admin_conf(control_plane, api_phases):
    kc = ["--kubeconfig", str(control_plane.admin_conf)]
    r = kubeinit("token", "create", "--print-join-command", "--description", "loopback", *kc)
    assert r.returncode == 0, r.stderr
    join = r.stdout.split()
    token = join[join.index("--token") + 1]
    ca = (control_plane.etc / "pki" / "ca.crt").read_bytes()
    assert join[join.index("--discovery-token-ca-cert-hash") + 1] == pin.ca_pin(ca)
    listed = kubeinit("token", "list", "-o", "json", *kc)
    assert listed.returncode == 0, listed.stderr
    tid = token.split(".")[0]
    assert tid in listed.stdout and token.split(".")[1] not in listed.stdout, "the secret half is masked"
    secret = control_plane.kubectl("-n", "kube-system", "get", "secret", f"bootstrap-token-{tid}", "-o", "json")
    assert secret.returncode == 0 and json.loads(secret.stdout)["type"] == "bootstrap.kubernetes.io/token"
    gone = kubeinit("token", "delete", tid, "--yes", *kc)
    assert gone.returncode == 0, gone.stderr
    assert tid not in kubeinit("token", "list", *kc).stdout


@pytest.fixture(scope="session")
def signed(control_plane, api_phases):
    """A token made with `kubeinit token create`, once the real bootstrapsigner signed cluster-info for it."""
    r = kubeinit("token", "create", TOKEN, "--kubeconfig", str(control_plane.admin_conf))
    assert r.returncode == 0, r.stderr
    tid = TOKEN.split(".")[0]

    def signature():
        got = control_plane.kubectl("-n", "kube-public", "get", "configmap", "cluster-info", "-o", "json")
        data = json.loads(got.stdout)["data"] if got.returncode == 0 else {}
        return data if f"jws-kubeconfig-{tid}" in data else None

    # the controller-manager starts its bootstrapsigner some seconds after launch
    return wait_for(
        "the bootstrapsigner's signature",
        signature,
        90,
        interval=0.5,
        why=lambda: control_plane.log("kube-controller-manager"),
    )


def test_cluster_info_is_signed_by_the_real_bootstrapsigner(signed):
    tid, secret = TOKEN.split(".")
    assert jws.verify_detached(signed[f"jws-kubeconfig-{tid}"], signed["kubeconfig"], tid, secret)
    assert not jws.verify_detached(signed[f"jws-kubeconfig-{tid}"], signed["kubeconfig"], tid, "f" * 16)


def test_join_discovery_trusts_the_right_pin_and_refuses_the_rest(control_plane, signed):
    ca = (control_plane.etc / "pki" / "ca.crt").read_bytes()
    right = pin.ca_pin(ca)
    got = discovery.discover(control_plane.endpoint, TOKEN, [right], timeout=10, interval=0.5)
    assert got["server"] == f"https://{control_plane.endpoint}"
    with pytest.raises(discovery.DiscoveryFailed, match=r"matches none of the --discovery-token-ca-cert-hash pins"):
        discovery.discover(control_plane.endpoint, TOKEN, ["sha256:" + "0" * 64], timeout=10, interval=0.5)
    with pytest.raises(discovery.DiscoveryFailed, match=r"is not signed with token loopbk's secret"):
        discovery.discover(control_plane.endpoint, "loopbk.ffffffffffffffff", [right], timeout=10, interval=0.5)
    with pytest.raises(discovery.DiscoveryFailed, match=r"token id 'zzzzzz' is invalid for this cluster"):
        discovery.discover(control_plane.endpoint, "zzzzzz.0123456789abcdef", [right], timeout=1, interval=0.5)


@pytest.fixture(scope="session")
def kubelet(control_plane, signed):
    """The real kubelet with the bootstrap-kubelet.conf discovery made, kubeinit's config.yaml and
    kubeadm-flags.env flags (paths and ports moved into the temp dir). No container runtime runs
    here: the kubelet gets through TLS bootstrap, which comes before it needs one."""
    from kubeinit.phases import kubelet as kubeletm

    cp = control_plane
    ctx, target = rendered(cp.config)
    home = cp.root / "kubelet"
    (home / "manifests").mkdir(parents=True)
    cluster = discovery.discover(
        cp.endpoint, TOKEN, [pin.ca_pin((cp.etc / "pki" / "ca.crt").read_bytes())], timeout=10, interval=0.5
    )
    (home / "bootstrap-kubelet.conf").write_text(
        kubeconfig.bootstrap(cluster["server"], cluster["certificate-authority-data"], TOKEN)
    )
    config = yaml.safe_load(kubeletm.config_yaml(ctx, resolved_active=False))
    healthz, port = free_ports(2)
    config |= {"staticPodPath": str(home / "manifests"), "healthzPort": healthz, "port": port}
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    flags = kubeletm.flags(ctx, target, "not-cp-1", frozenset())  # as kubeadm-flags.env has them
    argv = [real_bin("kubelet"), *(f"--{k}={v}" for k, v in flags.items())]
    argv = set_flag(argv, "container-runtime-endpoint", f"unix://{home}/no-runtime.sock")
    # the packages' 10-kubeadm.conf drop-in passes these; here in the temp dir
    for k, v in (
        ("bootstrap-kubeconfig", home / "bootstrap-kubelet.conf"),
        ("kubeconfig", home / "kubelet.conf"),
        ("config", home / "config.yaml"),
        ("cert-dir", home / "pki"),
        ("root-dir", home / "root"),
    ):
        argv = set_flag(argv, k, str(v))
    # kubelet 1.20 makes its device-plugin socket directory under /var/lib/kubelet whatever --root-dir
    # says: removed afterwards when this run made it
    leftover = [d for d in (Path("/var/lib/kubelet"), Path("/var/lib/kubelet/device-plugins")) if not d.exists()]
    p = cp.start("kubelet", argv)
    try:
        yield home, p
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)
        for d in reversed(leftover):
            shutil.rmtree(d, ignore_errors=True)


def test_a_real_kubelet_tls_bootstraps_through_kubeinits_rbac(control_plane, kubelet):
    home, _ = kubelet
    cp = control_plane

    def issued():
        r = cp.kubectl("get", "csr", "-o", "json")
        items = json.loads(r.stdout)["items"] if r.returncode == 0 else []
        return [
            c
            for c in items
            if c["spec"]["username"] == "system:bootstrap:loopbk"
            and any(x["type"] == "Approved" for x in c["status"].get("conditions") or [])
            and c["status"].get("certificate")
        ]

    csrs = wait_for(
        "a CSR of the bootstrap token's identity, approved and signed", issued, 60, why=lambda: cp.log("kubelet")
    )
    assert csrs[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    # the kubelet stores the certificate and points its kubelet.conf at it
    wait_for(
        "the kubelet's client certificate",
        lambda: (home / "pki" / "kubelet-client-current.pem").exists(),
        30,
        why=lambda: cp.log("kubelet"),
    )
    conf = yaml.safe_load((home / "kubelet.conf").read_text())
    assert conf["users"][0]["user"]["client-certificate"].endswith("kubelet-client-current.pem")
    who = cp.kubectl("auth", "can-i", "get", "nodes/cp-1", kubeconfig=home / "kubelet.conf")
    assert who.stdout.strip() in ("yes", "no"), who.stderr  # authenticated: the server answers, no 401


def test_mark_control_plane_on_the_registered_node(control_plane, kubelet):
    """The kubelet here stops after TLS bootstrap (no container runtime runs on this host), before it
    registers its Node; the Node is registered as it would, with the client certificate the real
    controller-manager issued it (kubelet.conf; NodeRestriction lets a node create only itself)."""
    cp = control_plane
    home, _ = kubelet
    wait_for("the kubelet's client certificate", lambda: (home / "pki" / "kubelet-client-current.pem").exists(), 30)
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "cp-1", "labels": {"kubernetes.io/hostname": "cp-1"}},
        "spec": {"taints": [{"key": "example.com/own", "effect": "NoSchedule"}]},
    }  # not a controller's
    (home / "node.json").write_text(json.dumps(node))
    made = cp.kubectl("create", "-f", str(home / "node.json"), kubeconfig=home / "kubelet.conf")
    assert made.returncode == 0 or "AlreadyExists" in made.stderr, made.stderr
    r = cp.phase("mark-control-plane")
    assert r.returncode == 0, r.stdout + r.stderr
    node = json.loads(cp.kubectl("get", "node", "cp-1", "-o", "json").stdout)
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert {"key": "example.com/own", "effect": "NoSchedule"} in node["spec"]["taints"], "the node's own is kept"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "cp-1"
    rv = node["metadata"]["resourceVersion"]
    again = cp.phase("mark-control-plane")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(cp.kubectl("get", "node", "cp-1", "-o", "json").stdout)["metadata"]["resourceVersion"] == rv


def test_the_control_plane_ran_throughout(control_plane):
    dead = {
        n: control_plane.log(n) for n, p in control_plane.processes.items() if p.poll() is not None and n != "kubelet"
    }
    assert not dead, dead
