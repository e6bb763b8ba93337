"""A kubeconfig read into what a Client needs to reach its API server: the server, a TLS
context that verifies the server against the kubeconfig's CA and holds the client certificate
(loaded from memory, never a file on disk), and a bearer token. Only client certificates and
tokens: exec plugins, auth providers, basic auth and insecure-skip-tls-verify are refused.

    read(path, what, flag) -> bytes            a kubeconfig or a file it names, errors naming `flag`
    from_kubeconfig(text, path, context=None) -> Access
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubeinit import redact
from kubeinit.errors import UserError

ADMIN_HINT = "e.g. /etc/kubernetes/admin.conf on a control-plane node"


@dataclass(frozen=True)
class Access:
    server: str
    tls: ssl.SSLContext
    token: str | None
    kubeconfig: str  # where it came from, for errors
    user: str
    ca_pem: bytes | None
    client_cert: bool  # a client certificate is presented


def read(path: Path, what: str, flag: str) -> bytes:
    """A kubeconfig (or a file it names): `what` and `flag` say which, in errors."""
    from kubeinit import userfile

    try:
        return userfile.read(path, what, userfile.KUBECONFIG_LIMIT, f"pass {flag} with the right file")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist; pass {flag} with the right path") from None
    except PermissionError:
        raise UserError(
            f"cannot read {what} {path} (permission denied); run as root (sudo) or pass {flag} with a file you can read"
        ) from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path} ({e.strerror}); pass {flag} with the right file") from None


def _data_or_file(section: dict, key: str, base: Path, path: Path) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a file, relative to the kubeconfig's directory)."""
    if section.get(f"{key}-data"):
        try:
            return base64.b64decode(section[f"{key}-data"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise UserError(f"kubeconfig {path}: {key}-data is not valid base64") from None
    if section.get(key):
        return read(base / str(section[key]), f"{key} file (from kubeconfig {path})", "--kubeconfig")
    return None


def from_kubeconfig(text: bytes, path: Path, context: str | None = None) -> Access:
    """What the kubeconfig `text` (read from `path`: relative files are beside it) gives a Client,
    for `context` (default: the current one)."""
    from kubeinit import kubeconfig

    what = f"kubeconfig {path}"
    chosen = kubeconfig.current(kubeconfig.load(text, what), what, context)
    cluster, user, user_name = chosen.cluster, chosen.user, chosen.user_name
    server = cluster.get("server") or ""
    if not server:
        raise UserError(f"kubeconfig {path}: cluster {chosen.cluster_name!r} has no server")
    base = path.parent

    unsupported = [k for k in ("exec", "auth-provider", "username", "password") if user.get(k)]
    if unsupported:
        raise UserError(
            f"kubeconfig {path}: user {user_name!r} authenticates with {unsupported[0]!r}, which "
            "kubeinit does not support; use a kubeconfig with a client certificate or a token, "
            f"{ADMIN_HINT}"
        )

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca_pem = _data_or_file(cluster, "certificate-authority", base, path)
    if cluster.get("insecure-skip-tls-verify") is True:
        # kubeinit sends admin credentials: never to a server whose identity it cannot check
        raise UserError(
            f"kubeconfig {path}: cluster {chosen.cluster_name!r} sets insecure-skip-tls-verify, and "
            "kubeinit does not send credentials to an API server it cannot verify; give the cluster's "
            f"CA (certificate-authority-data) instead, {ADMIN_HINT}"
        )
    if ca_pem:
        try:
            tls.load_verify_locations(cadata=ca_pem.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError):
            raise UserError(
                f"kubeconfig {path}: the cluster's certificate authority is not a PEM certificate"
            ) from None
    else:
        tls.load_default_certs()  # no CA given: the system's, as kubectl does

    cert = _data_or_file(user, "client-certificate", base, path)
    key = _data_or_file(user, "client-key", base, path)
    if bool(cert) != bool(key):
        raise UserError(
            f"kubeconfig {path}: user {user_name!r} has a client "
            f"{'certificate without its key' if cert else 'key without its certificate'}"
        )
    if cert and key:
        redact.register(key)
        _load_client_cert(tls, cert, key, f"kubeconfig {path}, user {user_name!r}")

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (
            read(base / str(user["tokenFile"]), f"tokenFile (from kubeconfig {path})", "--kubeconfig").decode().strip()
        )
    if token:
        redact.register(token)
    return Access(server, tls, token or None, str(path), user_name, ca_pem, bool(cert))


def _load_client_cert(tls: ssl.SSLContext, cert: bytes, key: bytes, what: str) -> None:
    """ssl loads a certificate and key only from a file: an anonymous memory file (memfd), named
    by /proc/self/fd, holds them; it never touches a disk and is gone with its descriptor, however
    kubeinit ends. Without memfd, a private temp directory (0700, files 0600) removed at once."""
    try:
        fd = os.memfd_create("kubeinit-client", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux, or a sandbox that forbids it
        fd = None
    try:
        if fd is not None:
            view = memoryview(cert + b"\n" + key)
            while view:
                view = view[os.write(fd, view) :]
            tls.load_cert_chain(f"/proc/self/fd/{fd}")  # the key is read from the same file
        else:
            _load_client_cert_from_files(tls, cert, key)
    except ssl.SSLError as e:
        raise UserError(
            f"{what}: the client certificate and key cannot be used ({e.reason or 'not PEM'}); "
            "are they a matching PEM pair?"
        ) from None
    finally:
        if fd is not None:
            os.close(fd)


def _load_client_cert_from_files(tls: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    tmp = tempfile.mkdtemp(prefix="kubeinit-client-")
    try:
        paths = []
        for name, data in (("client.crt", cert), ("client.key", key)):
            p = os.path.join(tmp, name)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(p)
        tls.load_cert_chain(*paths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
