"""`kubeinit token eks`: the presigned STS URL is what `aws eks get-token` makes, its signature
verifies (recomputed here from the SigV4 spec with hmac: moto does not check presigned signatures,
and routes a presigned GET to 127.0.0.1 to S3), and it is never logged."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

from managed_testlib import ROOT, SECRETS, create_cmd, kubectl_view, succeeds

from kubeinit.redact import mask


def _decode(tok: str) -> str:
    assert tok.startswith("k8s-aws-v1.")
    body = tok[len("k8s-aws-v1.") :]
    assert "=" not in body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _sigv4(secret: str, url: str, headers: dict[str, str]) -> str:
    """SigV4 query signature of a presigned GET, computed from the spec (not with botocore)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    q = dict(query)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    signed = q["X-Amz-SignedHeaders"].split(";")
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed),
            "UNSIGNED-PAYLOAD" if "X-Amz-Content-Sha256" in q else hashlib.sha256(b"").hexdigest(),
        ]
    )
    date, scope = q["X-Amz-Date"], q["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_token_is_a_presigned_get_caller_identity(aws, cli, caplog):
    caplog.set_level(logging.DEBUG)
    r = cli("token", "eks", "--cluster", "demo", "--region", "eu-west-1")
    assert r.exit_code == 0, r.output
    cred = json.loads(r.output)
    assert cred["kind"] == "ExecCredential" and cred["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    expires = datetime.datetime.strptime(cred["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    left = expires.replace(tzinfo=datetime.UTC) - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=13) < left <= datetime.timedelta(minutes=14)
    tok = cred["status"]["token"]
    url = _decode(tok)
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert q["Action"] == "GetCallerIdentity" and q["Version"] == "2011-06-15"
    assert q["X-Amz-Expires"] == "60" and q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert q["X-Amz-Credential"].startswith("AKIAFAKETESTKEY00001/") and q["X-Amz-Credential"].endswith(
        "/eu-west-1/sts/aws4_request"
    )
    assert q["X-Amz-Security-Token"] == SECRETS["aws_session"]  # inside the token, as aws-cli's: never logged
    # the signature is the one the spec gives for these headers; another cluster name would not verify
    headers = {"host": parts.netloc, "x-k8s-aws-id": "demo"}
    assert _sigv4(SECRETS["aws_secret"], url, headers) == q["X-Amz-Signature"]
    assert _sigv4(SECRETS["aws_secret"], url, {**headers, "x-k8s-aws-id": "other"}) != q["X-Amz-Signature"]
    assert SECRETS["aws_secret"] not in r.output
    for rec in caplog.records:  # no part of the token in any log record; the keys only masked (as a log file has them)
        msg = rec.getMessage()
        assert tok[11:60] not in msg and q["X-Amz-Signature"] not in msg
        assert SECRETS["aws_secret"] not in mask(msg) and SECRETS["aws_session"] not in mask(msg)
        if rec.name.startswith("kubeinit"):
            assert SECRETS["aws_session"] not in msg


def test_token_needs_credentials_and_a_known_profile(aws, cli, monkeypatch):
    r = cli("token", "eks", "--cluster", "demo", "--profile", "nope")
    assert r.exit_code == 2 and "profile 'nope'" in r.output
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    r = cli("token", "eks", "--cluster", "demo")
    assert r.exit_code == 2 and "no AWS credentials" in r.output
    assert aws.requests == []


def test_kubeconfig_uses_kubeinit_when_aws_is_missing(aws, cli, monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"  # kubectl only: no aws on PATH
    bin_dir.mkdir()
    kubectl = subprocess.run(["sh", "-c", "command -v kubectl"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "kubectl").symlink_to(kubectl)
    monkeypatch.setenv("PATH", str(bin_dir))
    succeeds(cli, *create_cmd("eks", "--subnets", "subnet-a,subnet-b"))
    user = kubectl_view(Path(os.environ["KUBECONFIG"]))["users"][0]["user"]["exec"]
    assert user["command"] == sys.executable
    assert user["args"] == ["-m", "kubeinit", "token", "eks", "--cluster", "demo", "--region", "eu-west-1"]
    assert user["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    # run the plugin as kubectl would: its stdout is an ExecCredential with a token for this cluster
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KUBERNETES_EXEC_INFO": json.dumps(
            {"kind": "ExecCredential", "apiVersion": user["apiVersion"], "spec": {"interactive": False}}
        ),
    }
    out = subprocess.run(
        [user["command"], *user["args"]], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    url = _decode(json.loads(out.stdout)["status"]["token"])
    assert "Action=GetCallerIdentity" in url and out.stderr == ""
    assert kubeconfig_has_no_secret(Path(os.environ["KUBECONFIG"]))


def kubeconfig_has_no_secret(path: Path) -> bool:
    text = path.read_text()
    return not any(s in text for s in SECRETS.values()) and "k8s-aws-v1." not in text
