"""kubeinit.kube.client against the API-server test double (tests/unit/apiserver.py): kubeconfig
credentials, verified TLS, Status errors, and one clear sentence for each failure a user can cause."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import tempfile
from pathlib import Path

import pytest
import yaml
from apiserver import cluster, make_cluster  # noqa: F401 (fixture)

from kubeinit.certs.catalogue import PKIConfig
from kubeinit.certs.kubeconfig import plan_kubeconfigs
from kubeinit.certs.pki import plan_pki
from kubeinit.errors import KubeinitError, UserError
from kubeinit.kube.client import ApiError, Client, Unreachable, namespaced

SECRETS = namespaced("secrets", "kube-system")


def secret(name: str, **over) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}, **over}


def edited(src: Path, dst: Path, cluster_changes: dict | None = None, user: dict | None = None) -> Path:
    """A copy of a kubeconfig with its cluster entry changed and/or its user replaced."""
    conf = yaml.safe_load(src.read_text())
    conf["clusters"][0]["cluster"].update(cluster_changes or {})
    conf["clusters"][0]["cluster"] = {k: v for k, v in conf["clusters"][0]["cluster"].items() if v is not None}
    if user is not None:
        conf["users"][0]["user"] = user
    dst.write_text(yaml.safe_dump(conf))
    return dst


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    """Another cluster's CA and admin.conf: trusted by nobody here."""
    cfg = PKIConfig(node_name="other", advertise_address="127.0.0.1", algorithm="ECDSA-P256")
    pki = plan_pki(cfg, {}, only=["ca"])
    [admin] = plan_kubeconfigs(cfg, pki.result["ca.crt"], pki.result["ca.key"], {}, only=["admin.conf"]).files
    path = tmp_path_factory.mktemp("other") / "admin.conf"
    path.write_bytes(admin.content)
    return pki.result["ca.crt"], path


def test_admin_conf_from_kubeinit_authenticates_over_verified_tls(cluster):
    c = Client.from_kubeconfig(cluster.admin_conf)
    assert c.server == cluster.api.url and c.netloc == f"127.0.0.1:{cluster.api.port}"
    assert c.user == "kubernetes-admin" and c.ca_pem == cluster.ca_pem
    assert c.get("/version")["gitVersion"].startswith("v1.")
    assert cluster.api.requests[-1] == ("GET", "/version", "kubernetes-admin")


def test_crud_round_trip_and_server_set_fields(cluster):
    c = Client.from_kubeconfig(cluster.admin_conf)
    made = c.create(SECRETS, secret("a", metadata={"name": "a", "labels": {"app": "x"}}, type="t1"))
    assert made["metadata"]["uid"] and made["metadata"]["resourceVersion"] and made["metadata"]["creationTimestamp"]
    c.create(SECRETS, secret("b", type="t2"))
    assert [i["metadata"]["name"] for i in c.list(SECRETS)["items"]] == ["a", "b"]
    assert [i["metadata"]["name"] for i in c.list(SECRETS, field_selector="type=t2")["items"]] == ["b"]
    assert [i["metadata"]["name"] for i in c.list(SECRETS, label_selector="app=x")["items"]] == ["a"]
    got = c.get(namespaced("secrets", "kube-system", "a"))
    got["data"] = {"k": "dzI="}
    replaced = c.replace(namespaced("secrets", "kube-system", "a"), got)
    assert int(replaced["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    assert replaced["metadata"]["uid"] == made["metadata"]["uid"]
    c.delete(namespaced("secrets", "kube-system", "a"))
    assert [i["metadata"]["name"] for i in c.list(SECRETS)["items"]] == ["b"]


@pytest.mark.parametrize(
    "action,code,reason",
    [
        (lambda c: c.get(namespaced("secrets", "kube-system", "nope")), 404, "NotFound"),
        (lambda c: c.delete(namespaced("secrets", "kube-system", "nope")), 404, "NotFound"),
        (lambda c: c.create(SECRETS, secret("dup")), 409, "AlreadyExists"),
        (lambda c: c.create(SECRETS, secret("Not_A_Name")), 422, "Invalid"),
        (lambda c: c.create(namespaced("secrets", "no-such-ns"), secret("x")), 404, "NotFound"),
        (
            lambda c: c.replace(
                namespaced("secrets", "kube-system", "dup"),
                secret("dup", metadata={"name": "dup", "resourceVersion": "1"}),
            ),
            409,
            "Conflict",
        ),
        (lambda c: c.list(SECRETS, field_selector="data.k=v"), 400, "BadRequest"),
    ],
)
def test_status_errors_become_api_errors(cluster, action, code, reason):
    c = Client.from_kubeconfig(cluster.admin_conf)
    c.create(SECRETS, secret("dup"))
    with pytest.raises(ApiError) as e:
        action(c)
    assert (e.value.code, e.value.reason) == (code, reason)
    assert cluster.api.url in str(e.value) and "\n" not in str(e.value)


def test_client_key_never_touches_a_disk(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    seen = {}
    real = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        seen["files"] = [(p, os.readlink(p) if p.startswith("/proc/") else p) for p in (certfile, keyfile) if p]
        seen["tmp"] = [str(p) for p in (tmp_path / "tmp").rglob("*")]
        return real(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    Client.from_kubeconfig(cluster.admin_conf).get("/version")
    assert seen["tmp"] == [], "nothing in the temp dir, even while ssl loads the key"
    [(path, target)] = seen["files"]
    assert target.startswith("/memfd:kubeinit-client"), "an anonymous memory file holds certificate and key"
    assert not os.path.exists(path) or not os.readlink(path).startswith("/memfd:"), "closed once loaded"


def test_without_memfd_the_key_file_is_private_and_removed(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delattr(os, "memfd_create")
    seen = {}
    real = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        seen["dir"] = stat.S_IMODE(os.stat(os.path.dirname(keyfile)).st_mode)
        seen["files"] = [stat.S_IMODE(os.stat(p).st_mode) for p in (certfile, keyfile)]
        return real(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    Client.from_kubeconfig(cluster.admin_conf).get("/version")
    assert seen == {"dir": 0o700, "files": [0o600, 0o600]}
    assert list((tmp_path / "tmp").iterdir()) == []


def test_ca_and_client_cert_as_files_relative_to_the_kubeconfig(cluster):
    import base64

    conf = yaml.safe_load(cluster.admin_conf.read_text())
    user = conf["users"][0]["user"]
    (cluster.root / "creds").mkdir()
    (cluster.root / "creds" / "admin.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (cluster.root / "creds" / "admin.key").write_bytes(base64.b64decode(user["client-key-data"]))
    path = edited(
        cluster.admin_conf,
        cluster.root / "files.conf",
        {"certificate-authority-data": None, "certificate-authority": "pki/ca.crt"},
        {"client-certificate": "creds/admin.crt", "client-key": "creds/admin.key"},
    )
    assert Client.from_kubeconfig(path).get("/version")


def test_bearer_token_user(tmp_path):
    c = make_cluster(tmp_path, tokens={"s3cr3t-bearer-value": ("alice", ("system:masters",))})
    try:
        good = edited(c.admin_conf, tmp_path / "good.conf", user={"token": "s3cr3t-bearer-value"})
        assert Client.from_kubeconfig(good).list(SECRETS)["items"] == []
        assert c.api.requests[-1][2] == "alice"
        bad = edited(c.admin_conf, tmp_path / "bad.conf", user={"token": "not-the-right-one"})
        with pytest.raises(
            ApiError,
            match=r"rejected the credentials of user 'kubernetes-admin' in .*bad\.conf "
            r"\(401 Unauthorized\)",
        ) as e:
            Client.from_kubeconfig(bad).list(SECRETS)
        assert e.value.reason == "Unauthorized"
    finally:
        c.api.stop()


def test_no_credentials_is_401_naming_the_user(cluster):
    path = edited(cluster.admin_conf, cluster.root / "anon.conf", user={})
    with pytest.raises(ApiError, match="rejected the credentials of user 'kubernetes-admin'") as e:
        Client.from_kubeconfig(path).list(SECRETS)
    assert e.value.code == 401


def test_client_cert_of_another_ca_is_rejected_naming_the_user(cluster, other_pki):
    _, other_admin = other_pki
    path = edited(
        other_admin,
        cluster.root / "foreign.conf",
        {"server": cluster.api.url, "certificate-authority-data": _b64(cluster.ca_pem)},
    )
    with pytest.raises(ApiError, match="client certificate of user 'kubernetes-admin'") as e:
        Client.from_kubeconfig(path).list(SECRETS)
    assert e.value.code == 401


def test_non_admin_user_is_403_naming_the_user(cluster):
    with pytest.raises(
        ApiError,
        match=r"user 'system:kube-scheduler' of .*scheduler\.conf may not do this .*"
        r"403 Forbidden",
    ) as e:
        Client.from_kubeconfig(cluster.kubeconfig("scheduler.conf")).list(SECRETS)
    assert e.value.reason == "Forbidden"


def test_server_certificate_not_signed_by_the_kubeconfig_ca(cluster, other_pki):
    other_ca, _ = other_pki
    path = edited(cluster.admin_conf, cluster.root / "wrong-ca.conf", {"certificate-authority-data": _b64(other_ca)})
    with pytest.raises(
        Unreachable,
        match=rf"the API server {cluster.api.url} presented a certificate that the "
        r"CA in .*wrong-ca\.conf does not vouch for",
    ):
        Client.from_kubeconfig(path).get("/version")


def test_insecure_skip_tls_verify_is_refused(cluster):
    """Admin credentials never go to a server kubeinit cannot verify (only join's first,
    pinned read of cluster-info goes without a CA)."""
    for name, change in (
        ("insecure.conf", {"certificate-authority-data": None, "insecure-skip-tls-verify": True}),
        ("both.conf", {"insecure-skip-tls-verify": True}),
    ):
        path = edited(cluster.admin_conf, cluster.root / name, change)
        with pytest.raises(UserError, match="sets insecure-skip-tls-verify, and kubeinit does not send credentials"):
            Client.from_kubeconfig(path)
    assert not cluster.api.requests


def test_closed_port_is_one_sentence(cluster):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    path = edited(cluster.admin_conf, cluster.root / "closed.conf", {"server": f"https://127.0.0.1:{port}"})
    with pytest.raises(Unreachable) as e:
        Client.from_kubeconfig(path).get("/version")
    assert str(e.value) == (
        f"cannot reach the API server https://127.0.0.1:{port} (connection refused); is the "
        f"control plane up? (--kubeconfig {path})"
    )


def test_silent_server_times_out(cluster):
    with socket.socket() as s:  # accepts TCP (the backlog) but never speaks TLS
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        path = edited(
            cluster.admin_conf, cluster.root / "silent.conf", {"server": f"https://127.0.0.1:{s.getsockname()[1]}"}
        )
        with pytest.raises(Unreachable, match=r"\(no answer within 0\.3s\); is the control plane up"):
            Client.from_kubeconfig(path, timeout=0.3).get("/version")


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "does not exist; pass --kubeconfig"),
        ("a: [", "is not valid YAML"),
        ("apiVersion: v1\nkind: Config\n", "has no current-context"),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
            "users: [{name: u, user: {exec: {command: aws}}}]\n",
            "authenticates with 'exec', which kubeinit does not",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'http://h:1'}}]\nusers: [{name: u, user: {}}]\n",
            "not an https://",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://h:1', certificate-authority-data: '!!'}}]\n"
            "users: [{name: u, user: {}}]\n",
            "certificate-authority-data is not valid base64",
        ),
        # the wrong shape: the field is named (was "internal error: AttributeError/TypeError")
        (
            "current-context: x\ncontexts: [{name: x, context: [c, u]}]\n",
            r"k\.conf is not a kubeconfig \(contexts\[0\]\.context: must be a mapping, not a list\)$",
        ),
        (
            "current-context: x\ncontexts: 5\n",
            r"k\.conf is not a kubeconfig \(contexts: must be a list, not a number\)$",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\nusers: [{name: u, user: [token]}]\n",
            r"k\.conf is not a kubeconfig \(users\[0\]\.user: must be a mapping, not a list\)$",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\nusers: [{name: u, user: {token: [a]}}]\n",
            r"k\.conf is not a kubeconfig \(users\[0\]\.user\.token: must be text, not a list\)$",
        ),
    ],
)
def test_kubeconfig_problems_are_user_errors(tmp_path, content, match):
    path = tmp_path / "k.conf"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=match):
        Client.from_kubeconfig(path)


def test_kubeconfig_that_is_a_fifo_or_too_big_is_refused_at_once(tmp_path):
    import signal

    def hung(*_):
        raise TimeoutError("still waiting for a writer to the FIFO")

    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)  # no writer ever comes: the old reader waited forever
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(
            UserError,
            match=r"fifo\.conf is a FIFO \(named pipe\), not a regular file .*pass "
            r"--kubeconfig with the right file",
        ):
            Client.from_kubeconfig(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    big = tmp_path / "big.conf"
    with open(big, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    with pytest.raises(
        UserError,
        match=r"big\.conf is 100\.0 MiB, more than a kubeconfig can need \(kubeinit "
        r"reads at most 16\.0 MiB",
    ):
        Client.from_kubeconfig(big)


def test_unreadable_kubeconfig_says_run_as_root(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "admin.conf"
    path.write_text("x: 1\n")
    path.chmod(0)
    with pytest.raises(UserError, match=r"permission denied\); run as root"):
        Client.from_kubeconfig(path)


def test_errors_are_kubeinit_errors():
    assert issubclass(ApiError, KubeinitError) and issubclass(Unreachable, KubeinitError)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_a_client_key_of_another_certificate_is_a_user_error(cluster, other_pki, tmp_path):
    mine = yaml.safe_load(cluster.admin_conf.read_text())["users"][0]["user"]
    theirs = yaml.safe_load(other_pki[1].read_text())["users"][0]["user"]
    path = edited(
        cluster.admin_conf,
        tmp_path / "mixed.conf",
        user={"client-certificate-data": mine["client-certificate-data"], "client-key-data": theirs["client-key-data"]},
    )
    with pytest.raises(
        UserError,
        match=r"mixed\.conf, user 'kubernetes-admin': the client certificate and key "
        r"cannot be used \(.*\); are they a matching PEM pair\?$",
    ):
        Client.from_kubeconfig(path)
