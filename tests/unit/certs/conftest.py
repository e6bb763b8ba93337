"""A PKI and kubeconfig set per algorithm, made once per session (RSA keys are slow)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubeinit.certs.catalogue import PKIConfig
from kubeinit.certs.kubeconfig import KubeconfigPlan, plan_kubeconfigs
from kubeinit.certs.pki import PKIPlan, plan_pki

ALGORITHMS = ("RSA-2048", "ECDSA-P256")
# certificates carry whole seconds
NOW = datetime.now(UTC).replace(microsecond=0)


def make_cfg(algorithm: str = "RSA-2048", **over) -> PKIConfig:
    """Non-default on purpose: every input of rules A and B differs from kubeadm's defaults."""
    args = dict(
        node_name="cp-1",
        advertise_address="192.168.10.11",
        service_subnet="10.100.0.0/16,fd00:10::/108",
        dns_domain="corp.internal",
        control_plane_endpoint="k8s-api.example.com:8443",
        apiserver_cert_sans=[
            "203.0.113.7",
            "*.apps.example.com",
            "api.example.com",
            "192.168.10.11",
            "Not_Valid!",
            "cp-1",
        ],
        etcd_server_sans=["etcd.example.com", "10.1.1.1"],
        etcd_peer_sans=["peer.example.com"],
        algorithm=algorithm,
        validity=timedelta(days=100),
        ca_validity=timedelta(days=1000),
        cluster_name="prod",
    )
    args.update(over)
    return PKIConfig(**args)


@dataclass
class Generated:
    cfg: PKIConfig
    pki: PKIPlan
    kubeconfigs: KubeconfigPlan

    @property
    def files(self) -> dict[str, bytes]:
        return {f.path: f.content for f in self.pki.files}

    @property
    def kc_files(self) -> dict[str, bytes]:
        return {f.path: f.content for f in self.kubeconfigs.files}


_cache: dict[str, Generated] = {}


def generated(algorithm: str) -> Generated:
    if algorithm not in _cache:
        cfg = make_cfg(algorithm)
        pki = plan_pki(cfg, {}, now=NOW)
        kcs = plan_kubeconfigs(cfg, pki.result["ca.crt"], pki.result["ca.key"], {}, now=NOW)
        _cache[algorithm] = Generated(cfg, pki, kcs)
    return _cache[algorithm]


@pytest.fixture(params=ALGORITHMS)
def gen(request) -> Generated:
    return generated(request.param)


@pytest.fixture
def rsa() -> Generated:
    return generated("RSA-2048")


@pytest.fixture
def ec() -> Generated:
    return generated("ECDSA-P256")


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _openssl_verify(ca: Path, cert: Path, at: datetime | None = None) -> subprocess.CompletedProcess:
    # -x509_strict also wants SKI on CAs, AKI on leaves, critical basicConstraints on CAs
    when = ["-attime", str(int(at.timestamp()))] if at else []
    return subprocess.run(
        ["openssl", "verify", "-x509_strict", *when, "-CAfile", str(ca), str(cert)], capture_output=True, text=True
    )


# helpers reach the tests as fixtures, so no test imports conftest by name
@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(name="make_cfg")
def _make_cfg_fixture():
    return make_cfg


@pytest.fixture
def write_tree():
    return _write_tree


@pytest.fixture
def openssl_verify():
    return _openssl_verify
