"""`kubeinit token create|list|delete` run as a user runs them (`python -m kubeinit`), against the
API-server test double (tests/unit/apiserver.py); the Secret checked against reference §4.2."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from apiserver import cluster  # noqa: F401 (fixture)

from kubeinit.certs.pin import ca_pin
from kubeinit.errors import UserError
from kubeinit.kube import bootstraptoken as bt

TOKEN = "abcdef.0123456789abcdef"
RFC3339_Z = "%Y-%m-%dT%H:%M:%SZ"


def kc(cluster, name="admin.conf") -> list[str]:
    return ["--kubeconfig", str(cluster.kubeconfig(name))]


def posts(cluster) -> list:
    return [r for r in cluster.api.requests if r[0] != "GET"]


def assert_one_line_error(r, code: int, *needles: str):
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


# --- the Secret, field by field (§4.2) --------------------------------------------------


def test_create_default_secret_matches_kubeadm(kubeinit_cli, cluster):
    before = datetime.now(UTC).replace(microsecond=0)
    r = kubeinit_cli("token", "create", *kc(cluster))
    after = datetime.now(UTC)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token) and r.stdout == token + "\n"
    token_id, secret = token.split(".")
    name = f"bootstrap-token-{token_id}"
    obj = cluster.api.objects[("secrets", "kube-system", name)]
    assert obj["metadata"]["name"] == name and obj["metadata"]["namespace"] == "kube-system"
    assert obj["type"] == "bootstrap.kubernetes.io/token"
    data = cluster.api.secret_data(name)
    expiration = data.pop("expiration")
    assert data == {
        "token-id": token_id,
        "token-secret": secret,
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }
    # RFC3339 UTC, now + the default TTL of 24h
    expires = datetime.strptime(expiration, RFC3339_Z).replace(tzinfo=UTC)
    assert before + timedelta(hours=24) <= expires <= after + timedelta(hours=24)


def test_create_with_every_option(kubeinit_cli, cluster):
    r = kubeinit_cli(
        "token",
        "create",
        TOKEN,
        "--ttl",
        "1h30m",
        "--usages",
        "authentication",
        "--groups",
        "system:bootstrappers:a,system:bootstrappers:b",
        "--groups",
        "system:bootstrappers:c",
        "--description",
        "for the new workers",
        *kc(cluster),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == TOKEN + "\n"
    data = cluster.api.secret_data("bootstrap-token-abcdef")
    expires = datetime.strptime(data.pop("expiration"), RFC3339_Z).replace(tzinfo=UTC)
    assert abs(expires - datetime.now(UTC) - timedelta(minutes=90)) < timedelta(seconds=30)
    assert data == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "description": "for the new workers",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:a,system:bootstrappers:b,system:bootstrappers:c",
    }


def test_ttl_zero_never_expires(kubeinit_cli, cluster):
    assert kubeinit_cli("token", "create", TOKEN, "--ttl", "0", *kc(cluster)).returncode == 0
    assert "expiration" not in cluster.api.secret_data("bootstrap-token-abcdef")


# --- create: errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["ABCDEF.0123456789abcdef"], r"must match [a-z0-9]{6}\.[a-z0-9]{16}"),
        (["abcdef.0123"], "must match"),
        (["--ttl", "1 day"], "--ttl '1 day' is not a duration"),
        (["--ttl", "-1h"], "must not be negative"),
        (["--usages", "signing,bogus"], "unknown bootstrap token usage 'bogus'"),
        (["--usages", "signing"], "groups need the authentication usage"),
        (["--groups", "system:nodes"], "group 'system:nodes' must match"),
        (["--groups", "system:bootstrappers:Upper"], "must match"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(kubeinit_cli, cluster, args, needle):
    r = kubeinit_cli("token", "create", *args, *kc(cluster))
    assert_one_line_error(r, 2, needle)
    assert cluster.api.requests == []  # not even the kubeconfig's server was asked


def test_bad_token_is_not_echoed(kubeinit_cli, cluster):
    near = "abcdef.0123456789ABCDEF"
    r = kubeinit_cli("token", "create", near, *kc(cluster))
    assert r.returncode == 2 and "0123456789" not in r.stdout + r.stderr


def test_existing_id_is_one_clear_error(kubeinit_cli, cluster):
    assert kubeinit_cli("token", "create", TOKEN, *kc(cluster)).returncode == 0
    r = kubeinit_cli("token", "create", "abcdef.ffffffffffffffff", *kc(cluster))
    assert_one_line_error(
        r, 1, "a bootstrap token with ID abcdef already exists", cluster.api.url, "kubeinit token delete abcdef"
    )
    assert r.stdout == ""  # no token handed out that does not work
    assert cluster.api.secret_data("bootstrap-token-abcdef")["token-secret"] == "0123456789abcdef"


def test_dry_run_masks_the_secret_and_sends_nothing(kubeinit_cli, cluster):
    r = kubeinit_cli("token", "create", TOKEN, "--dry-run", "--print-join-command", *kc(cluster))
    assert r.returncode == 0, r.stderr
    assert cluster.api.requests == [] and not [k for k in cluster.api.objects if k[0] == "secrets"]
    out = r.stdout + r.stderr
    assert "0123456789abcdef" not in out and base64.b64encode(b"0123456789abcdef").decode() not in out
    body = json.loads(r.stdout[r.stdout.index("{") : r.stdout.rindex("}") + 1])
    assert body["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert body["data"]["token-secret"] == "<secret>"
    assert base64.b64decode(body["data"]["token-id"]) == b"abcdef"
    assert "--token abcdef.<redacted>" in r.stdout


# --- create --print-join-command: the CA pin (§4.6) ----------------------------------------


def test_join_command_pins_the_kubeconfig_ca(kubeinit_cli, cluster):
    r = kubeinit_cli("token", "create", "--print-join-command", *kc(cluster))
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(
        r"kubeinit join (\S+) --token ([a-z0-9]{6})\.([a-z0-9]{16}) "
        r"--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})\n",
        r.stdout,
    )
    assert m, r.stdout
    endpoint, token_id, secret, pin = m.groups()
    assert endpoint == f"127.0.0.1:{cluster.api.port}"
    assert cluster.api.secret_data(f"bootstrap-token-{token_id}")["token-secret"] == secret
    assert pin == ca_pin(cluster.ca_pem)
    openssl = subprocess.run(
        "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex",
        shell=True,
        input=cluster.ca_pem,
        capture_output=True,
        check=True,
    )
    assert pin == "sha256:" + openssl.stdout.decode().split("=")[-1].strip()


def test_join_command_needs_a_ca_and_then_creates_nothing(kubeinit_cli, cluster):
    conf = yaml.safe_load(cluster.admin_conf.read_text())
    del conf["clusters"][0]["cluster"]["certificate-authority-data"]  # the system's CAs would be used
    path = cluster.root / "no-ca.conf"
    path.write_text(yaml.safe_dump(conf))
    r = kubeinit_cli("token", "create", "--print-join-command", "--kubeconfig", str(path))
    assert r.returncode == 1 and "cannot print a join command" in r.stderr and "no certificate" in r.stderr
    assert not [k for k in cluster.api.objects if k[0] == "secrets"]


# --- list ------------------------------------------------------------------------------


def test_create_list_delete_round_trip(kubeinit_cli, cluster):
    created = [kubeinit_cli("token", "create", *kc(cluster)).stdout.strip() for _ in range(2)]
    created.append(
        kubeinit_cli("token", "create", TOKEN, "--ttl", "0", "--description", "kept", *kc(cluster)).stdout.strip()
    )
    r = kubeinit_cli("token", "list", *kc(cluster))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA", "GROUPS"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {f"{t.split('.')[0]}.<redacted>" for t in created}
    assert rows["abcdef.<redacted>"] == [
        "abcdef.<redacted>",
        "<forever>",
        "<never>",
        "authentication,signing",
        "kept",
        "system:bootstrappers:kubeadm:default-node-token",
    ]
    other = rows[f"{created[0].split('.')[0]}.<redacted>"]
    assert other[1] == "23h" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", other[2]) and other[4] == "<none>"
    # kubeadm's field selector reached the server
    assert any("fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken" in p for m, p, _ in cluster.api.requests)

    d = kubeinit_cli("token", "delete", created[0], "abcdef", "--yes", *kc(cluster))
    assert d.returncode == 0, d.stderr
    assert 'bootstrap token "abcdef" deleted' in d.stdout
    after = kubeinit_cli("token", "list", "-o", "json", *kc(cluster))
    assert [t["id"] for t in json.loads(after.stdout)] == [created[1].split(".")[0]]


def test_list_never_prints_a_secret(kubeinit_cli, cluster):
    tokens = [kubeinit_cli("token", "create", *kc(cluster)).stdout.strip() for _ in range(3)]
    for args in ([], ["-o", "json"]):
        r = kubeinit_cli("token", "list", *args, *kc(cluster))
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        for t in tokens:
            secret = t.split(".")[1]
            assert secret not in out and base64.b64encode(secret.encode()).decode() not in out
            assert f"{t.split('.')[0]}.<redacted>" in out


def test_list_shows_expired_and_unparseable_as_invalid(kubeinit_cli, cluster):
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime(RFC3339_Z)
    for token, expiration in (("aaaaaa.0123456789abcdef", past), ("bbbbbb.0123456789abcdef", "next tuesday")):
        put_secret(cluster, token, expiration)
    bogus = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-cccccc", "namespace": "kube-system", "uid": "u", "resourceVersion": "1"},
        "data": {"token-id": _b64("cccccc")},
    }
    cluster.api.objects[("secrets", "kube-system", "bootstrap-token-cccccc")] = bogus
    r = kubeinit_cli("token", "list", *kc(cluster))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[2:]}
    assert rows["aaaaaa.<redacted>"][1:3] == ["<invalid>", past]
    assert rows["bbbbbb.<redacted>"][1:3] == ["<invalid>", "<invalid>"]
    assert "cccccc.<redacted>" not in rows
    assert "'next tuesday' is not an RFC3339 time" in r.stderr
    assert "bootstrap-token-cccccc does not hold a well-formed token" in r.stderr


def test_list_as_a_user_without_rights_is_403(kubeinit_cli, cluster):
    r = kubeinit_cli("token", "list", *kc(cluster, "scheduler.conf"))
    assert_one_line_error(r, 1, "user 'system:kube-scheduler'", "403 Forbidden", "admin.conf")


# --- delete --------------------------------------------------------------------------------


def test_delete_without_yes_and_without_a_terminal_refuses(kubeinit_cli, cluster):
    kubeinit_cli("token", "create", TOKEN, *kc(cluster))
    r = kubeinit_cli("token", "delete", "abcdef", *kc(cluster))
    assert_one_line_error(r, 2, "without confirmation", "--yes")
    assert ("secrets", "kube-system", "bootstrap-token-abcdef") in cluster.api.objects
    assert posts(cluster) == [("POST", "/api/v1/namespaces/kube-system/secrets", "kubernetes-admin")]


@pytest.mark.parametrize("answer,code,gone", [("n", 1, False), ("y", 0, True)])
def test_delete_asks_on_a_terminal(kubeinit_cli, cluster, tmp_path, answer, code, gone):
    kubeinit_cli("token", "create", TOKEN, *kc(cluster))
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "kubeinit", "token", "delete", TOKEN, *kc(cluster)],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KUBEINIT_HOME": str(tmp_path / "home"), "NO_COLOR": "1"},
        )
        os.write(master, f"{answer}\n".encode())
        out, err = p.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == code, (out, err)
    assert "Delete bootstrap token abcdef from the cluster at" in out
    assert (
        ("secrets", "kube-system", "bootstrap-token-abcdef") not in cluster.api.objects
        if gone
        else "nothing was deleted" in err
    )
    assert "0123456789abcdef" not in out + err  # the whole token was given, its secret is never echoed


def test_delete_missing_token(kubeinit_cli, cluster):
    r = kubeinit_cli("token", "delete", "zzzzzz", "--yes", *kc(cluster))
    assert_one_line_error(r, 1, "no bootstrap token zzzzzz in the cluster at", "kubeinit token list")


def test_delete_bad_argument_exits_2_before_asking(kubeinit_cli, cluster):
    r = kubeinit_cli("token", "delete", "abcdef", "not-a-token", "--yes", *kc(cluster))
    assert_one_line_error(r, 2, "is neither a token ID")
    assert cluster.api.requests == []


def test_delete_dry_run_sends_nothing(kubeinit_cli, cluster):
    kubeinit_cli("token", "create", TOKEN, *kc(cluster))
    r = kubeinit_cli("token", "delete", "abcdef", "--dry-run", *kc(cluster))
    assert r.returncode == 0 and "would delete bootstrap token abcdef" in r.stdout
    assert len(posts(cluster)) == 1  # the create only


# --- reaching the server -------------------------------------------------------------------


def test_unreachable_server_is_one_sentence(kubeinit_cli, cluster):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    path = cluster.root / "closed.conf"
    path.write_text(cluster.admin_conf.read_text().replace(f":{cluster.api.port}", f":{port}"))
    for args in (["create"], ["list"], ["delete", "abcdef", "--yes"]):
        r = kubeinit_cli("token", *args, "--kubeconfig", str(path))
        assert_one_line_error(
            r,
            1,
            f"cannot reach the API server https://127.0.0.1:{port} (connection refused); "
            f"is the control plane up? (--kubeconfig {path})",
        )
        assert r.stdout == ""  # create handed out no token that was never stored


def test_client_without_credentials_gets_the_unauthorized_sentence(kubeinit_cli, cluster):
    conf = yaml.safe_load(cluster.admin_conf.read_text())
    conf["users"][0]["user"] = {}
    path = cluster.root / "anon.conf"
    path.write_text(yaml.safe_dump(conf))
    r = kubeinit_cli("token", "list", "--kubeconfig", str(path))
    assert_one_line_error(
        r,
        1,
        f"the API server {cluster.api.url} rejected the credentials of user "
        f"'kubernetes-admin' in {path} (401 Unauthorized)",
    )


def test_default_kubeconfig_is_admin_conf(kubeinit_cli):
    r = kubeinit_cli("token", "list", "--help")
    assert "/etc/kubernetes/admin.conf" in r.stdout and "<redacted>" in r.stdout


# --- real kubectl sees what kubeinit created, through the double ---------------------------


def test_kubectl_sees_the_created_secret(kubeinit_cli, cluster, tmp_path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed, so the cross-check with a real client cannot run")
    assert kubeinit_cli("token", "create", TOKEN, "--description", "seen by kubectl", *kc(cluster)).returncode == 0
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}  # kubectl's cache in tmp
    args = [
        kubectl,
        "--kubeconfig",
        str(cluster.admin_conf),
        "get",
        "secrets",
        "-n",
        "kube-system",
        "--field-selector",
        "type=bootstrap.kubernetes.io/token",
        "-o",
        "json",
    ]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    [item] = json.loads(r.stdout)["items"]
    assert item["metadata"]["name"] == "bootstrap-token-abcdef" and item["type"] == "bootstrap.kubernetes.io/token"
    assert {k: base64.b64decode(v).decode() for k, v in item["data"].items()}["description"] == "seen by kubectl"
    cm = subprocess.run(
        [kubectl, "--kubeconfig", str(cluster.admin_conf), "get", "configmaps", "-n", "kube-public", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert cm.returncode == 0 and json.loads(cm.stdout)["items"] == [], cm.stderr


# --- kubeinit.kube.bootstraptoken ----------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("24h0m0s", timedelta(hours=24)),
        ("0", timedelta(0)),
        ("1h30m", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        (".5m", timedelta(seconds=30)),
        ("1m30s500ms", timedelta(seconds=90.5)),
        ("+2h", timedelta(hours=2)),
        ("100ns", timedelta(0)),
    ],
)
def test_parse_duration_as_go(text, expected):
    assert bt.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "1h 30m", "1.h.5", "-1s", ".h", "24H"])
def test_parse_duration_rejects(text):
    with pytest.raises(UserError):
        bt.parse_duration(text)


def test_record_from_secret_keeps_no_secret():
    s = bt.secret_manifest(
        TOKEN, description="d", groups=["system:bootstrappers:x"], now=datetime(2030, 1, 1, tzinfo=UTC)
    )
    r = bt.TokenRecord.from_secret(s)
    assert (r.id, r.description, r.usages, r.groups) == (
        "abcdef",
        "d",
        ("authentication", "signing"),
        ("system:bootstrappers:x",),
    )
    assert r.expires == datetime(2030, 1, 2, tzinfo=UTC) and r.expires_text() == "2030-01-02T00:00:00Z"
    assert "0123456789abcdef" not in repr(r) and r.masked == "abcdef.<redacted>"
    assert r.valid(datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert not r.valid(datetime(2030, 1, 2, 0, 0, 1, tzinfo=UTC))


def test_record_validity_of_expiration():
    def rec(exp):
        s = bt.secret_manifest(TOKEN, ttl=timedelta(0))
        s["data"]["expiration"] = _b64(exp)
        return bt.TokenRecord.from_secret(s)

    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert rec("2030-01-01T01:00:00+01:00").valid(now - timedelta(seconds=1))  # offsets are fine
    assert not rec("2030-01-01").valid(now - timedelta(days=1))  # not RFC3339: invalid
    assert rec("2030-01-01").ttl(now) == "<invalid>"
    assert rec("2030-01-02T00:00:00.123456789Z").ttl(now) == "1d"


def test_record_from_secret_rejects_mismatched_name():
    s = bt.secret_manifest(TOKEN)
    s["metadata"]["name"] = "bootstrap-token-zzzzzz"
    with pytest.raises(bt.NotAToken, match="its name should be bootstrap-token-abcdef"):
        bt.TokenRecord.from_secret(s)


def test_token_id_of():
    assert bt.token_id_of("abcdef") == bt.token_id_of(TOKEN) == "abcdef"
    with pytest.raises(UserError) as e:
        bt.token_id_of("abcdef.0123456789abcdeX")
    assert "0123456789" not in str(e.value)


def put_secret(cluster, token: str, expiration: str) -> None:
    s = bt.secret_manifest(token, ttl=timedelta(0))
    s["data"]["expiration"] = _b64(expiration)
    s["metadata"].update(uid="u", resourceVersion="1")
    cluster.api.objects[("secrets", "kube-system", s["metadata"]["name"])] = s


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
