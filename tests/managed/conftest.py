"""Fixtures for the managed-cluster tests: loopback-only network, a clean
environment, the three cloud test doubles, and a CLI runner.

The fake credentials (managed_testlib.SECRETS) are recognisable, so tests can
check that none of them reaches the output or the logs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # for `doubles` and `managed_testlib`
    sys.path.insert(0, str(HERE))

from doubles import tls  # noqa: E402
from managed_testlib import ROOT, SECRETS  # noqa: E402

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _loopback(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any attempt to reach a non-loopback address (a real cloud, a metadata server) fails the test."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise AssertionError(f"test tried to connect to {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *a, **kw):
        if not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise AssertionError(f"test tried to resolve {host}")
        return real_getaddrinfo(host, *a, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in list(os.environ):
        if var.startswith(("AWS_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "KUBEINIT_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "kubeinit"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kube" / "config"))
    # credential chains must find only what a test gives them
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    return tmp_path


# -- AWS: moto ----------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server():
    from doubles.aws import MotoDouble

    old = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AmazonEKS*Policy must exist to attach
    server = MotoDouble()
    server.start()
    yield server
    server.stop()
    if old is None:
        os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)


def closed_port_url() -> str:
    """https:// on a loopback port nothing listens on: a cluster API that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def aws(moto_server, monkeypatch):
    moto_server.reset()
    import moto.eks.models

    # moto's cluster endpoints are made-up public names; delete cluster asks the cluster's API for its
    # LoadBalancer Services: a loopback port that refuses (tests with an API use tests/unit/apiserver.py)
    monkeypatch.setattr(moto.eks.models, "ENDPOINT_TEMPLATE", closed_port_url() + "/{region}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)  # boto3's own endpoint setting
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKETESTKEY00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS["aws_secret"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRETS["aws_session"])
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    return moto_server


# -- GKE ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return tls.make_ca_and_server(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def gcp_key():
    return tls.rsa_key_pair()


@pytest.fixture(scope="session")
def gke_server(tls_files, gcp_key):
    from doubles.gke import GkeApiDouble

    server = GkeApiDouble(tls_files["ca"].read_bytes(), SECRETS["gcp_token"], gcp_key[1]).start()
    yield server
    server.stop()


@pytest.fixture
def gke(gke_server, gcp_key, monkeypatch, tmp_path):
    gke_server.reset()
    key_file = tmp_path / "sa.json"  # a service-account key whose token_uri is the double
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "proj-1",
                "private_key_id": "0123456789abcdef",
                "private_key": gcp_key[0],
                "client_email": "kubeinit@proj-1.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{gke_server.url}/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("KUBEINIT_GKE_ENDPOINT", gke_server.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj-1")
    return gke_server


# -- AKS ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def arm_server(tls_files):
    from doubles.arm import ArmApiDouble

    server = ArmApiDouble(
        tls_files,
        tls_files["ca"].read_bytes(),
        SECRETS["azure_token"],
        SECRETS["azure_identity_header"],
        SECRETS["aks_user_token"],
        SECRETS["aks_user_key"],
    ).start()
    yield server
    server.stop()


@pytest.fixture
def aks(arm_server, tls_files, monkeypatch):
    arm_server.reset()
    monkeypatch.setattr(arm_server, "api_server", closed_port_url())  # the clusters' API, as for aws above
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{arm_server.url}/msi/token")  # App Service managed identity
    monkeypatch.setenv("IDENTITY_HEADER", SECRETS["azure_identity_header"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
    monkeypatch.setenv("KUBEINIT_AZURE_ARM_ENDPOINT", arm_server.url)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001")
    return arm_server


# -- CLI ----------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch):
    """kubeinit's typer app, run in this process: `cli("create", "cluster", ...)`."""
    from typer.testing import CliRunner

    from kubeinit.cli import APP, commands

    monkeypatch.setitem(APP.state, "verbose", False)  # a run with --verbose leaves it set

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(commands.app(), [str(a) for a in args], input=input)

    return run
