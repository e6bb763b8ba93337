"""`kubeinit certs check-expiration` and `certs renew`, on this host's files."""

from __future__ import annotations

from pathlib import Path

from kubeinit import ui


def check_expiration(cert_dir: Path, kubeconfig_dir: Path, output: str) -> None:
    from kubeinit.certs.expiration import check_expiration as rows_for
    from kubeinit.errors import UserError

    if not Path(cert_dir).is_dir():
        raise UserError(f"--cert-dir {cert_dir} does not exist; pass the directory that holds the PKI")
    rows = rows_for(cert_dir, kubeconfig_dir)
    leaves = [r for r in rows if not r.is_ca]
    cas = [r for r in rows if r.is_ca]
    if output == "json":
        ui.print_json(
            {
                "certificates": [_json(r) for r in leaves],
                "certificateAuthorities": [_json(r) for r in cas],
            }
        )
        return
    stamp = "%b %d, %Y %H:%M UTC"
    ui.table(
        ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
        [(r.name, r.expires.strftime(stamp), r.residual_text, r.ca_name, _yes(r.externally_managed)) for r in leaves],
    )
    ui.out()
    ui.table(
        ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
        [(r.name, r.expires.strftime(stamp), r.residual_text, _yes(r.externally_managed)) for r in cas],
    )


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def _json(r) -> dict:
    return {
        "name": r.name,
        "path": str(r.path),
        "expirationDate": r.expires.isoformat(),
        "residualTime": r.residual_text,
        "residualSeconds": int(r.residual.total_seconds()),
        "certificateAuthority": r.ca_name or None,
        "externallyManaged": r.externally_managed,
    }


def renew(cert_dir: Path, kubeconfig_dir: Path, name: str) -> None:
    from kubeinit.certs.expiration import renew as renew_files
    from kubeinit.connection import LocalConnection

    writes = renew_files(cert_dir, kubeconfig_dir, name if name == "all" else [name])
    conn = LocalConnection()
    for path, (data, mode) in writes.items():
        conn.put(str(path), data, mode)
        ui.ok(f"renewed {path}")
    ui.info(
        "Restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the "
        "new certificates."
    )
