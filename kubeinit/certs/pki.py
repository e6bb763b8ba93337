"""The plan that makes or reuses kubeadm's certificates (pure: bytes in, bytes out); which
ones, and what each must hold, is kubeinit.certs.catalogue's.

    plan_pki(cfg, existing, only=None, now=None) -> PKIPlan

`existing` maps paths relative to the cert dir ("ca.crt", "etcd/ca.key", "sa.pub") to their bytes.
A file that is present and still right is reused untouched. A present file that is wrong (a SAN the
config now needs, another CA, expired, a key that does not match) is never kept nor replaced
silently: plan_pki raises one UserError naming each such file, what differs and what to do.
`ca.crt` without `ca.key` is external-CA mode (likewise front-proxy-ca, etcd/ca): nothing is signed
with that CA, and each of its leaves must already exist and verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kubeinit.certs import certutil as cu
from kubeinit.certs import keys
from kubeinit.certs.catalogue import BY_NAME, CATALOGUE, CertSpec, PKIConfig, select, template
from kubeinit.errors import UserError

KEY_MODE = 0o600
CERT_MODE = 0o644
PUBLIC_KEY_MODE = 0o600  # kubeadm writes sa.pub with client-go's keyutil.WriteKey, i.e. 0600


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the cert (or kubeconfig) dir
    content: bytes
    mode: int

    def __repr__(self) -> str:  # never the bytes: they may be a private key
        return f"PlannedFile({self.path!r}, mode=0o{self.mode:o}, {len(self.content)} bytes)"


@dataclass(frozen=True)
class PKIPlan:
    files: tuple[PlannedFile, ...]  # to write, keys before their certs
    reused: tuple[str, ...]  # existing paths kept as they are
    warnings: tuple[str, ...]
    external_cas: frozenset[str]  # CA names whose .crt is present without .key
    result: Mapping[str, bytes] = field(repr=False)  # the cert dir after the files are written

    @property
    def external_ca(self) -> bool:
        """kubeadm's external-CA mode: the controller-manager gets empty --cluster-signing-* flags."""
        return "ca" in self.external_cas

    def writes(self) -> dict[str, tuple[bytes, int]]:
        return {f.path: (f.content, f.mode) for f in self.files}


def _remedy(spec: CertSpec, external: bool, renewable: bool) -> str:
    files = f"{spec.crt} and {spec.key}"
    if external:
        return f"replace {files} with ones signed by your {spec.ca} CA"
    if renewable:
        return f"run `kubeinit certs renew {spec.name}`, or remove {files} to have new ones generated"
    return f"remove {files} to have new ones generated"


class _Planner:
    def __init__(self, cfg: PKIConfig, existing: Mapping[str, bytes], names: list[str], now: datetime):
        self.cfg, self.existing, self.names, self.now = cfg, existing, names, now
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.reused: list[str] = []
        self.files: list[PlannedFile] = []
        self.todo: list[str] = []  # names to generate, in order
        self.cas: dict[str, tuple] = {}  # name -> (state, cert, key); state reuse|external|new|broken

    # pass 1: look at what exists; decide; collect every problem
    def check(self, name: str) -> None:
        if name == "sa":
            return self._check_sa()
        spec = BY_NAME[name]
        if spec.ca is None:
            self._ca(spec.name)
            return
        state, ca_cert, _ = self._ca(spec.ca)
        if state == "broken":
            return
        crt, key = self.existing.get(spec.crt), self.existing.get(spec.key)
        if crt is None and key is None:
            if state == "external":
                self.errors.append(
                    f"{spec.crt} is missing and {BY_NAME[spec.ca].key} is absent (external CA mode), so "
                    f"kubeinit cannot sign it: provide {spec.crt} and {spec.key} signed by your {spec.ca} CA"
                )
            else:
                self.todo.append(name)
            return
        if crt is None or key is None:
            have, lack = (spec.crt, spec.key) if key is None else (spec.key, spec.crt)
            self.errors.append(f"{have} exists but {lack} is missing: restore {lack} or remove {have}")
            return
        if state == "new":
            return  # plan_pki reports every leaf left behind by a CA it creates
        cert = cu.load_cert(crt, spec.crt)
        pkey = keys.load_private_key(key, spec.key, signing=False)
        tmpl, warnings = template(spec, self.cfg)
        self.warnings += warnings
        renewable = []  # problems `certs renew` fixes: expiry, another signer
        wrong = [] if keys.same_public_key(cert.public_key(), pkey) else [f"{spec.key} does not match it"]
        for p in (cu.issued_by(cert, ca_cert), cu.validity_problem(cert, self.now)):
            if p:
                renewable.append(p)
        wrong += cu.differences(cert, tmpl)
        if wrong or renewable:
            self.errors.append(
                f"certificate {name} ({spec.crt}) does not fit: {', '.join(wrong + renewable)}; to fix it, "
                + _remedy(spec, state == "external", bool(renewable) and not wrong)
            )
        else:
            self.reused += [spec.crt, spec.key]

    def _ca(self, name: str) -> tuple:
        if name in self.cas:
            return self.cas[name]
        spec = BY_NAME[name]
        crt, key = self.existing.get(spec.crt), self.existing.get(spec.key)
        result: tuple = ("broken", None, None)
        if crt is None and key is not None:
            self.errors.append(f"{spec.key} exists without {spec.crt}: restore {spec.crt} or remove {spec.key}")
        elif crt is None and name not in self.names:
            self.errors.append(f"CA {name} ({spec.crt}) is missing: create it first (`certs {name}`)")
        elif crt is None:
            self.todo.append(name)
            result = ("new", None, None)
        else:
            result = self._check_existing_ca(spec, crt, key)
        self.cas[name] = result
        return result

    def _check_existing_ca(self, spec: CertSpec, crt: bytes, key: bytes | None) -> tuple:
        cert = cu.load_cert(crt, spec.crt)
        pkey = keys.load_private_key(key, spec.key) if key is not None else None
        problem = None
        if not cu.is_ca(cert):
            problem = "it is not a CA certificate (BasicConstraints CA is not true)"
        elif pkey is not None and not keys.same_public_key(cert.public_key(), pkey):
            problem = f"{spec.key} does not match it"
        else:
            problem = cu.validity_problem(cert, self.now)
        if problem:
            self.errors.append(
                f"CA {spec.name} ({spec.crt}): {problem}; kubeinit does not renew CAs: "
                f"replace {spec.crt} and {spec.key}, and then every certificate it signed"
            )
            return ("broken", None, None)
        self.reused += [spec.crt] + ([spec.key] if key is not None else [])
        return ("reuse" if pkey is not None else "external", cert, pkey)

    def _check_sa(self) -> None:
        key, pub = self.existing.get("sa.key"), self.existing.get("sa.pub")
        if key is None and pub is not None:
            self.errors.append("sa.pub exists without sa.key: restore sa.key or remove sa.pub")
        elif key is None:
            self.todo.append("sa")
        else:
            pkey = keys.load_private_key(key, "sa.key", signing=False)
            if pub is None:
                self.todo.append("sa")  # derive sa.pub from the existing key
            elif pub.strip() != keys.public_key_to_pem(pkey).strip():
                self.errors.append(
                    "sa.pub does not match sa.key: remove sa.pub to have it derived "
                    "from sa.key (tokens signed by sa.key stay valid)"
                )
            else:
                self.reused += ["sa.key", "sa.pub"]

    # pass 2: generate
    def make(self, name: str) -> None:
        cfg = self.cfg
        if name == "sa":
            key_pem = self.existing.get("sa.key")
            if key_pem:  # only sa.pub was missing
                pkey = keys.load_private_key(key_pem, "sa.key", signing=False)
                self.reused.append("sa.key")
            else:
                pkey = keys.generate_private_key(cfg.algorithm)
                self.files.append(PlannedFile("sa.key", keys.private_key_to_pem(pkey), KEY_MODE))
            self.files.append(PlannedFile("sa.pub", keys.public_key_to_pem(pkey), PUBLIC_KEY_MODE))
            return
        spec = BY_NAME[name]
        tmpl, warnings = template(spec, cfg)
        self.warnings += warnings
        pkey = keys.generate_private_key(cfg.algorithm)
        not_before = self.now - cu.BACKDATE
        if spec.ca is None:
            cert = cu.sign(tmpl, pkey.public_key(), None, pkey, not_before, self.now + cfg.ca_validity)
            self.cas[name] = ("new", cert, pkey)
        else:
            _, ca_cert, ca_key = self.cas[spec.ca]
            cert = cu.sign(tmpl, pkey.public_key(), ca_cert, ca_key, not_before, self.now + cfg.validity)
        self.files.append(PlannedFile(spec.key, keys.private_key_to_pem(pkey), KEY_MODE))
        self.files.append(PlannedFile(spec.crt, cu.cert_to_pem(cert), CERT_MODE))


def plan_pki(
    cfg: PKIConfig, existing: Mapping[str, bytes], only: Sequence[str] | None = None, now: datetime | None = None
) -> PKIPlan:
    """What to write so the cert dir holds kubeadm's PKI for `cfg`; see the module docstring."""
    now = now or cu.utcnow()
    names = select(cfg, only)
    p = _Planner(cfg, existing, names, now)
    for name in names:
        p.check(name)
    # a CA about to be created must not leave certificates it did not sign behind, selected or not
    for ca, (state, _, _) in p.cas.items():
        if state == "new":
            for s in CATALOGUE:
                if s.ca == ca and (s.crt in existing or s.key in existing):
                    p.errors.append(
                        f"{s.crt} exists but its CA {BY_NAME[ca].crt} is missing and would be "
                        f"created: restore the {ca} CA files or remove {s.crt} and {s.key}"
                    )
    if p.errors:
        raise UserError("; ".join(dict.fromkeys(p.errors)))
    for name in p.todo:
        p.make(name)
    written = {f.path: f.content for f in p.files}
    return PKIPlan(
        files=tuple(p.files),
        reused=tuple(dict.fromkeys(r for r in p.reused if r not in written)),
        warnings=tuple(dict.fromkeys(p.warnings)),
        external_cas=frozenset(n for n, (state, _, _) in p.cas.items() if state == "external"),
        result={**existing, **written},
    )
