"""x509 helpers shared by pki, kubeconfig and expiration (like kubeadm's pkiutil).

    CertTemplate(cn, orgs, dns, ips, eku, is_ca)      what a certificate must say
    sign(tmpl, public_key, ca_cert|None, ca_key, not_before, not_after) -> Certificate
    resign(cert, ca_cert, ca_key, not_before, not_after) -> Certificate   same key/attributes
    random_serial() -> int in [1, 2**63 - 1)
    load_cert(pem, what) / cert_to_pem(cert)
    differences(cert, tmpl) -> list[str]   what `cert` lacks compared with `tmpl`
    issued_by(cert, ca) -> str | None      None when `ca` signed `cert`, else the reason

Certificates come out as Go's x509.CreateCertificate makes kubeadm's: subject O before CN,
KeyUsage and BasicConstraints critical (CA:FALSE on leaves too), SubjectKeyIdentifier on CAs,
AuthorityKeyIdentifier on leaves whose CA has one.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeinit.errors import UserError

BACKDATE = timedelta(minutes=5)  # kubeadm's CertificateBackdate: tolerate small clock jumps
_MAX_SERIAL = 2**63 - 1  # Go's math.MaxInt64

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class CertTemplate:
    cn: str
    orgs: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    ips: tuple[IP, ...] = ()
    eku: tuple[x509.ObjectIdentifier, ...] = ()
    is_ca: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


def random_serial() -> int:
    # uniform in [1, MaxInt64), as kubeadm's NewSignedCert
    return secrets.randbelow(_MAX_SERIAL - 1) + 1


def _hash_for(key):
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(cn: str, orgs: tuple[str, ...]) -> x509.Name:
    rdns = []
    if orgs:  # Go puts all O values in one RDN, before CN
        rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]))
    rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    return x509.Name(rdns)


def _key_usage(is_ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _finish(builder, public_key, ca_cert, ca_key, is_ca: bool) -> x509.Certificate:
    if is_ca:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if ca_cert is not None:
        try:
            ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
        except x509.ExtensionNotFound:
            pass  # Go also leaves AKI out when the parent has no SKI
    return builder.sign(ca_key, _hash_for(ca_key))


def sign(
    tmpl: CertTemplate, public_key, ca_cert: x509.Certificate | None, ca_key, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """Issue `tmpl` for `public_key`; ca_cert None means self-signed with ca_key."""
    subject = _name(tmpl.cn, tmpl.orgs)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject if ca_cert is not None else subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_key_usage(tmpl.is_ca), critical=True)
    )
    if tmpl.eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(tmpl.eku)), critical=False)
    b = b.add_extension(x509.BasicConstraints(ca=tmpl.is_ca, path_length=None), critical=True)
    sans = [x509.DNSName(d) for d in tmpl.dns] + [x509.IPAddress(i) for i in tmpl.ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _finish(b, public_key, ca_cert, ca_key, tmpl.is_ca)


def resign(
    cert: x509.Certificate, ca_cert: x509.Certificate, ca_key, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """A new serial and validity for `cert`, keeping its key, subject and extensions."""
    b = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(ca_cert.subject)
        .public_key(cert.public_key())
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for ext in cert.extensions:
        if not isinstance(ext.value, (x509.AuthorityKeyIdentifier, x509.SubjectKeyIdentifier)):
            b = b.add_extension(ext.value, critical=ext.critical)
    return _finish(b, cert.public_key(), ca_cert, ca_key, is_ca(cert))


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certs(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise UserError(f"{what}: not a readable PEM certificate ({e})") from None
    return certs


def load_cert(pem: bytes, what: str) -> x509.Certificate:
    # the first certificate is the subject's; the rest would be intermediates
    return load_certs(pem, what)[0]


def _ext(cert: x509.Certificate, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def is_ca(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    return bool(bc and bc.ca)


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    """The subject's values for `oid` (text: only an X500UniqueIdentifier holds bytes)."""
    return [v for a in cert.subject.get_attributes_for_oid(oid) if isinstance(v := a.value, str)]


def cn_of(cert: x509.Certificate) -> str:
    return next(iter(_subject(cert, NameOID.COMMON_NAME)), "")


def orgs_of(cert: x509.Certificate) -> tuple[str, ...]:
    return tuple(_subject(cert, NameOID.ORGANIZATION_NAME))


def sans_of(cert: x509.Certificate) -> tuple[list[str], list[IP]]:
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return [], []
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def eku_of(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    eku = _ext(cert, x509.ExtendedKeyUsage)
    return list(eku) if eku else []


def key_usage_of(cert: x509.Certificate) -> x509.KeyUsage | None:
    return _ext(cert, x509.KeyUsage)


_EKU_NAMES = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}


def differences(cert: x509.Certificate, tmpl: CertTemplate) -> list[str]:
    """What `cert` lacks for `tmpl`. Extra SANs/usages are fine, as in kubeadm's check."""
    out = []
    if cn_of(cert) != tmpl.cn:
        out.append(f"CN is {cn_of(cert)!r}, want {tmpl.cn!r}")
    if sorted(orgs_of(cert)) != sorted(tmpl.orgs):
        out.append(f"O is {list(orgs_of(cert))}, want {list(tmpl.orgs)}")
    dns, ips = sans_of(cert)
    missing = [d for d in tmpl.dns if d not in dns] + [str(i) for i in tmpl.ips if i not in ips]
    if missing:
        out.append(f"SANs lack {', '.join(missing)}")
    have_eku = eku_of(cert)
    lacking = [_EKU_NAMES.get(u, u.dotted_string) for u in tmpl.eku if u not in have_eku]
    if lacking:
        out.append(f"extended key usage lacks {', '.join(lacking)}")
    ku = key_usage_of(cert)
    if ku is None or not ku.digital_signature:
        out.append("key usage lacks digitalSignature")
    return out


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> str | None:
    if cert.issuer != ca.subject:
        return f"its issuer is {cert.issuer.rfc4514_string()!r}, not {ca.subject.rfc4514_string()!r}"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # ValueError: key type differs from the CA's
        return "its signature does not verify with the CA (another CA of the same name?)"
    return None


def validity_problem(cert: x509.Certificate, now: datetime) -> str | None:
    if now >= cert.not_valid_after_utc:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M UTC}"
    if now < cert.not_valid_before_utc:
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M UTC} (check the clock)"
    return None
