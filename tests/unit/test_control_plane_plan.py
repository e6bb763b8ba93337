"""The control-plane phase over scripted facts: kubeadm's static pod manifests.

The expected flags below are written from the kubeadm reference (§5.2-5.4), not from
the code; every manifest is checked against the Kubernetes API schema of its version.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import scripted
import yaml
from factsstub import FactsStub  # noqa: E402  (tests/unit is on sys.path)

from kubeinit import spec as specmod
from kubeinit.context import Context, Options, Target
from kubeinit.facts.host import Mode
from kubeinit.phases import control_plane as cp
from kubeinit.steps import Run, Skip, Upload

PKI = "/etc/kubernetes/pki"
ADDR = "10.0.0.1"
NAMES = ("apiserver", "controller-manager", "scheduler")
FILES = {n: f"/etc/kubernetes/manifests/kube-{n}.yaml" for n in NAMES}
CA_DIRS = ("/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates")

APISERVER = {
    "advertise-address": ADDR,
    "allow-privileged": "true",
    "authorization-mode": "Node,RBAC",
    "client-ca-file": f"{PKI}/ca.crt",
    "enable-admission-plugins": "NodeRestriction",
    "enable-bootstrap-token-auth": "true",
    "etcd-cafile": f"{PKI}/etcd/ca.crt",
    "etcd-certfile": f"{PKI}/apiserver-etcd-client.crt",
    "etcd-keyfile": f"{PKI}/apiserver-etcd-client.key",
    "etcd-servers": "https://127.0.0.1:2379",
    "kubelet-client-certificate": f"{PKI}/apiserver-kubelet-client.crt",
    "kubelet-client-key": f"{PKI}/apiserver-kubelet-client.key",
    "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
    "proxy-client-cert-file": f"{PKI}/front-proxy-client.crt",
    "proxy-client-key-file": f"{PKI}/front-proxy-client.key",
    "requestheader-allowed-names": "front-proxy-client",
    "requestheader-client-ca-file": f"{PKI}/front-proxy-ca.crt",
    "requestheader-extra-headers-prefix": "X-Remote-Extra-",
    "requestheader-group-headers": "X-Remote-Group",
    "requestheader-username-headers": "X-Remote-User",
    "secure-port": "6443",
    "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
    "service-account-key-file": f"{PKI}/sa.pub",
    "service-account-signing-key-file": f"{PKI}/sa.key",
    "service-cluster-ip-range": "10.96.0.0/12",
    "tls-cert-file": f"{PKI}/apiserver.crt",
    "tls-private-key-file": f"{PKI}/apiserver.key",
}
CM_CONF = "/etc/kubernetes/controller-manager.conf"
CONTROLLER_MANAGER = {
    "bind-address": "127.0.0.1",
    "leader-elect": "true",
    "kubeconfig": CM_CONF,
    "authentication-kubeconfig": CM_CONF,
    "authorization-kubeconfig": CM_CONF,
    "client-ca-file": f"{PKI}/ca.crt",
    "requestheader-client-ca-file": f"{PKI}/front-proxy-ca.crt",
    "root-ca-file": f"{PKI}/ca.crt",
    "service-account-private-key-file": f"{PKI}/sa.key",
    "cluster-signing-cert-file": f"{PKI}/ca.crt",
    "cluster-signing-key-file": f"{PKI}/ca.key",
    "use-service-account-credentials": "true",
    "controllers": "*,bootstrapsigner,tokencleaner",
    "cluster-name": "t",
}
POD_NETWORK = {
    "allocate-node-cidrs": "true",
    "cluster-cidr": "10.244.0.0/16",
    "service-cluster-ip-range": "10.96.0.0/12",
}
SCHED_CONF = "/etc/kubernetes/scheduler.conf"
SCHEDULER = {
    "bind-address": "127.0.0.1",
    "leader-elect": "true",
    "kubeconfig": SCHED_CONF,
    "authentication-kubeconfig": SCHED_CONF,
    "authorization-kubeconfig": SCHED_CONF,
}


class ScriptedHost(scripted.FilesHost):
    """A host's CA directories and manifests directory (its mode, None: absent), given as parsed
    facts, and its files."""

    def __init__(self, files=None, ca_dirs=CA_DIRS, manifests_mode: int | None = 0o700):
        super().__init__(files)
        self.ca_dirs, self.manifests_mode = ca_dirs, manifests_mode

    def typed(self) -> dict:
        return {cp.CA_DIRS: frozenset(self.ca_dirs), Mode(cp.MANIFESTS): self.manifests_mode}


def make_spec(version="v1.34.2", extra=None, pod_subnet="10.244.0.0/16", address=ADDR):
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "t",
            "kubernetesVersion": version,
            # no pod range: no pod network either (the CNIs kubeinit installs need one)
            "networking": {"podSubnet": pod_subnet, **({} if pod_subnet else {"cni": "none"})},
            "hosts": [{"name": "n1", "address": address, "role": "control-plane"}],
            "components": extra or {},
        }
    )


def ca_files():
    return {f"{PKI}/ca.crt": (scripted.sha("ca.crt"), 0o644), f"{PKI}/ca.key": (scripted.sha("ca.key"), 0o600)}


def plan_all(host, spec=None):
    """Plan the three components as the executor does (gather, then plan), one context."""
    spec = spec or make_spec()
    t = Target(spec.hosts[0], lambda h: host, facts=FactsStub(host.typed(), conn=host))
    ctx = Context(spec, [t], Options())
    steps = {}
    for n in NAMES:
        declared = cp.facts(ctx, t)
        t.facts.gather(declared)
        t.facts.declared = set(declared)  # the plan asks nothing else
        steps[n] = list(cp.plan_component(ctx, t, name=n))
    return steps


def uploaded(steps, name) -> dict:
    up = [s for s in steps[name] if isinstance(s, Upload)]
    assert len(up) == 1, steps[name]
    return yaml.safe_load(up[0].data)


def flags(pod) -> tuple[str, dict[str, str]]:
    binary, *args = pod["spec"]["containers"][0]["command"]
    assert args == sorted(args), "kubeadm sorts the flags by name"
    out = {}
    for a in args:
        assert a.startswith("--") and "=" in a, a
        k, _, v = a[2:].partition("=")
        assert k not in out, f"--{k} twice"
        out[k] = v
    return binary, out


def manifests(**kw) -> dict[str, dict]:
    steps = plan_all(ScriptedHost(ca_files()), make_spec(**kw))
    return {n: uploaded(steps, n) for n in NAMES}


def test_flags_are_kubeadms():
    pods = manifests()
    assert flags(pods["apiserver"]) == ("kube-apiserver", APISERVER)
    assert flags(pods["controller-manager"]) == ("kube-controller-manager", CONTROLLER_MANAGER | POD_NETWORK)
    assert flags(pods["scheduler"]) == ("kube-scheduler", SCHEDULER)


def test_without_a_pod_subnet_no_node_cidrs_are_allocated():
    pods = manifests(pod_subnet="")
    assert flags(pods["controller-manager"])[1] == CONTROLLER_MANAGER
    assert flags(pods["apiserver"])[1] == APISERVER  # the service range is the apiserver's either way


def test_extra_args_replace_kubeadms_value_of_the_same_name_and_add_others():
    pods = manifests(
        extra={
            "apiServer": {
                "extraArgs": {
                    "secure-port": "7443",
                    "audit-log-path": "/var/log/audit.log",
                    "enable-admission-plugins": "NodeRestriction,AlwaysPullImages",
                }
            },
            "controllerManager": {"extraArgs": {"bind-address": "0.0.0.0", "flex-volume-plugin-dir": "/opt/flex"}},
            "scheduler": {"extraArgs": {"v": "4"}},
        }
    )
    api = flags(pods["apiserver"])[1]
    assert api == APISERVER | {
        "secure-port": "7443",
        "audit-log-path": "/var/log/audit.log",
        "enable-admission-plugins": "NodeRestriction,AlwaysPullImages",
    }
    assert flags(pods["scheduler"])[1] == SCHEDULER | {"v": "4"}
    cm = pods["controller-manager"]
    assert flags(cm)[1] == CONTROLLER_MANAGER | POD_NETWORK | {
        "bind-address": "0.0.0.0",
        "flex-volume-plugin-dir": "/opt/flex",
    }
    c = cm["spec"]["containers"][0]
    # an unspecified bind address is probed on the pod IP (no host), as kubeadm does
    assert "host" not in c["livenessProbe"]["httpGet"]
    flex = next(v for v in cm["spec"]["volumes"] if v["name"] == "flexvolume-dir")
    assert flex["hostPath"]["path"] == "/opt/flex"


def test_authorization_config_drops_the_default_mode():
    pods = manifests(extra={"apiServer": {"extraArgs": {"authorization-config": "/etc/kubernetes/authz.yaml"}}})
    api = flags(pods["apiserver"])[1]
    assert "authorization-mode" not in api and api["authorization-config"] == "/etc/kubernetes/authz.yaml"


@pytest.mark.parametrize("version", ["v1.31.4", "v1.32.5", "v1.33.1", "v1.34.2", "v1.35.0"])
def test_every_manifest_is_a_valid_pod_for_its_kubernetes_version(version):
    minor = int(version.split(".")[1])
    pods = manifests(
        version=version,
        pod_subnet="",
        extra={"apiServer": {"extraArgs": {"oidc-issuer-url": "https://id.example.com: #x"}}},
    )
    for name, pod in pods.items():
        kubernetes_validate.validate(pod, f"1.{minor}.0", strict=True)
        c = pod["spec"]["containers"][0]
        assert pod["metadata"]["namespace"] == "kube-system"
        assert pod["metadata"]["labels"] == {"component": f"kube-{name}", "tier": "control-plane"}
        assert c["image"] == f"registry.k8s.io/kube-{name}:{version}" and c["imagePullPolicy"] == "IfNotPresent"
        spec = pod["spec"]
        assert spec["hostNetwork"] is True and spec["priorityClassName"] == "system-node-critical"
        assert spec["priority"] == 2000001000
        assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        assert c["resources"] == {
            "requests": {"cpu": {"apiserver": "250m", "controller-manager": "200m", "scheduler": "100m"}[name]}
        }
        # probes: kubeadm's createHTTPProbe values
        live, start = c["livenessProbe"], c["startupProbe"]
        assert (
            live["initialDelaySeconds"],
            live["timeoutSeconds"],
            live["failureThreshold"],
            live["periodSeconds"],
        ) == (10, 15, 8, 10)
        assert (
            start["initialDelaySeconds"],
            start["timeoutSeconds"],
            start["failureThreshold"],
            start["periodSeconds"],
        ) == (10, 15, 24, 10)
        if "readinessProbe" in c:
            ready = c["readinessProbe"]
            assert "initialDelaySeconds" not in ready
            assert (ready["timeoutSeconds"], ready["failureThreshold"], ready["periodSeconds"]) == (15, 3, 1)
        port = {"apiserver": 6443, "controller-manager": 10257, "scheduler": 10259}[name]
        host = ADDR if name == "apiserver" else "127.0.0.1"
        for p in (c["livenessProbe"], c["startupProbe"], c.get("readinessProbe")):
            if p is not None:
                assert p["httpGet"]["scheme"] == "HTTPS" and p["httpGet"]["host"] == host
                assert p["httpGet"]["port"] == ("probe-port" if minor >= 34 else port)
        if minor >= 34:
            assert c["ports"] == [{"containerPort": port, "name": "probe-port", "protocol": "TCP"}]
        else:
            assert "ports" not in c
    paths = {
        n: (
            p["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"],
            p["spec"]["containers"][0].get("readinessProbe", {}).get("httpGet", {}).get("path"),
        )
        for n, p in pods.items()
    }
    assert paths["apiserver"] == ("/livez", "/readyz")
    assert paths["controller-manager"] == ("/healthz", None)
    assert paths["scheduler"] == (("/livez", "/readyz") if minor >= 32 else ("/healthz", None))
    assert flags(pods["apiserver"])[1]["oidc-issuer-url"] == "https://id.example.com: #x"


def test_apiserver_annotation_and_volumes():
    pods = manifests()
    api = pods["apiserver"]
    assert api["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": f"{ADDR}:6443"
    }

    def vols(pod):
        spec = pod["spec"]
        mounts = {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in spec["containers"][0]["volumeMounts"]}
        hp = {v["name"]: (v["hostPath"]["path"], v["hostPath"]["type"]) for v in spec["volumes"]}
        assert [v["name"] for v in spec["volumes"]] == sorted(hp), "kubeadm sorts volumes by name"
        assert set(mounts) == set(hp)
        return {n: (hp[n][0], hp[n][1], mounts[n][1]) for n in hp if mounts[n][0] == hp[n][0]}

    ca = {
        "ca-certs": ("/etc/ssl/certs", "DirectoryOrCreate", True),
        "etc-ca-certificates": ("/etc/ca-certificates", "DirectoryOrCreate", True),
        "usr-share-ca-certificates": ("/usr/share/ca-certificates", "DirectoryOrCreate", True),
        "usr-local-share-ca-certificates": ("/usr/local/share/ca-certificates", "DirectoryOrCreate", True),
    }
    assert vols(api) == {"k8s-certs": (PKI, "DirectoryOrCreate", True), **ca}
    assert vols(pods["controller-manager"]) == {
        "k8s-certs": (PKI, "DirectoryOrCreate", True),
        **ca,
        "kubeconfig": (CM_CONF, "FileOrCreate", True),
        "flexvolume-dir": ("/usr/libexec/kubernetes/kubelet-plugins/volume/exec", "DirectoryOrCreate", False),
    }
    assert vols(pods["scheduler"]) == {"kubeconfig": (SCHED_CONF, "FileOrCreate", True)}


def test_only_the_ca_directories_the_host_has_are_mounted():
    steps = plan_all(ScriptedHost(ca_files(), ca_dirs=("/etc/pki/ca-trust", "/etc/pki/tls/certs")))
    names = [v["name"] for v in uploaded(steps, "apiserver")["spec"]["volumes"]]
    assert names == ["ca-certs", "etc-pki-ca-trust", "etc-pki-tls-certs", "k8s-certs"]


def test_ipv6_advertise_address():
    spec = specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "t",
            "kubernetesVersion": "v1.34.2",
            "networking": {"serviceSubnet": "fd00:10:96::/108", "podSubnet": "fd00:10:244::/56", "cni": "bridge"},
            "hosts": [{"name": "n1", "address": "fd00::1", "role": "control-plane"}],
        }
    )
    api = uploaded(plan_all(ScriptedHost(ca_files()), spec), "apiserver")
    assert (
        api["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]
        == "[fd00::1]:6443"
    )
    assert api["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] == "fd00::1"
    kubernetes_validate.validate(api, "1.34.0", strict=True)


def test_external_ca_leaves_the_signing_flags_empty():
    files = {f"{PKI}/ca.crt": (scripted.sha("ca.crt"), 0o644)}  # no ca.key
    cm = flags(uploaded(plan_all(ScriptedHost(files)), "controller-manager"))[1]
    assert cm["cluster-signing-cert-file"] == "" and cm["cluster-signing-key-file"] == ""


def test_fresh_host_plans_three_0600_manifests_in_one_round_trip():
    host = ScriptedHost(ca_files(), manifests_mode=None)
    steps = plan_all(host)
    assert host.commands == 1, "facts cost one round trip for all three components"
    first = steps["apiserver"][0]
    assert isinstance(first, Run) and "mkdir -p -m 0700 /etc/kubernetes/manifests" in first.argv[2]
    for n in NAMES:
        up = [s for s in steps[n] if isinstance(s, Upload)]
        assert [(u.path, u.mode) for u in up] == [(FILES[n], 0o600)]
    assert not any(isinstance(s, Run) for n in NAMES[1:] for s in steps[n]), "the directory is made once"


def converged(spec=None):
    """The host as a run of this spec leaves it."""
    planned = plan_all(ScriptedHost(ca_files()), spec)
    files = ca_files()
    for n in NAMES:
        up = next(s for s in planned[n] if isinstance(s, Upload))
        files[up.path] = (up.sha256, up.mode)
    return files


def test_converged_host_yields_only_skips():
    host = ScriptedHost(converged())
    steps = plan_all(host)
    for n in NAMES:
        assert all(isinstance(s, Skip) for s in steps[n]), scripted.brief(steps[n])
        assert scripted.brief(steps[n]) == [f"skip {FILES[n]} is up to date"]
    assert host.commands == 1


def test_a_manifest_with_loose_mode_is_rewritten():
    files = converged()
    files[FILES["scheduler"]] = (files[FILES["scheduler"]][0], 0o644)
    steps = plan_all(ScriptedHost(files))
    assert [n for n in NAMES if any(isinstance(s, Upload) for s in steps[n])] == ["scheduler"]


def test_a_new_extra_arg_reuploads_only_that_manifest():
    files = converged()
    spec = make_spec(extra={"controllerManager": {"extraArgs": {"node-monitor-grace-period": "20s"}}})
    steps = plan_all(ScriptedHost(files), spec)
    changed = {n: [b for b in scripted.brief(steps[n]) if not b.startswith("skip")] for n in NAMES}
    assert changed == {
        "apiserver": [],
        "controller-manager": [f"upload {FILES['controller-manager']}"],
        "scheduler": [],
    }
    cm = next(s for s in steps["controller-manager"] if isinstance(s, Upload))
    assert "--node-monitor-grace-period=20s" in yaml.safe_load(cm.data)["spec"]["containers"][0]["command"]
