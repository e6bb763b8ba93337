"""One loader for every cluster file: `config validate -f` accepts exactly the files that
`up -f` (hosts) or `create cluster -f` (managed) accept, and the spec it returns is frozen."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from kubeinit import spec as specmod
from kubeinit.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]

MANAGED = yaml.safe_dump(
    {
        "apiVersion": "kubeinit.dev/v1alpha1",
        "kind": "Cluster",
        "name": "prod",
        "kubernetesVersion": "1.30.4",
        "managed": {
            "provider": "eks",
            "region": "eu-west-1",
            "version": "1.30",
            "nodePools": [{"name": "system", "count": 2, "instanceType": "m5.large", "min": 1, "max": 3}],
        },
    },
    sort_keys=False,
)
HOSTS = """\
apiVersion: kubeinit.dev/v1alpha1
kind: Cluster
name: demo
hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11}
"""
KUBEADM = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration: {name: node-a}
localAPIEndpoint: {advertiseAddress: 192.0.2.4}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.1
"""
# Malformed: each is refused by every command, with the same YAML path.
MALFORMED = {
    "managed-no-apiversion": MANAGED.replace("apiVersion: kubeinit.dev/v1alpha1\n", ""),
    "managed-bad-pool": MANAGED.replace("count: 2", "count: -2"),
    "managed-unknown-top-field": MANAGED + "colour: blue\n",
    "managed-and-hosts": MANAGED + "hosts:\n  - {name: cp1, address: 192.0.2.10, role: control-plane}\n",
    "managed-not-a-mapping": MANAGED.split("managed:")[0] + "managed: [eks]\n",
    "managed-bad-name": MANAGED.replace("name: prod", "name: Prod_1"),
    "managed-number-keys": MANAGED.replace("  provider: eks\n", "  provider: eks\n  1: x\n  b: y\n"),
    "managed-pool-number-keys": MANAGED.replace("    min: 1\n", "    1: 2\n    b: 3\n    min: 1\n"),
    "neither-hosts-nor-managed": "apiVersion: kubeinit.dev/v1alpha1\nkind: Cluster\nname: x\n",
    "hosts-bad-ipv4": HOSTS.replace("192.0.2.11", "999.1.1.1"),
    "hosts-bad-role": HOSTS.replace("role: control-plane", "role: master"),
    "not-yaml": "hosts: [\n",
    "empty": "",
}


def _readme_cluster_files() -> list[str]:
    blocks = re.findall(r"```ya?ml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b for b in blocks if re.search(r"^kind: (Cluster|InitConfiguration|ClusterConfiguration)$", b, re.M)]


def _fixture_cluster_files() -> dict[str, str]:
    import test_spec
    import test_up_cli

    files = {"test_spec.GOOD": yaml.safe_dump(test_spec.GOOD), "managed": MANAGED, "hosts": HOSTS, "kubeadm": KUBEADM}
    managed_spec = ROOT / "tests" / "managed" / "test_managed_spec.py"
    files["test_managed_spec.FILE"] = re.search(r'FILE = """\\\n(.*?)"""', managed_spec.read_text(), re.S).group(1)
    files["test_up_cli.cluster_file"] = Path(test_up_cli.cluster_file(Path(_tmp()))).read_text()
    return files


def _tmp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="kubeinit-loader-")


def corpus() -> list[tuple[str, str]]:
    files = [(f"examples/{p.name}", p.read_text()) for p in sorted((ROOT / "examples").glob("*.y*ml"))]
    files += [(f"README[{i}]", text) for i, text in enumerate(_readme_cluster_files())]
    files += sorted(_fixture_cluster_files().items())
    files += [(f"malformed:{k}", v) for k, v in MALFORMED.items()]
    return files


def test_the_corpus_holds_examples_readme_and_fixtures_of_both_kinds():
    names = [n for n, _ in corpus()]
    assert "examples/vagrant.yaml" in names
    assert any(n.startswith("README[") for n in names), "the README's managed example"
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name,text", corpus(), ids=[n for n, _ in corpus()])
def test_config_validate_accepts_what_up_or_create_cluster_accept(tmp_path, kubeinit_cli, name, text):
    f = tmp_path / "cluster.yaml"
    f.write_text(text)
    validate = kubeinit_cli("config", "validate", "-f", str(f))
    create = kubeinit_cli("create", "cluster", "-f", str(f), "--dry-run")
    # up refuses its unbuilt phases (exit 1) only after the file loaded; a bad file is exit 2, before any host
    up = kubeinit_cli("up", "-f", str(f))
    for r in (validate, create, up):
        assert "Traceback" not in r.stderr
        assert r.returncode in (0, 1, 2), r.stderr
    create_ok, up_ok = create.returncode == 0, up.returncode != 2
    assert (validate.returncode == 0) == (create_ok or up_ok), (validate.stderr, create.stderr, up.stderr)
    assert not (create_ok and up_ok), "a file is one kind of cluster or the other"
    if name.startswith("malformed:"):
        assert validate.returncode == 2 and len(validate.stderr.strip().splitlines()) == 1, validate.stderr
    else:
        assert validate.returncode == 0, validate.stderr
    if validate.returncode == 0:
        kind = "managed" if create_ok else "hosts"
        assert ("a managed " in validate.stdout) == (kind == "managed"), validate.stdout


def test_a_managed_only_file_is_valid_and_up_says_which_command_creates_it(tmp_path, kubeinit_cli):
    f = tmp_path / "m.yaml"
    f.write_text(MANAGED)
    r = kubeinit_cli("config", "validate", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert "valid (a managed eks cluster 'prod' in eu-west-1, 1 node pool)" in r.stdout
    r = kubeinit_cli("up", "-f", str(f))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: {f}: hosts: is empty: this file describes a managed cluster (managed:); "
        f"create it with `kubeinit create cluster -f {f}`"
    )


def test_the_loader_returns_a_typed_managed_section(tmp_path):
    from kubeinit.managed.spec import ManagedSpec, NodePoolSpec

    f = tmp_path / "m.yaml"
    f.write_text(MANAGED)
    s = specmod.load_file(f, require=None)
    assert s.hosts == ()
    assert s.managed == ManagedSpec(
        provider="eks",
        name="prod",
        region="eu-west-1",
        version="1.30",
        node_pools=(NodePoolSpec("system", 2, "m5.large", 1, 3),),
    )
    assert specmod.load_file(f, require="managed") == s
    with pytest.raises(SpecError, match=r"managed: missing: the file has no managed section"):
        specmod.from_dict(yaml.safe_load(HOSTS), require="managed")


@pytest.mark.parametrize(
    "address,ok",
    [
        ("999.1.1.1", False),
        ("10.0.0.256", False),
        ("10.0.0.01", False),
        ("10.0.0.1", True),
        ("node1.example.com", True),
        ("fd00::1", True),
        ("1.2.3", True),
    ],
)  # not four numbers: a (strange) host name
def test_a_host_address_that_looks_like_ipv4_must_be_one(address, ok):
    doc = yaml.safe_load(HOSTS.replace("192.0.2.11", address))
    if ok:
        assert specmod.from_dict(doc).hosts[1].address == address
    else:
        with pytest.raises(SpecError, match=rf"^hosts\[1\]\.address: '{re.escape(address)}' is not a valid IPv4"):
            specmod.from_dict(doc)


def test_the_spec_is_frozen_after_loading():
    s = specmod.from_dict(
        {
            **yaml.safe_load(HOSTS),
            "components": {"apiServer": {"extraArgs": {"v": "2"}}},
            "pki": {"certSANs": ["api.example.com"]},
            "runtime": {"containerd": {"registryMirrors": {"docker.io": ["https://m.example"]}}},
        }
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.hosts[0].address = "192.0.2.99"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.pki.cert_dir = "/tmp"
    with pytest.raises((TypeError, AttributeError)):
        s.hosts.append(s.hosts[0])
    with pytest.raises(TypeError):
        s.extra_args["apiServer"]["v"] = "9"
    with pytest.raises((TypeError, AttributeError)):
        s.pki.cert_sans.append("x")
    with pytest.raises((TypeError, AttributeError)):
        s.runtime.containerd.registry_mirrors["docker.io"].append("https://evil.example")
    assert s.extra_args["apiServer"] == {"v": "2"}


def test_validate_only_reads():
    """validate() used to write the normalised version back into the spec it was judging."""
    s = specmod.ClusterSpec(kubernetes_version="1.32.0", hosts=[specmod.Host("cp1", "192.0.2.10")])
    before = dataclasses.replace(s)
    specmod.validate(s)
    assert s == before and s.kubernetes_version == "v1.32.0"


def test_overrides_give_a_new_spec_and_leave_the_loaded_one(monkeypatch):
    s = specmod.from_dict(yaml.safe_load(HOSTS.replace("  - {name: w1, address: 192.0.2.11}\n", "")))
    o = specmod.Overrides(
        advertise_address="192.0.2.20", node_name="n2", kubernetes_version="1.33.0", cert_extra_sans=["api.example.com"]
    )
    t = specmod.apply_overrides(s, o)
    assert (t.hosts[0].name, t.hosts[0].address, t.hosts[0].local) == ("n2", "192.0.2.20", True)
    assert t.kubernetes_version == "v1.33.0" and t.pki.cert_sans == ("api.example.com",)
    assert (s.hosts[0].name, s.hosts[0].address, s.hosts[0].local) == ("cp1", "192.0.2.10", False)
    assert s.kubernetes_version == specmod.DEFAULT_VERSION and s.pki.cert_sans == ()


def test_the_local_probe_lives_with_the_connection_side_not_the_spec():
    import kubeinit.localhost as localhost

    modules = list((ROOT / "kubeinit" / "spec").glob("*.py"))
    assert modules and not any("ioctl" in m.read_text() for m in modules)
    assert not hasattr(specmod, "default_address")
    assert callable(localhost.default_address) and callable(localhost.local_hostname)


def test_no_spec_module_is_over_400_lines():
    modules = list((ROOT / "kubeinit" / "spec").glob("*.py"))
    assert len(modules) >= 5, "split by job"
    for module in modules:
        assert len(module.read_text().splitlines()) <= 400, module.name


def test_kubeadm_documents_go_through_the_same_loader(tmp_path):
    f = tmp_path / "k.yaml"
    f.write_text(textwrap.dedent(KUBEADM))
    s = specmod.load_file(f, require=None)
    assert (s.hosts[0].name, s.hosts[0].address, s.managed) == ("node-a", "192.0.2.4", None)
