"""Credentials never reach output or logs; SDKs are imported only when used."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from managed_testlib import DOUBLE, FIRST_POOL, ROOT, SECRETS, WHERE, create_cmd, delete_cmd, scale_cmd, succeeds

from kubeinit.redact import mask


def _scan(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a credential reached the output or the logs: {secret[:12]}…"


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
def test_no_credential_in_output_or_logs(provider, request, cli, caplog, gcp_key):
    double = request.getfixturevalue(DOUBLE[provider])
    caplog.set_level(logging.DEBUG)  # SDK debug logs too: a log file would get them (masked)
    outputs = [
        succeeds(cli, *args).output
        for args in (
            create_cmd(provider, *WHERE[provider]),
            ["kubeconfig", "--provider", provider, "--name", "demo"],
            ["get", "clusters", "--provider", provider, "-o", "json"],
            scale_cmd(provider, FIRST_POOL[provider], "--nodes", "1"),
            delete_cmd(provider),
        )
    ]
    secrets = list(SECRETS.values()) + [line for line in gcp_key[0].splitlines() if "-----" not in line]
    secrets += sorted(getattr(double, "tokens_seen", ()))  # GKE's self-signed JWTs
    _scan(outputs, secrets)
    _scan([mask(rec.getMessage()) for rec in caplog.records], secrets)  # what a masked log file would hold
    _scan([rec.getMessage() for rec in caplog.records if rec.name.startswith("kubeinit")], secrets)
    state = list(Path(os.environ["KUBEINIT_HOME"]).rglob("*"))
    _scan([p.read_text() for p in state if p.is_file()], secrets)


def test_importing_the_commands_imports_no_cloud_sdk():
    code = (
        "import sys, kubeinit.commands.managed, kubeinit.commands.managed_pools, kubeinit.commands.managed_token, "
        "kubeinit.managed.ops, kubeinit.providers.eks, kubeinit.providers.gke, kubeinit.providers.aks\n"
        "from kubeinit.cli import managed\n"
        "managed.managed_commands()\n"  # the typer commands made, as when one runs
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google', 'azure', 'grpc'))\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]"


# The CLI in a child process whose imports of one module (and its sub-modules) fail, as when the
# SDK is not installed; it may reach loopback addresses only. argv: module, then kubeinit's arguments.
WITHOUT_MODULE = """
import ipaddress, socket, sys

missing = sys.argv[1]


class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == missing or name.startswith(missing + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def loopback(host):
    try:
        return host in ("localhost", "") or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
        raise AssertionError(f"tried to connect to {address}")
    return real_connect(self, address)


def getaddrinfo(host, *a, **kw):
    if not loopback(host.decode() if isinstance(host, bytes) else host):
        raise AssertionError(f"tried to resolve {host}")
    return real_getaddrinfo(host, *a, **kw)


socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
sys.meta_path.insert(0, Missing())
sys.argv = ["kubeinit", *sys.argv[2:]]
from kubeinit.cli import main

main()
"""


@pytest.mark.parametrize(
    "provider, module, extra",
    [
        ("eks", "boto3", "aws"),
        ("gke", "google.cloud.container_v1", "gcp"),
        ("aks", "azure.mgmt.containerservice", "azure"),
    ],
)
def test_missing_sdk_names_the_extra(provider, module, extra):
    env = {
        **os.environ,  # clean_env's: a temp HOME and KUBEINIT_HOME, no credentials
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
        "AWS_REGION": "eu-west-1",
        "GOOGLE_CLOUD_PROJECT": "proj-1",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    }
    where = {"eks": [], "gke": ["--zone", "europe-west1-b"], "aks": ["--location", "westeurope"]}[provider]
    args = ["create", "cluster", "--provider", provider, "--name", "demo", *where]

    def kubeinit(*extra_args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-c", WITHOUT_MODULE, module, *args, *extra_args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    r = kubeinit()
    assert r.returncode == 2, r.stderr
    assert f"pip install 'kubeinit[{extra}]'" in r.stderr
    assert "Traceback" not in r.stderr
    # and --dry-run needs no SDK at all
    dry = kubeinit("--dry-run")
    assert dry.returncode == 0, dry.stderr


def test_record_and_kubeconfig_are_private(aws, cli):
    succeeds(cli, *create_cmd("eks", "--subnets", "subnet-a,subnet-b"))
    home = Path(os.environ["KUBEINIT_HOME"]) / "managed"
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    assert oct((home / "eks-demo.json").stat().st_mode & 0o777) == "0o600"
    kc = Path(os.environ["KUBECONFIG"])
    assert oct(kc.stat().st_mode & 0o777) == "0o600" and oct(kc.parent.stat().st_mode & 0o777) == "0o700"
