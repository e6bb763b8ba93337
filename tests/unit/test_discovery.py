"""Token discovery (join's first step) against the API-server test double: cluster-info as
the bootstrap-token phase wrote it, signed as kube-controller-manager's bootstrapsigner would
(simulated here with kubeinit.certs.jws, the signer being part of the controller manager)."""

from __future__ import annotations

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)
from phase_harness import TOKEN, publish_cluster_info

from kubeinit import kubeconfig
from kubeinit.certs import pin
from kubeinit.errors import UserError
from kubeinit.kube import discovery


@pytest.fixture
def published(cluster):
    """cluster-info written by kubeinit's bootstrap-token phase, then signed for TOKEN."""
    return publish_cluster_info(cluster)


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
