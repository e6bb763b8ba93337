"""init's upload-certs with --upload-certs, run by the executor against the RBAC-strict API-server
double (tests/unit/apiserver.py): the kubeadm-certs Secret, its 2 h owner token, its RBAC, and the
certificate key handed over once; the encryption as kubeadm's cryptoutil lays it out."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from apiserver import make_cluster
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from factsstub import FactsStub
from phase_harness import View, cluster_file, local_context, publish_cluster_info

from kubeinit import kubeconfig as kc
from kubeinit import spec as specmod
from kubeinit.apply import execute
from kubeinit.certs import sealed
from kubeinit.certs.pin import ca_pin, certificate_key
from kubeinit.cli.join import local_spec
from kubeinit.context import Context, Options, Target
from kubeinit.errors import StepFailed, UserError
from kubeinit.kube import copycerts, joining
from kubeinit.kube.client import ApiError, Client
from kubeinit.phases import cp_prepare, join, upload_certs
from kubeinit.redact import Secret
from kubeinit.steps import Upload
from kubeinit.workflow import find, init_phases

NODE_TOKEN = "abcdef.0123456789abcdef"  # a join line's token: the bootstrappers group
BOOTSTRAPPER = ("system:bootstrap:abcdef", ("system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"))
SHARED = [
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
]


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path / "cluster", tokens={NODE_TOKEN: BOOTSTRAPPER})
    for rel in SHARED[2:]:  # the double made ca.crt/key; the others as the certs phase leaves them
        p = c.root / "pki" / rel
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(f"-----BEGIN {rel}-----\n".encode() + os.urandom(64).hex().encode() + b"\n")
    yield c
    c.api.stop()


def upload(cluster, key: str | None = None, dry_run: bool = False, also: tuple[str, ...] = ()):
    """The upload-certs phase (and `also` after it) with --upload-certs [--certificate-key key]."""
    ctx = local_context(specmod.from_dict(cluster_file(cluster)), dry_run=dry_run)
    ctx.shared[upload_certs.REQUEST] = upload_certs.request(True, key)
    view = View()
    try:
        summary = execute(ctx, [find(init_phases(), p) for p in ("upload-certs", *also)], view)
    finally:
        ctx.close()
    return ctx, view, summary


def secret(cluster, name: str = "kubeadm-certs") -> dict:
    return cluster.api.objects[("secrets", "kube-system", name)]


def opened(cluster, key: str) -> dict[str, bytes]:
    data = secret(cluster)["data"]
    return {k: sealed.decrypt(base64.b64decode(v), key) for k, v in data.items()}


def test_the_shared_files_are_stored_encrypted_under_the_given_key(cluster):
    key = certificate_key()
    ctx, view, _ = upload(cluster, key)
    want = {rel.replace("/", "-"): (cluster.root / "pki" / rel).read_bytes() for rel in SHARED}
    assert opened(cluster, key) == want
    for name, blob in secret(cluster)["data"].items():
        assert want[name] not in base64.b64decode(blob)  # nothing in the clear
    assert key not in repr(view.events), "the key is never reported"
    assert ctx.shared[join.HAND_OVER] == ["The certificates are stored under the --certificate-key given (for 2 h)."]


def test_the_secret_is_owned_by_a_bootstrap_token_that_lives_two_hours(cluster):
    upload(cluster, certificate_key())
    refs = secret(cluster)["metadata"]["ownerReferences"]
    assert len(refs) == 1 and refs[0]["kind"] == "Secret" and refs[0]["controller"] is True
    owner = secret(cluster, refs[0]["name"])
    assert refs[0]["uid"] == owner["metadata"]["uid"] and refs[0]["name"].startswith("bootstrap-token-")
    data = {k: base64.b64decode(v).decode() for k, v in owner["data"].items()}
    assert owner["type"] == "bootstrap.kubernetes.io/token"
    assert data["description"] == "Proxy for managing TTL for the kubeadm-certs secret"
    left = datetime.strptime(data["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=2) - timedelta(minutes=1) < left <= timedelta(hours=2)
    assert not [k for k in data if k.startswith("usage-")] and "auth-extra-groups" not in data  # it only carries a TTL


def test_a_join_lines_token_may_get_the_secret_and_nothing_else(cluster):
    server = f"https://127.0.0.1:{cluster.api.port}"
    path = cluster.root / "bootstrap.conf"
    path.write_text(kc.bootstrap(server, kc.b64(cluster.ca_pem), NODE_TOKEN, "lab"))
    node = Client.from_kubeconfig(path)
    with pytest.raises(ApiError) as before:
        node.get("/api/v1/namespaces/kube-system/secrets/kubeadm-certs")
    assert before.value.code == 403
    upload(cluster, certificate_key())
    assert node.get("/api/v1/namespaces/kube-system/secrets/kubeadm-certs")["metadata"]["name"] == "kubeadm-certs"
    other = next(n for (res, ns, n) in cluster.api.objects if res == "secrets" and n.startswith("bootstrap-token-"))
    with pytest.raises(ApiError) as refused:
        node.get(f"/api/v1/namespaces/kube-system/secrets/{other}")
    assert refused.value.code == 403


def test_a_fresh_key_is_handed_over_once_and_a_second_upload_replaces_data_and_owner(cluster):
    ctx, view, _ = upload(cluster)
    key = str(ctx.shared[join.CERT_KEY].value)
    assert len(key) == 64 and opened(cluster, key)["sa.key"] == (cluster.root / "pki" / "sa.key").read_bytes()
    assert sum(key in line for line in ctx.shared[join.HAND_OVER]) == 1
    assert f"  --certificate-key {key}" in ctx.shared[join.HAND_OVER]
    assert key not in repr(view.events)
    first_owner = secret(cluster)["metadata"]["ownerReferences"][0]["name"]
    ctx2, _, _ = upload(cluster)
    key2 = str(ctx2.shared[join.CERT_KEY].value)
    assert key2 != key and opened(cluster, key2)["ca.key"] == (cluster.root / "pki" / "ca.key").read_bytes()
    with pytest.raises(sealed.WrongKey):
        opened(cluster, key)
    assert secret(cluster)["metadata"]["ownerReferences"][0]["name"] != first_owner


def test_with_show_join_command_the_key_is_printed_once_as_the_control_plane_lines_certificate_key(cluster):
    ctx, view, _ = upload(cluster, also=("show-join-command",))
    key = str(ctx.shared[join.CERT_KEY].value)
    lines = ctx.shared[join.HAND_OVER]
    assert [line for line in lines if key in line] == [
        next(line for line in lines if "--control-plane" in line and line.startswith("  kubeinit join "))
    ]
    assert lines[[i for i, line in enumerate(lines) if key in line][0]].endswith(f" --certificate-key {key}")
    assert lines[-2].startswith("To join a control plane, run this on it as root") and key not in repr(view.events)


def test_an_external_ca_is_refused_in_one_sentence_and_nothing_is_written(cluster):
    (cluster.root / "pki" / "front-proxy-ca.key").unlink()
    with pytest.raises(StepFailed) as e:
        upload(cluster, certificate_key())
    assert "phase upload-certs" in str(e.value) and "external CA or an external front-proxy CA" in str(e.value)
    assert "front-proxy-ca.key" in str(e.value)
    assert not [k for k in cluster.api.objects if k[0] in ("secrets", "roles", "rolebindings")]


def test_dry_run_shows_the_steps_and_writes_nothing(cluster):
    ctx, view, _ = upload(cluster, dry_run=True)
    assert not [k for k in cluster.api.objects if k[0] in ("secrets", "roles", "rolebindings")]
    shown = [s.describe() for s in view.steps()]
    assert any("apply Secret kube-system/kubeadm-certs" in s for s in shown), shown
    assert any("apply Role kube-system/kubeadm:kubeadm-certs" in s for s in shown), shown


def test_encryption_is_kubeadms_layout_nonce_first_and_a_wrong_key_is_one_sentence():
    key = certificate_key()
    blob = sealed.encrypt(b"secret bytes", key)
    assert len(blob) == 12 + len(b"secret bytes") + 16  # Go's gcm.Seal(nonce, nonce, data, nil)
    assert AESGCM(bytes.fromhex(key)).decrypt(blob[:12], blob[12:], None) == b"secret bytes"
    assert sealed.decrypt(blob, key) == b"secret bytes"
    assert sealed.encrypt(b"secret bytes", key) != blob  # a fresh nonce each time
    with pytest.raises(sealed.WrongKey, match="does not decrypt the kubeadm-certs Secret"):
        sealed.decrypt(blob, certificate_key())
    with pytest.raises(sealed.WrongKey):
        sealed.decrypt(blob[:5], key)


# --- join --control-plane's download-certs: the Secret read back with the join line's token ---------


def join_plan(cluster, key: str | None, dry_run: bool = False):
    """download-certs of a host joining with the join line's token and --certificate-key `key`."""
    req = joining.JoinRequest(
        endpoint=f"127.0.0.1:{cluster.api.port}",
        token=Secret(NODE_TOKEN),
        pins=(ca_pin(cluster.ca_pem),),
        discovery_timeout=1,
        node_name="cp-2",
        control_plane=True,
        certificate_key=Secret(key) if key else None,
    )
    spec = local_spec(req)
    me = next(h for h in spec.hosts if h.local)
    t = Target(me, lambda h: None, facts=FactsStub({}))
    ctx = Context(spec, [t], Options(dry_run=dry_run), shared={join.REQUEST: req})
    return list(cp_prepare.plan_download_certs(ctx, t))


@pytest.fixture
def published(cluster):
    publish_cluster_info(cluster)  # cluster-info signed for NODE_TOKEN, as token discovery needs
    return cluster


def test_a_joining_control_plane_downloads_and_decrypts_the_shared_files(published):
    key = certificate_key()
    upload(published, key)
    ups = {s.path: s for s in join_plan(published, key) if isinstance(s, Upload)}
    pki = "/etc/kubernetes/pki"
    assert sorted(ups) == sorted(f"{pki}/{rel}" for rel in SHARED)
    for rel in SHARED:
        up = ups[f"{pki}/{rel}"]
        assert up.data == (published.root / "pki" / rel).read_bytes() and up.mode == cp_prepare.SHARED[rel], rel
    assert isinstance(ups[f"{pki}/ca.key"].content, Secret) and "<secret>" in ups[f"{pki}/ca.key"].describe()


def test_a_wrong_key_an_expired_secret_and_no_key_are_one_sentence_each(published):
    with pytest.raises(copycerts.NoCerts, match="may not read Secret .* never uploaded; run .*upload-certs --upload"):
        join_plan(published, certificate_key())  # never uploaded: no Role lets the token read it
    upload(published, certificate_key())
    kept = published.api.objects.pop(("secrets", "kube-system", "kubeadm-certs"))  # its 2 h passed: collected
    with pytest.raises(copycerts.NoCerts, match="kubeadm-certs is not in the cluster .* upload-certs --upload-certs"):
        join_plan(published, certificate_key())
    published.api.objects[("secrets", "kube-system", "kubeadm-certs")] = kept
    with pytest.raises(sealed.WrongKey, match="does not decrypt the kubeadm-certs Secret"):
        join_plan(published, certificate_key())
    with pytest.raises(UserError, match="needs --certificate-key"):
        join_plan(published, None)
    with pytest.raises(UserError, match="64 hex characters"):
        join_plan(published, "abcdef")


def test_the_cli_needs_a_well_formed_certificate_key_for_a_control_plane_before_anything_is_asked(kubeinit_cli):
    args = ["join", "10.0.0.1:6443", "--token", NODE_TOKEN, "--discovery-token-ca-cert-hash", "sha256:" + "0" * 64]
    r = kubeinit_cli(*args, "--control-plane")
    assert r.returncode == 2 and "needs --certificate-key" in r.stderr
    bad = kubeinit_cli(*args, "--control-plane", "--certificate-key", "zz")
    assert bad.returncode == 2 and "64 hex characters" in bad.stderr
