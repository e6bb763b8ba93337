"""check-expiration rows and renew over a written cert dir."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import yaml
from cryptography import x509

from kubeinit.certs.expiration import check_expiration, renew
from kubeinit.certs.pki import plan_pki
from kubeinit.durations import short_duration
from kubeinit.errors import UserError

LEAF_ROWS = [
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "scheduler.conf",
    "super-admin.conf",
]  # no kubelet.conf, as kubeadm
SIGNER = {
    "apiserver": "ca",
    "apiserver-kubelet-client": "ca",
    "front-proxy-client": "front-proxy-ca",
    "apiserver-etcd-client": "etcd-ca",
    "etcd-healthcheck-client": "etcd-ca",
    "etcd-peer": "etcd-ca",
    "etcd-server": "etcd-ca",
}


@pytest.fixture
def dirs(ec, tmp_path, write_tree):
    pki = write_tree(tmp_path / "pki", ec.files)
    kc = write_tree(tmp_path / "kc", ec.kc_files)
    return pki, kc


def test_rows(dirs, now):
    rows = check_expiration(*dirs, now=now + timedelta(hours=1))
    assert [r.name for r in rows] == LEAF_ROWS + ["ca", "etcd-ca", "front-proxy-ca"]
    for r in rows:
        days = 1000 if r.is_ca else 100  # make_cfg's validity
        assert r.expires == now + timedelta(days=days)
        assert r.residual == timedelta(days=days, hours=-1)
        assert r.ca_name == ("" if r.is_ca else SIGNER.get(r.name, "ca"))
        assert r.externally_managed is False
        assert r.residual_text == ("2y" if r.is_ca else "99d")
    assert rows[0].path == dirs[1] / "admin.conf" and rows[1].path == dirs[0] / "apiserver.crt"


def test_rows_skip_missing_and_flag_external(dirs, now):
    pki, kc = dirs
    for p in (pki / "etcd").iterdir():
        p.unlink()
    (pki / "ca.key").unlink()
    (kc / "super-admin.conf").unlink()
    rows = {r.name: r for r in check_expiration(pki, kc, now=now)}
    assert not any(n.startswith("etcd") for n in rows) and "super-admin.conf" not in rows
    assert "apiserver-etcd-client" in rows  # its CA file is gone, the cert is still listed
    assert rows["ca"].externally_managed and rows["apiserver"].externally_managed
    assert rows["admin.conf"].externally_managed
    assert not rows["front-proxy-client"].externally_managed and not rows["front-proxy-ca"].externally_managed


@pytest.mark.parametrize(
    "seconds,text",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (86399, "23h"),
        (364 * 86400, "364d"),
        (365 * 86400, "1y"),
        (3650 * 86400, "10y"),
    ],
)
def test_short_duration(seconds, text):
    assert short_duration(timedelta(seconds=seconds)) == text


def test_renew_keeps_key_and_attributes(dirs, ec, now, openssl_verify):
    pki, kc = dirs
    later = now + timedelta(days=50)
    out = renew(pki, kc, ["apiserver"], now=later)
    assert list(out) == [pki / "apiserver.crt"] and out[pki / "apiserver.crt"][1] == 0o644
    old = x509.load_pem_x509_certificate(ec.files["apiserver.crt"])
    new = x509.load_pem_x509_certificate(out[pki / "apiserver.crt"][0])
    assert new.public_key() == old.public_key()
    assert new.subject == old.subject and new.issuer == old.issuer
    for cls in (
        x509.SubjectAlternativeName,
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.BasicConstraints,
        x509.AuthorityKeyIdentifier,
    ):
        assert new.extensions.get_extension_for_class(cls) == old.extensions.get_extension_for_class(cls)
    assert new.serial_number != old.serial_number
    assert new.not_valid_before_utc == later - timedelta(minutes=5)
    assert new.not_valid_after_utc == later + timedelta(days=365) > old.not_valid_after_utc
    (pki / "apiserver.crt").write_bytes(out[pki / "apiserver.crt"][0])
    assert openssl_verify(pki / "ca.crt", pki / "apiserver.crt", at=later + timedelta(days=300)).returncode == 0


def test_renew_kubeconfig(dirs, ec, now):
    pki, kc = dirs
    out = renew(pki, kc, ["admin.conf"], now=now + timedelta(days=1), validity=timedelta(days=30))
    content, mode = out[kc / "admin.conf"]
    assert mode == 0o600
    old, new = yaml.safe_load(ec.kc_files["admin.conf"]), yaml.safe_load(content)
    assert new["users"][0]["user"]["client-key-data"] == old["users"][0]["user"]["client-key-data"]
    assert new["clusters"] == old["clusters"] and new["contexts"] == old["contexts"]

    def cert(conf):
        return x509.load_pem_x509_certificate(base64.b64decode(conf["users"][0]["user"]["client-certificate-data"]))

    assert cert(new).subject == cert(old).subject
    assert cert(new).not_valid_after_utc == now + timedelta(days=31)


def test_renew_all_then_plan_reuses_everything(dirs, ec, now, write_tree):
    pki, kc = dirs
    later = now + timedelta(days=101)  # every leaf has expired
    with pytest.raises(UserError, match="expired"):
        plan_pki(ec.cfg, ec.pki.result, now=later)
    out = renew(pki, kc, "all", now=later)
    assert sorted(p.name for p in out) == sorted(
        [
            "admin.conf",
            "super-admin.conf",
            "controller-manager.conf",
            "scheduler.conf",
            "apiserver.crt",
            "apiserver-kubelet-client.crt",
            "front-proxy-client.crt",
            "server.crt",
            "peer.crt",
            "healthcheck-client.crt",
            "apiserver-etcd-client.crt",
        ]
    )
    renewed = {str(p.relative_to(pki)): c for p, (c, _) in out.items() if p.is_relative_to(pki)}
    assert plan_pki(ec.cfg, {**ec.pki.result, **renewed}, now=later).files == ()


@pytest.mark.parametrize(
    "name,match",
    [
        ("ca", "never the CAs nor the sa key"),
        ("sa", "never the CAs"),
        ("etcd-ca", "never the CAs"),
        ("kubelet.conf", "unknown certificate"),
        ("bogus", "unknown certificate 'bogus'"),
    ],
)
def test_renew_refuses(dirs, name, match):
    with pytest.raises(UserError, match=match):
        renew(*dirs, [name])


def test_renew_external_ca(dirs, now):
    pki, kc = dirs
    (pki / "ca.key").unlink()
    with pytest.raises(UserError, match=r"cannot renew apiserver: ca.key is absent \(external CA mode\)"):
        renew(pki, kc, ["apiserver"], now=now)
    out = renew(pki, kc, "all", now=now)  # the rest is still renewed
    assert sorted(p.name for p in out) == [
        "apiserver-etcd-client.crt",
        "front-proxy-client.crt",
        "healthcheck-client.crt",
        "peer.crt",
        "server.crt",
    ]
    (pki / "front-proxy-ca.key").unlink()
    (pki / "etcd" / "ca.key").unlink()
    with pytest.raises(UserError, match="nothing renewed"):
        renew(pki, kc, "all", now=now)


def test_renew_missing_files(dirs):
    pki, kc = dirs
    assert list(renew(pki, kc, "front-proxy-client")) == [pki / "front-proxy-client.crt"]  # one name as str
    (pki / "apiserver.crt").unlink()
    with pytest.raises(UserError, match="cannot renew apiserver: .*apiserver.crt does not exist"):
        renew(pki, kc, ["apiserver"])
    (pki / "etcd" / "ca.crt").unlink()
    with pytest.raises(UserError, match=r"cannot renew etcd-peer: its CA certificate etcd/ca.crt is missing"):
        renew(pki, kc, ["etcd-peer"])
