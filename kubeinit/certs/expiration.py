"""`kubeinit certs check-expiration` and `certs renew`: read the local PKI, return what to write.

check_expiration(cert_dir, kubeconfig_dir, now=None) -> list[ExpirationRow]
    leaf certs and kubeconfigs kubeadm lists (sorted by name), then the CAs; missing files skipped
renew(cert_dir, kubeconfig_dir, names | "all", now=None, validity=365d) -> {Path: (bytes, mode)}
    re-signs each named cert (or kubeconfig client cert) with its CA: same key, subject, SANs and
    usages, new serial, NotBefore now-5m, NotAfter now+validity. CAs and sa are never renewed.
    A named cert whose CA key is absent (external CA) is a UserError; "all" skips those and
    fails only when nothing is left to renew.
RENEWABLE                the names renew accepts (besides "all")
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from kubeinit import kubeconfig
from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs import kubeconfig as kc
from kubeinit.certs.catalogue import BY_NAME, CATALOGUE, CertSpec
from kubeinit.certs.pki import CERT_MODE
from kubeinit.durations import short_duration
from kubeinit.errors import UserError

# kubelet.conf is left out, as in kubeadm: the kubelet rotates its own client certificate
KUBECONFIG_FILES = tuple(f for f in kc.FILES if f != "kubelet.conf")
LEAVES = tuple(s.name for s in CATALOGUE if not s.is_ca)
RENEWABLE = LEAVES + KUBECONFIG_FILES


@dataclass(frozen=True)
class ExpirationRow:
    name: str  # "apiserver", "admin.conf", "ca"
    path: Path
    expires: datetime
    residual: timedelta
    ca_name: str  # signer; "" for a CA row
    externally_managed: bool  # the signing CA's (or this CA's) key is absent
    is_ca: bool

    @property
    def residual_text(self) -> str:
        return short_duration(self.residual)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


class _PKI:
    """Lazily loaded CAs of one cert dir."""

    def __init__(self, cert_dir: Path):
        self.dir = Path(cert_dir)
        self._cas: dict[str, tuple] = {}

    def ca(self, name: str) -> tuple:
        """(cert | None, key | None) of a CA."""
        if name not in self._cas:
            spec = BY_NAME[name]
            crt, key = _read(self.dir / spec.crt), _read(self.dir / spec.key)
            self._cas[name] = (
                cu.load_cert(crt, spec.crt) if crt else None,
                keys.load_private_key(key, spec.key) if key else None,
            )
        return self._cas[name]

    def external(self, name: str) -> bool:
        cert, key = self.ca(name)
        return cert is not None and key is None


def _kubeconfig_cert(path: Path, data: bytes):
    conf = kubeconfig.load(data, path.name)
    user = kubeconfig.current(conf, path.name).user
    raw = user.get("client-certificate-data")
    if not raw:
        raise UserError(f"{path}: the current user has no embedded client-certificate-data")
    return conf, user, cu.load_cert(base64.b64decode(raw), path.name)


def check_expiration(cert_dir: Path, kubeconfig_dir: Path, now: datetime | None = None) -> list[ExpirationRow]:
    now = now or cu.utcnow()
    pki = _PKI(cert_dir)
    leaves, cas = [], []

    def row(name, path, cert, ca_name, is_ca, external):
        exp = cert.not_valid_after_utc
        return ExpirationRow(name, path, exp, exp - now, ca_name, external, is_ca)

    for spec in CATALOGUE:
        path = pki.dir / spec.crt
        if spec.ca is None:
            cert, _ = pki.ca(spec.name)
            if cert is not None:
                cas.append(row(spec.name, path, cert, "", True, pki.external(spec.name)))
        elif (data := _read(path)) is not None:
            leaves.append(row(spec.name, path, cu.load_cert(data, spec.crt), spec.ca, False, pki.external(spec.ca)))
    for name in KUBECONFIG_FILES:
        path = Path(kubeconfig_dir) / name
        if (data := _read(path)) is not None:
            leaves.append(row(name, path, _kubeconfig_cert(path, data)[2], "ca", False, pki.external("ca")))
    return sorted(leaves, key=lambda r: r.name) + sorted(cas, key=lambda r: r.name)


def _targets(names: str | Sequence[str]) -> tuple[list[str], bool]:
    names = [names] if isinstance(names, str) else list(names)
    if "all" in names:
        return list(RENEWABLE), False
    for n in names:
        if n == "sa" or (n in BY_NAME and BY_NAME[n].is_ca):
            raise UserError(
                f"{n} cannot be renewed: kubeinit renews leaf certificates and kubeconfig "
                "files only, never the CAs nor the sa key"
            )
        if n not in RENEWABLE:
            raise UserError(f"unknown certificate {n!r}: must be all or one of {', '.join(RENEWABLE)}")
    return [n for n in RENEWABLE if n in names], True


def renew(
    cert_dir: Path,
    kubeconfig_dir: Path,
    names: str | Sequence[str],
    now: datetime | None = None,
    validity: timedelta = timedelta(days=365),
) -> dict[Path, tuple[bytes, int]]:
    now = now or cu.utcnow()
    pki = _PKI(cert_dir)
    targets, explicit = _targets(names)
    out: dict[Path, tuple[bytes, int]] = {}
    external = []
    for name in targets:
        is_leaf = name in BY_NAME
        ca_name = BY_NAME[name].signer if is_leaf else "ca"
        path = pki.dir / BY_NAME[name].crt if is_leaf else Path(kubeconfig_dir) / name
        data = _read(path)
        if data is None:
            if explicit:
                raise UserError(f"cannot renew {name}: {path} does not exist")
            continue
        ca_cert, ca_key = pki.ca(ca_name)
        if ca_cert is None:
            raise UserError(f"cannot renew {name}: its CA certificate {BY_NAME[ca_name].crt} is missing")
        if ca_key is None:
            if explicit:
                raise UserError(
                    f"cannot renew {name}: {BY_NAME[ca_name].key} is absent (external CA "
                    f"mode); renew it with your {ca_name} CA"
                )
            external.append(name)
            continue
        if is_leaf:
            out[path] = (_renew_leaf(BY_NAME[name], pki.dir, data, ca_cert, ca_key, now, validity), CERT_MODE)
        else:
            out[path] = (_renew_kubeconfig(path, data, ca_cert, ca_key, now, validity), kc.KUBECONFIG_MODE)
    if not out and external:
        raise UserError(
            f"nothing renewed: {', '.join(external)} are signed by external CAs "
            "whose keys are absent; renew them with those CAs"
        )
    return out


def _renew_leaf(spec: CertSpec, cert_dir: Path, data: bytes, ca_cert, ca_key, now, validity) -> bytes:
    cert = cu.load_cert(data, spec.crt)
    key_pem = _read(cert_dir / spec.key)
    key = keys.load_private_key(key_pem, spec.key, signing=False) if key_pem else None
    if key is None or not keys.same_public_key(cert, key):
        raise UserError(f"cannot renew {spec.name}: {spec.key} is missing or does not match {spec.crt}")
    return cu.cert_to_pem(cu.resign(cert, ca_cert, ca_key, now - cu.BACKDATE, now + validity))


def _renew_kubeconfig(path: Path, data: bytes, ca_cert, ca_key, now, validity) -> bytes:
    conf, user, cert = _kubeconfig_cert(path, data)
    key_pem = base64.b64decode(user.get("client-key-data") or "")
    key = keys.load_private_key(key_pem, path.name, signing=False)
    if not keys.same_public_key(cert, key):
        raise UserError(f"cannot renew {path.name}: client-key-data does not match its client certificate")
    new = cu.resign(cert, ca_cert, ca_key, now - cu.BACKDATE, now + validity)
    user["client-certificate-data"] = kubeconfig.b64(cu.cert_to_pem(new))
    cluster = kubeconfig.current(conf, path.name).cluster
    if ca_cert not in kc.embedded_ca(cluster, path.name):
        # the renewed client cert chains to ca.crt, so the file must trust it too
        cluster["certificate-authority-data"] = kubeconfig.b64(cu.cert_to_pem(ca_cert))
    return kubeconfig.dump(conf).encode()
