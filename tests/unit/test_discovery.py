"""Token discovery (join's first step) against the API-server test double: cluster-info as
the bootstrap-token phase wrote it, signed as kube-controller-manager's bootstrapsigner would
(simulated here with kubeinit.certs.jws, the signer being part of the controller manager)."""

from __future__ import annotations

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)

from kubeinit import kubeconfig
from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.certs import jws, pin
from kubeinit.connection import LocalConnection
from kubeinit.context import Context, Options, Target
from kubeinit.errors import UserError
from kubeinit.kube import discovery
from kubeinit.workflow import find, init_phases

TOKEN = "abcdef.0123456789abcdef"


class View:
    def __getattr__(self, name):
        return lambda *a: None


@pytest.fixture
def published(cluster):
    """cluster-info written by kubeinit's bootstrap-token phase, then signed for TOKEN."""
    spec = specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "lab",
            "bindPort": cluster.api.port,
            "kubeconfigDir": str(cluster.root),
            "pki": {"certificatesDir": str(cluster.root / "pki")},
            "hosts": [{"name": "cp-1", "address": "127.0.0.1", "role": "control-plane"}],
        }
    )
    ctx = Context(spec, [Target(h, lambda h: LocalConnection(h.name)) for h in spec.hosts], Options())
    execute(ctx, [find(init_phases(), "bootstrap-token")], View())
    data = cluster.api.objects[("configmaps", "kube-public", "cluster-info")]["data"]
    data["jws-kubeconfig-abcdef"] = jws.sign_detached(data["kubeconfig"], "abcdef", "0123456789abcdef")
    return cluster


def endpoint(cluster) -> str:
    return f"127.0.0.1:{cluster.api.port}"


def test_the_cluster_is_found_and_trusted_with_token_and_pin(published):
    got = discovery.discover(endpoint(published), TOKEN, [pin.ca_pin(published.ca_pem)], timeout=2)
    assert got["server"] == f"https://127.0.0.1:{published.api.port}"
    conf = yaml.safe_load(kubeconfig.bootstrap(got["server"], got["certificate-authority-data"], TOKEN))
    assert conf["users"] == [{"name": "tls-bootstrap-token-user", "user": {"token": TOKEN}}]
    assert conf["clusters"][0]["cluster"]["certificate-authority-data"] == got["certificate-authority-data"]
    anonymous = [r for r in published.api.requests if r[2] == "" and r[1] == discovery.CLUSTER_INFO]
    assert len(anonymous) == 2, "read twice, without credentials: unverified, then verified"


def test_a_wrong_secret_is_refused(published):
    with pytest.raises(discovery.DiscoveryFailed, match="not signed with token abcdef's secret"):
        discovery.discover(endpoint(published), "abcdef.ffffffffffffffff", [pin.ca_pin(published.ca_pem)], timeout=2)


def test_a_pin_of_another_ca_is_refused(published):
    with pytest.raises(discovery.DiscoveryFailed, match="matches none of the --discovery-token-ca-cert-hash"):
        discovery.discover(endpoint(published), TOKEN, ["sha256:" + "0" * 64], timeout=2)


def test_a_token_the_cluster_never_signed_times_out_with_kubeadms_words(published):
    with pytest.raises(discovery.DiscoveryFailed, match=r"after 1 s: token id 'zzzzzz' is invalid for this cluster"):
        discovery.discover(
            endpoint(published), "zzzzzz.0123456789abcdef", [pin.ca_pin(published.ca_pem)], timeout=1, interval=0.2
        )


def test_no_pin_needs_the_unsafe_flag(published):
    with pytest.raises(UserError, match="--discovery-token-ca-cert-hash"):
        discovery.discover(endpoint(published), TOKEN, [])
    assert discovery.discover(endpoint(published), TOKEN, [], unsafe_skip_ca_verification=True, timeout=2)


def test_without_kubeadms_role_binding_anonymous_gets_nothing(cluster):
    with pytest.raises(discovery.DiscoveryFailed, match=r"401 Unauthorized|rejected"):
        discovery.discover(endpoint(cluster), TOKEN, [pin.ca_pin(cluster.ca_pem)], timeout=0.5, interval=0.2)
