"""Published vectors: JWS (cluster-bootstrap jws_test.go + the derived one), CA pin (kubeadm
pubkeypin_test.go), token and group regexes (cluster-bootstrap helpers_test.go). Reference §4."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubeinit.certs import pin, tokens
from kubeinit.certs.jws import sign_detached, verify_detached
from kubeinit.errors import UserError

DATA = Path(__file__).parent / "data"

ID, SECRET = "joshua", "my voice is my passcode"
CONTENT = "Hello from the other side. I must have called a thousand times."
DERIVED_CONTENT = (
    "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAAA\n"
    '    server: https://10.0.0.10:6443\n  name: ""\ncontexts: null\ncurrent-context: ""\n'
    "kind: Config\npreferences: {}\nusers: null\n"
)
JWS_VECTORS = [
    (ID, SECRET, CONTENT, "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"),
    (ID, SECRET, "", "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk"),
    (ID, "", CONTENT, "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8"),
    (
        "abcdef",
        "0123456789abcdef",
        DERIVED_CONTENT,
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..tX1LLvTdJvaPsSVcWjbmL2KSakiin1Z1_H_ssEU_H-E",
    ),
]


@pytest.mark.parametrize("token_id,secret,content,want", JWS_VECTORS)
def test_jws_vectors(token_id, secret, content, want):
    assert sign_detached(content, token_id, secret) == want
    assert verify_detached(want, content, token_id, secret)
    assert verify_detached(want, content.encode(), token_id, secret.encode())  # bytes work too


@pytest.mark.parametrize("token_id,secret,content,want", JWS_VECTORS)
def test_jws_rejects_tampering(token_id, secret, content, want):
    assert not verify_detached(want + "foo", content, token_id, secret)
    assert not verify_detached(want, content + " ", token_id, secret)
    assert not verify_detached(want, content, token_id, secret + "x")
    assert not verify_detached(want, content, "abcdeg", secret)


def test_ca_pin_vector():
    cert = (DATA / "test-cert.pem").read_bytes()
    want = "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"
    assert pin.ca_pin(cert) == want
    assert pin.verify_pin(want, cert)
    assert pin.verify_pin([want.upper().replace("SHA256", "sha256")], cert)  # hex is case-insensitive


def _openssl_pin(path: Path) -> str:
    pub = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(path)], capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True
    ).stdout
    dgst = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der, capture_output=True, check=True)
    return "sha256:" + dgst.stdout.split()[0].decode()


def test_ca_pin_matches_openssl_for_generated_cas(gen, tmp_path):
    for base in ("ca", "etcd/ca"):
        path = tmp_path / "ca.crt"
        path.write_bytes(gen.files[base + ".crt"])
        assert pin.ca_pin(gen.files[base + ".crt"]) == _openssl_pin(path)
    other = pin.ca_pin(gen.files["etcd/ca.crt"])
    assert not pin.verify_pin(other, gen.files["ca.crt"])  # another CA must not match
    assert not pin.verify_pin(other, (DATA / "test-cert.pem").read_bytes())
    # a bundle matches when any of its certificates does
    assert pin.verify_pin(other, gen.files["ca.crt"] + gen.files["etcd/ca.crt"])


@pytest.mark.parametrize(
    "bad",
    [
        "345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3",
        "sha1:345959acb2c3b2feb87d281961c893f62a314207",
        "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b",
        "sha256:z45959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3",
    ],
)
def test_malformed_pins(bad):
    with pytest.raises(UserError):
        pin.parse_pin(bad)


def test_certificate_key():
    a, b = pin.certificate_key(), pin.certificate_key()
    assert len(a) == 64 and int(a, 16) >= 0 and a != b


VALID_TOKENS = [
    "abcdef.1234567890123456",
    "123456.aabbccddeeffgghh",
    "abcdef.abcdef0123456789",
    "123456.1234560123456789",
]
INVALID_TOKENS = [
    "",
    ".",
    "1234567890123456789012",
    "12345.1234567890123456",
    ".1234567890123456",
    "123456.",
    "123456:1234567890.123456",
    "abcdef:1234567890123456",
    "Abcdef.1234567890123456",
    "123456.AABBCCDDEEFFGGHH",
    "123456.AABBCCD-EEFFGGHH",
    "abc*ef.1234567890123456",
    "ABCDEF.abcdef0123456789",
    "abcdef.1234567890123456\n",
]  # Go's \z: no trailing newline


@pytest.mark.parametrize("token", VALID_TOKENS)
def test_valid_tokens(token):
    assert tokens.is_valid_token(token)
    assert tokens.parse_token(token) == tuple(token.split("."))


@pytest.mark.parametrize("token", INVALID_TOKENS)
def test_invalid_tokens(token):
    assert not tokens.is_valid_token(token)
    with pytest.raises(UserError) as e:
        tokens.parse_token(token)
    assert (token.split(".")[-1] or "§") not in str(e.value)  # the error never echoes the secret


def test_token_ids():
    assert tokens.is_valid_token_id("abc123")
    assert not any(map(tokens.is_valid_token_id, ["abc12", "abc1234", "ABC123", "abc12\n"]))


@pytest.mark.parametrize(
    "group",
    [
        "system:bootstrappers:foo",
        "system:bootstrappers:foo:bar:baz",
        "system:bootstrappers:foo-bar-42",
        "system:bootstrappers:" + "x" * 256,
    ],
)  # the regex's own limit
def test_valid_groups(group):
    assert tokens.is_valid_group(group)
    tokens.validate_groups([group])


@pytest.mark.parametrize(
    "group",
    [
        "system:bootstrappers:FOO",
        "foo",
        "system:bootstrappers:",
        "system:bootstrappers:foo bar",
        "system:bootstrappers:foo*",
        "system:bootstrappers:foo:",
        "system:bootstrappers:foo-",
        "system:bootstrappers:" + "x" * 300,
    ],
)
def test_invalid_groups(group):
    assert not tokens.is_valid_group(group)
    with pytest.raises(UserError, match="must match"):
        tokens.validate_groups([group])


def test_generated_tokens():
    made = {tokens.generate_token() for _ in range(200)}
    assert len(made) == 200 and all(tokens.is_valid_token(t) for t in made)
    # every character of the alphabet turns up: not hex, not a narrower set
    assert set("".join(made).replace(".", "")) == set("0123456789abcdefghijklmnopqrstuvwxyz")
