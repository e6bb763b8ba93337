"""plan_pki over existing files: reuse, refuse silently wrong files, external-CA mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs.pki import plan_pki
from kubeinit.errors import UserError


def _without(files: dict, *paths) -> dict:
    return {k: v for k, v in files.items() if k not in paths}


def test_replan_with_own_output_writes_nothing(gen, now):
    again = plan_pki(gen.cfg, gen.pki.result, now=now + timedelta(hours=1))
    assert again.files == ()
    assert sorted(again.reused) == sorted(gen.files)
    assert not again.external_cas and not again.external_ca


def test_new_advertise_address_names_apiserver(rsa, make_cfg, now):
    cfg = make_cfg(advertise_address="192.168.10.99")
    with pytest.raises(UserError) as e:
        plan_pki(cfg, rsa.pki.result, now=now)
    msg = str(e.value)
    assert "certificate apiserver (apiserver.crt)" in msg
    assert "SANs lack 192.168.10.99" in msg
    assert "remove apiserver.crt and apiserver.key" in msg
    assert "etcd-server" in msg and "etcd-peer" in msg  # rule B has the address too
    assert "front-proxy-client" not in msg


def test_new_extra_san_only_touches_apiserver(ec, make_cfg, now):
    cfg = make_cfg(algorithm="ECDSA-P256", apiserver_cert_sans=list(ec.cfg.apiserver_cert_sans) + ["lb.example.com"])
    with pytest.raises(
        UserError,
        match=r"^certificate apiserver \(apiserver.crt\) does not fit: "
        r"SANs lack lb.example.com; to fix it, remove",
    ):
        plan_pki(cfg, ec.pki.result, now=now)


def test_dropped_extra_san_keeps_cert(ec, make_cfg, now):
    # kubeadm only asks that the cert covers every SAN wanted; an extra one is harmless
    cfg = make_cfg(algorithm="ECDSA-P256", apiserver_cert_sans=[])
    assert plan_pki(cfg, ec.pki.result, now=now).files == ()


def test_leaf_of_another_ca_is_refused(rsa, ec, now):
    existing = {
        **rsa.pki.result,
        "apiserver.crt": ec.files["apiserver.crt"],
        "apiserver.key": ec.files["apiserver.key"],
    }
    with pytest.raises(UserError) as e:
        plan_pki(rsa.cfg, existing, now=now)
    assert "certificate apiserver" in str(e.value) and "signature does not verify" in str(e.value)
    assert "`kubeinit certs renew apiserver`" in str(e.value)


def test_key_not_matching_cert_is_refused(ec, now):
    existing = {**ec.pki.result, "apiserver.key": ec.files["front-proxy-client.key"]}
    with pytest.raises(UserError, match="apiserver.key does not match it"):
        plan_pki(ec.cfg, existing, now=now)


def test_expired_leaf_suggests_renew(ec, now):
    later = now + timedelta(days=101)  # leaves: 100 days, CAs: 1000
    with pytest.raises(UserError) as e:
        plan_pki(ec.cfg, ec.pki.result, only=["apiserver"], now=later)
    assert str(e.value).startswith("certificate apiserver (apiserver.crt) does not fit: it expired on ")
    assert "kubeinit certs renew apiserver" in str(e.value)


def test_old_organization_is_refused(ec, now):
    ca = x509.load_pem_x509_certificate(ec.files["ca.crt"])
    ca_key = keys.load_private_key(ec.files["ca.key"])
    key = keys.generate_private_key("ECDSA-P256")
    old = cu.sign(
        cu.CertTemplate("kube-apiserver-kubelet-client", ("system:masters",), eku=(cu.CLIENT_AUTH,)),
        key.public_key(),
        ca,
        ca_key,
        now,
        now + timedelta(days=1),
    )
    existing = {
        **ec.pki.result,
        "apiserver-kubelet-client.crt": cu.cert_to_pem(old),
        "apiserver-kubelet-client.key": keys.private_key_to_pem(key),
    }
    with pytest.raises(UserError, match=r"O is \['system:masters'\], want \['kubeadm:cluster-admins'\]"):
        plan_pki(ec.cfg, existing, now=now)


def test_missing_leaf_is_made_with_existing_ca(ec, now):
    existing = _without(ec.pki.result, "apiserver.crt", "apiserver.key")
    plan = plan_pki(ec.cfg, existing, now=now)
    assert [f.path for f in plan.files] == ["apiserver.key", "apiserver.crt"]
    new = x509.load_pem_x509_certificate(plan.writes()["apiserver.crt"][0])
    new.verify_directly_issued_by(x509.load_pem_x509_certificate(ec.files["ca.crt"]))
    assert "ca.key" in plan.reused and "apiserver.crt" not in plan.reused


def test_half_a_pair_is_refused(ec, now):
    with pytest.raises(UserError, match="apiserver.crt exists but apiserver.key is missing"):
        plan_pki(ec.cfg, _without(ec.pki.result, "apiserver.key"), now=now)
    with pytest.raises(UserError, match="ca.key exists without ca.crt"):
        plan_pki(ec.cfg, _without(ec.pki.result, "ca.crt"), now=now)


def test_new_ca_with_existing_leaf_is_refused(ec, now):
    existing = _without(ec.pki.result, "etcd/ca.crt", "etcd/ca.key")
    with pytest.raises(UserError) as e:
        plan_pki(ec.cfg, existing, now=now)
    assert "etcd/server.crt exists but its CA etcd/ca.crt is missing and would be created" in str(e.value)
    # also when only the CA is selected: its old leaves would be orphaned
    with pytest.raises(UserError, match="etcd/peer.crt exists"):
        plan_pki(ec.cfg, existing, only=["etcd-ca"], now=now)


def test_leaf_without_its_ca_selected_or_present(ec, now):
    with pytest.raises(UserError, match=r"CA ca \(ca.crt\) is missing: create it first"):
        plan_pki(ec.cfg, {}, only=["apiserver"], now=now)


def test_external_ca_reuses_everything(gen, now):
    existing = _without(gen.pki.result, "ca.key")
    plan = plan_pki(gen.cfg, existing, now=now)
    assert plan.files == ()
    assert plan.external_ca is True and plan.external_cas == {"ca"}
    assert "ca.crt" in plan.reused and "ca.key" not in plan.reused


def test_external_ca_missing_leaf_is_named(ec, now):
    existing = _without(ec.pki.result, "ca.key", "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key")
    with pytest.raises(UserError) as e:
        plan_pki(ec.cfg, existing, now=now)
    msg = str(e.value)
    assert msg.startswith("apiserver-kubelet-client.crt is missing and ca.key is absent (external CA mode)")
    assert "apiserver.crt" not in msg  # the others verify


def test_external_ca_leaf_must_verify(rsa, ec, now):
    existing = {
        **_without(rsa.pki.result, "ca.key"),
        "apiserver.crt": ec.files["apiserver.crt"],
        "apiserver.key": ec.files["apiserver.key"],
    }
    with pytest.raises(UserError, match="replace apiserver.crt and apiserver.key with ones signed by your ca CA"):
        plan_pki(rsa.cfg, existing, now=now)


def test_external_front_proxy_and_etcd_cas(ec, now):
    plan = plan_pki(ec.cfg, _without(ec.pki.result, "front-proxy-ca.key", "etcd/ca.key"), now=now)
    assert plan.external_cas == {"front-proxy-ca", "etcd-ca"} and plan.external_ca is False
    with pytest.raises(UserError, match=r"etcd/peer.crt is missing and etcd/ca.key is absent"):
        plan_pki(ec.cfg, _without(ec.pki.result, "etcd/ca.key", "etcd/peer.crt", "etcd/peer.key"), now=now)


def test_expired_ca_is_refused(ec, now):
    with pytest.raises(UserError, match=r"CA ca \(ca.crt\): it expired on .* kubeinit does not renew CAs"):
        plan_pki(ec.cfg, ec.pki.result, only=["ca"], now=now + timedelta(days=1001))


def test_sa_pub_is_derived_or_checked(ec, now):
    plan = plan_pki(ec.cfg, _without(ec.pki.result, "sa.pub"), only=["sa"], now=now)
    assert plan.writes() == {"sa.pub": (ec.files["sa.pub"], 0o600)}
    with pytest.raises(UserError, match="sa.pub does not match sa.key"):
        plan_pki(
            ec.cfg,
            {**ec.pki.result, "sa.pub": keys.public_key_to_pem(keys.load_private_key(ec.files["ca.key"]))},
            only=["sa"],
            now=now,
        )
    with pytest.raises(UserError, match="sa.pub exists without sa.key"):
        plan_pki(ec.cfg, _without(ec.pki.result, "sa.key"), only=["sa"], now=now)


def test_selection_errors(ec, make_cfg, now):
    with pytest.raises(UserError, match="unknown certificate 'kubelet': must be all or one of ca, apiserver"):
        plan_pki(ec.cfg, {}, only=["kubelet"], now=now)
    with pytest.raises(UserError, match="not used with external etcd"):
        plan_pki(make_cfg(external_etcd=True), {}, only=["etcd-server"], now=now)


def test_private_keys_are_registered_for_masking(ec):
    from kubeinit.redact import mask

    key_line = ec.files["apiserver.key"].decode().splitlines()[1]
    assert key_line not in mask(f"oops: {key_line}")
