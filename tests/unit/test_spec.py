"""The cluster spec: defaults, kubeadm documents, and one clear line for every bad input."""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeinit import spec as specmod
from kubeinit.certs.addresses import service_vip
from kubeinit.errors import SpecError, UserError

GOOD = {
    "apiVersion": "kubeinit.dev/v1alpha1",
    "kind": "Cluster",
    "name": "demo",
    "kubernetesVersion": "v1.33.1",
    "controlPlaneEndpoint": "10.0.0.10:6443",
    "networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16", "dnsDomain": "cluster.local"},
    "hosts": [
        {"name": "cp1", "address": "10.0.0.10", "role": "control-plane"},
        {"name": "w1", "address": "10.0.0.11", "role": "worker", "ssh": {"user": "kube", "port": 2222}},
        {"name": "w2", "address": "10.0.0.12", "role": "worker"},
    ],
}


def _with(path: str, value):
    """A copy of GOOD with the value at a dotted/indexed path replaced (None deletes it)."""
    import copy

    doc = copy.deepcopy(GOOD)
    cur = doc
    parts = path.replace("]", "").replace("[", ".").split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if p.isdigit() else cur.setdefault(p, {})
    last = parts[-1]
    if value is _DELETE:
        del cur[int(last) if last.isdigit() else last]
    elif last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return doc


_DELETE = object()


def test_good_file_loads_with_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(GOOD))
    s = specmod.load_file(f)
    assert [h.name for h in s.control_planes] == ["cp1"]
    assert [h.name for h in s.workers] == ["w1", "w2"]
    assert s.hosts[1].ssh.user == "kube" and s.hosts[1].ssh.port == 2222
    assert str(service_vip(s.networking.service_subnet)) == "10.96.0.1"
    assert s.networking.dns_ip == "10.96.0.10"
    assert s.api_endpoint() == "https://10.0.0.10:6443"
    assert s.pki.algorithm == "RSA-2048" and s.pki.validity_hours == 8760
    assert s.source == str(f)


def test_endpoint_without_port_gets_bind_port():
    s = specmod.from_dict({**GOOD, "controlPlaneEndpoint": "lb.example.com"})
    assert s.api_endpoint() == "https://lb.example.com:6443"


def test_version_without_v_is_normalised():
    s = specmod.from_dict({**GOOD, "kubernetesVersion": "1.32.0"})
    assert s.kubernetes_version == "v1.32.0"


def test_kubeadm_v1beta4_documents(tmp_path):
    f = tmp_path / "kubeadm.yaml"
    f.write_text(
        textwrap.dedent("""\
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: InitConfiguration
        nodeRegistration:
          name: node-a
        localAPIEndpoint:
          advertiseAddress: 192.168.50.4
          bindPort: 6443
        ---
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: ClusterConfiguration
        clusterName: kcluster
        kubernetesVersion: v1.31.2
        controlPlaneEndpoint: cp.example.com:6443
        encryptionAlgorithm: ECDSA-P256
        certificateValidityPeriod: 4380h
        networking:
          podSubnet: 10.32.0.0/16
          serviceSubnet: 10.112.0.0/16
        apiServer:
          certSANs: [api.example.com, 192.168.50.100]
          extraArgs:
            - name: audit-log-maxage
              value: "7"
        ---
        apiVersion: kubelet.config.k8s.io/v1beta1
        kind: KubeletConfiguration
        cgroupDriver: systemd
        """)
    )
    s = specmod.load_file(f)
    assert s.name == "kcluster" and s.kubernetes_version == "v1.31.2"
    assert s.hosts[0].name == "node-a" and s.hosts[0].address == "192.168.50.4"
    assert s.pki.algorithm == "ECDSA-P256" and s.pki.validity_hours == 4380
    assert s.pki.cert_sans == ("api.example.com", "192.168.50.100")
    assert s.networking.service_subnet == "10.112.0.0/16"
    assert s.extra_args["apiServer"] == {"audit-log-maxage": "7"}
    assert s.api_endpoint() == "https://cp.example.com:6443"


# (path, value, what the one line must say). Each is a different mistake a user makes.
BAD = [
    ("apiVersion", "v1", "apiVersion: 'v1' is not supported"),
    ("apiVersion", _DELETE, "apiVersion: is missing"),
    ("kind", "Clustr", "kind: 'Clustr' is not supported; use Cluster"),
    ("name", "Demo_Cluster", "name: 'Demo_Cluster' is not a valid cluster name"),
    ("kubernetesVersion", "latest", "kubernetesVersion: 'latest' is not a version like"),
    ("kubernetesVersion", "v1.20.0", "kubernetesVersion: 'v1.20.0' is not supported"),
    ("kubernetesVersion", "v2.31.0", "is not supported"),
    ("controlPlaneEndpoint", "lb:99999", "controlPlaneEndpoint: 'lb:99999' has an invalid port"),
    ("controlPlaneEndpoint", "bad host!", "controlPlaneEndpoint: 'bad host!' is not host or host:port"),
    ("bindPort", 0, "bindPort: 0 is not a TCP port"),
    ("bindPort", "six", "bindPort: must be an integer, not text"),
    ("networking.serviceSubnet", "10.96.0.0/33", "networking.serviceSubnet: '10.96.0.0/33' is not a CIDR"),
    ("networking.serviceSubnet", "10.96.0.1/12", "has host bits set"),
    ("networking.serviceSubnet", "10.96.0.0/30", "must hold at least 10 addresses"),
    ("networking.serviceSubnet", "10.0.0.0/8", "at most 2^20"),
    ("networking.podSubnet", "10.96.0.0/16", "networking.podSubnet: '10.96.0.0/16' overlaps the service subnet"),
    ("networking.podSubnet", "not-a-cidr", "networking.podSubnet: 'not-a-cidr' is not a CIDR"),
    ("networking.dnsDomain", "Cluster Local", "networking.dnsDomain: 'Cluster Local' is not a DNS domain"),
    ("networking.colour", "blue", "networking.colour: unknown field 'colour'"),
    ("networking", ["a"], "networking: must be a mapping, not a list"),
    ("hosts", [], "hosts: is empty; list at least one control-plane host"),
    ("hosts", "cp1", "hosts: must be a list, not text"),
    ("hosts[2].role", "master", "hosts[2].role: 'master' is not one of control-plane, worker"),
    ("hosts[1].name", "cp1", "hosts[1].name: 'cp1' is already used by hosts[0]"),
    ("hosts[2].address", "10.0.0.11", "hosts[2].address: '10.0.0.11' is already used by hosts[1]"),
    ("hosts[1].address", "10.244.0.5", "hosts[1].address: 10.244.0.5 lies inside networking.podSubnet"),
    ("hosts[1].address", "not an address", "hosts[1].address: 'not an address' is neither"),
    ("hosts[1].address", "999.1.1.1", "hosts[1].address: '999.1.1.1' is not a valid IPv4 address"),
    ("hosts[0].name", _DELETE, "hosts[0].name: is missing"),
    ("hosts[0].address", _DELETE, "hosts[0].address: is missing"),
    ("hosts[0].role", "worker", "hosts: has no host with role control-plane"),
    ("hosts[1].ssh.port", 70000, "hosts[1].ssh.port: 70000 is not a TCP port"),
    ("hosts[1].ssh.port", "22", "hosts[1].ssh.port: must be an integer, not text"),
    ("hosts[1].ssh.user", "Bad User", "hosts[1].ssh.user: 'Bad User' is not a user name"),
    ("hosts[1].ssh.password", "hunter2", "hosts[1].ssh.password: unknown field"),
    ("hosts[1].labels", {"a": "b"}, "hosts[1].labels: unknown field 'labels'"),
    ("hosts[1]", "w1", "hosts[1]: must be a mapping, not text"),
    (
        "pki.keyAlgorithm",
        "DSA-1024",
        "pki.keyAlgorithm: 'DSA-1024' is not one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256",
    ),
    ("pki.certificateValidity", "one year", "pki.certificateValidity: 'one year' is not a duration"),
    ("pki.certificateValidity", "100000h", "is longer than the CA's validity"),
    ("pki.certificatesDir", "pki", "pki.certificatesDir: 'pki' must be an absolute path"),
    ("pki.certSANs", ["ok.example.com", "bad san!"], "pki.certSANs[1]: 'bad san!' is neither"),
    ("components.apiServer.extraArgs", {"--v": "2"}, "components.apiServer.extraArgs.--v: is not a flag name"),
    ("components.kubeProxy", {}, "components.kubeProxy: unknown field"),
    (
        "artifacts.containerd",
        {"version": "1.7.24", "sha256": "abc"},
        "artifacts.containerd.sha256: 'abc' is not a sha256 digest",
    ),
    ("artifacts.containerd", {"sha256": "a" * 64}, "artifacts.containerd.version: is missing"),
    ("artifacts.arch", "s390x", "artifacts.arch: 's390x' is not one of amd64, arm64"),
    ("artifacts.mirror", "ftp://x", "artifacts.mirror: 'ftp://x' must be an http(s) URL"),
    ("extra", 1, "extra: unknown field 'extra'"),
]


@pytest.mark.parametrize("path,value,expected", BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD])
def test_malformed_spec_gives_one_clear_line_and_exit_2(tmp_path, kubeinit_cli, path, value, expected):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(_with(path, value)))
    r = kubeinit_cli("config", "validate", "--config", str(f))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert expected in lines[0], lines[0]
    assert lines[0].startswith(f"error: {f}: ")


def test_more_than_one_control_plane_needs_an_endpoint():
    doc = _with("hosts[1].role", "control-plane")
    del doc["controlPlaneEndpoint"]
    with pytest.raises(SpecError, match="controlPlaneEndpoint: is required with more than one control-plane"):
        specmod.from_dict(doc)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", "is empty"),
        ("hosts: [\n", "is not valid YAML at line"),
        ("- a\n- b\n", "document 1: must be a mapping, not a list"),
        (
            "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\n---\napiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\n",
            "holds 2 documents",
        ),
        ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n", "'JoinConfiguration' is not supported here"),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  extraArgs: {v: '2'}\n",
            "apiServer.extraArgs: must be a list",
        ),
    ],
)
def test_malformed_files(tmp_path, kubeinit_cli, text, expected):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    r = kubeinit_cli("config", "validate", "--config", str(f))
    assert r.returncode == 2
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--kubernetes-version", "banana"], "--kubernetes-version: 'banana' is not a version"),
        (["--pod-network-cidr", "10.96.0.0/16"], "--pod-network-cidr: '10.96.0.0/16' overlaps the service subnet"),
        (["--service-cidr", "300.1.0.0/16"], "--service-cidr: '300.1.0.0/16' is not a CIDR"),
        (["--apiserver-advertise-address", "nope"], "--apiserver-advertise-address: 'nope' is not an IP address"),
        (["--control-plane-endpoint", "a b"], "--control-plane-endpoint: 'a b' is not host or host:port"),
        (["--node-name", "Bad_Name"], "--node-name: 'Bad_Name' is not a valid node name"),
        (["--cert-dir", "relative/pki"], "--cert-dir: 'relative/pki' must be an absolute path"),
        (["--skip-phases", "certs/nope"], "'certs/nope' is not a phase"),
        (["--config", "/nonexistent/cluster.yaml"], "no such file '/nonexistent/cluster.yaml'"),
    ],
)
def test_malformed_flags(kubeinit_cli, flags, expected):
    r = kubeinit_cli("init", "--dry-run", "--apiserver-advertise-address", "10.1.2.3", *flags)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_option_is_a_usage_error(kubeinit_cli):
    r = kubeinit_cli("init", "--no-such-flag")
    assert r.returncode == 2


# Any YAML value at all: the loader either returns a spec or raises a SpecError, never crashes.
yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "",
            "cp1",
            "worker",
            "control-plane",
            "10.0.0.1",
            "10.96.0.0/12",
            "v1.33.1",
            "1.31",
            "RSA-2048",
            "x" * 70,
            "lb:6443",
            "::1",
            "[::1]:6443",
            "8760h",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "address",
                    "role",
                    "ssh",
                    "hosts",
                    "networking",
                    "podSubnet",
                    "serviceSubnet",
                    "pki",
                    "keyAlgorithm",
                    "port",
                    "user",
                    "kubernetesVersion",
                    "artifacts",
                    "mirror",
                    "components",
                    "apiServer",
                    "extraArgs",
                    "version",
                    "sha256",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "hosts",
                "networking",
                "pki",
                "kubernetesVersion",
                "controlPlaneEndpoint",
                "bindPort",
                "components",
                "artifacts",
                "managed",
                "junk",
            ]
        ),
        yaml_values,
        max_size=6,
    ),
    use_kubeadm=st.booleans(),
)
def test_spec_loader_never_crashes(body, use_kubeadm):
    if use_kubeadm:
        doc = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", **body}
        docs = [doc]
    else:
        docs = [{"apiVersion": "kubeinit.dev/v1alpha1", "kind": "Cluster", **body}]
    try:
        s = specmod.load_documents(docs, source="fuzz.yaml")
    except UserError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert s.control_planes


def _special_file(tmp_path, kind: str) -> str:
    if kind == "fifo":
        os.mkfifo(tmp_path / "c.yaml")  # no writer ever comes
        return str(tmp_path / "c.yaml")
    if kind == "big":
        with open(tmp_path / "c.yaml", "wb") as f:
            f.truncate(100 * 1024 * 1024)  # sparse: 100 MiB of zeros without writing them
        return str(tmp_path / "c.yaml")
    return {"zero": "/dev/zero", "dir": str(tmp_path)}[kind]


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("zero", "/dev/zero is a character device, not a regular file"),
        ("dir", "is a directory, not a regular file"),
        ("big", "is 100.0 MiB, more than a cluster file can need (kubeinit reads at most 1.0 MiB, whole into memory)"),
    ],
)
def test_cluster_file_must_be_a_small_regular_file(tmp_path, kind, expected):
    import resource
    import subprocess
    import sys
    import time

    def limit_memory():  # the old reader of /dev/zero would take all the box has
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    path = _special_file(tmp_path, kind)
    t = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "kubeinit", "config", "validate", "--config", path],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=limit_memory,
        env={**os.environ, "KUBEINIT_HOME": str(tmp_path / "home")},
    )
    assert time.monotonic() - t < 10, "refused at once"
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_managed_cluster_file_from_a_fifo_is_refused_at_once(tmp_path):
    import threading

    from kubeinit.managed import spec as mspec

    path, outcome = _special_file(tmp_path, "fifo"), []

    def load():
        try:
            mspec.load_file(path)
        except UserError as e:
            outcome.append(e)

    reader = threading.Thread(target=load, daemon=True)  # the old reader waits for a writer forever
    reader.start()
    reader.join(5)
    assert outcome and "is a FIFO (named pipe), not a regular file" in str(outcome[0])
    assert outcome[0].exit_code == 2
