"""A minimal Kubernetes REST client on the standard library (http.client + ssl).

    Client.from_kubeconfig(path, context=None, timeout=10) -> Client
    client.get(path) / list(path, label_selector=, field_selector=) / create(path, obj) /
        replace(path, obj) / delete(path) -> the parsed JSON answer
    namespaced(resource, namespace, name=None) -> "/api/v1/namespaces/<ns>/<resource>[/<name>]"
    ApiError          the server answered with an error (code, reason: NotFound, AlreadyExists, ...)
    Unreachable       no answer: refused, timed out, name not resolved, TLS failure

Only what kubeinit needs: JSON, one kept connection (optionally through a `dial`ed tunnel),
client-certificate or bearer-token credentials, verified TLS (a kubeconfig's: kube/access.py).
Each failure a user can cause is one sentence that names the server and the kubeconfig, and
says what to do.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from kubeinit.errors import KubeinitError, UserError
from kubeinit.kube import access
from kubeinit.kube.access import ADMIN_HINT

DEFAULT_TIMEOUT = 10.0


class Unreachable(KubeinitError):
    """No HTTP answer from the API server."""


class ApiError(KubeinitError):
    """An HTTP error answer; `reason` is the Status reason (NotFound, AlreadyExists, ...)."""

    def __init__(self, message: str, code: int, reason: str, detail: str = ""):
        super().__init__(message)
        self.code, self.reason, self.detail = code, reason, detail


def namespaced(resource: str, namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/{resource}"
    return f"{path}/{quote(name, safe='')}" if name else path


class Client:
    def __init__(
        self,
        server: str,
        tls: ssl.SSLContext,
        *,
        token: str | None = None,
        kubeconfig: str = "",
        user: str = "",
        ca_pem: bytes | None = None,
        client_cert: bool = False,
        dial=None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        url = urlsplit(server)
        if url.scheme != "https" or not url.hostname:
            raise UserError(
                f"{kubeconfig}: server {server!r} is not an https:// URL; kubeinit only talks TLS to the API server"
            )
        self.server = server.rstrip("/")
        self.host, self.port = url.hostname, url.port or 443
        self.netloc = url.netloc  # host:port as written, [brackets] kept for IPv6
        self.prefix = url.path.rstrip("/")  # an API server behind a path (a proxy)
        self.kubeconfig, self.user, self.ca_pem, self.timeout = kubeconfig, user, ca_pem, timeout
        self._tls, self._token = tls, token
        self.dial = dial  # () -> socket: connect through it instead of to the server's address
        self.client_cert = client_cert  # a client certificate is presented
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, path, context: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Client:
        path = Path(path)
        return cls._of(access.from_kubeconfig(access.read(path, "kubeconfig", "--kubeconfig"), path, context), timeout)

    @classmethod
    def from_kubeconfig_data(cls, data: bytes, origin: str, dial=None, timeout: float = DEFAULT_TIMEOUT) -> Client:
        """A kubeconfig read elsewhere (a control plane's admin.conf, over SSH); `dial()`, when
        given, returns the socket to speak TLS over (a tunnel to that host's API server): the
        server's certificate is still checked against the kubeconfig's CA and server name."""
        return cls._of(access.from_kubeconfig(data, Path(origin)), timeout, dial)

    @classmethod
    def _of(cls, a: access.Access, timeout: float, dial=None) -> Client:
        return cls(
            a.server,
            a.tls,
            token=a.token,
            kubeconfig=a.kubeconfig,
            user=a.user,
            ca_pem=a.ca_pem,
            client_cert=a.client_cert,
            dial=dial,
            timeout=timeout,
        )

    # --- verbs ---------------------------------------------------------------------------

    def get(self, path: str, query: dict | None = None) -> dict:
        return self.request("GET", path, query=query)

    def list(self, path: str, label_selector: str | None = None, field_selector: str | None = None) -> dict:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        return self.request("GET", path, query=query)

    def create(self, path: str, obj: dict) -> dict:
        return self.request("POST", path, body=obj)

    def replace(self, path: str, obj: dict) -> dict:
        return self.request("PUT", path, body=obj)

    def delete(self, path: str) -> dict:
        return self.request("DELETE", path)

    def get_text(self, path: str) -> str:
        """A plain-text endpoint (/readyz answers "ok"); an error answer raises as request() does."""
        code, phrase, raw = self._send("GET", path, None, None)
        if code < 400:
            return raw.decode(errors="replace")
        raise self._refusal("GET", path, code, phrase, raw)

    def request(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        return self._answer(method, path, *self._send(method, path, body, query))

    def _send(self, method: str, path: str, body: dict | None, query: dict | None) -> tuple[int, str, bytes]:
        from kubeinit import __version__

        url = self.prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": f"kubeinit/{__version__}"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        with self._lock:
            reused = self._conn is not None
            try:
                try:
                    return self._exchange(method, url, data, headers)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    self._drop()  # the server closed the idle connection it had kept: a new one, once
                    return self._exchange(method, url, data, headers)
            except ssl.SSLCertVerificationError as e:
                self._drop()
                raise Unreachable(
                    f"the API server {self.server} presented a certificate that the CA in "
                    f"{self.kubeconfig} does not vouch for ({e.verify_message}); is --kubeconfig "
                    "a kubeconfig of this cluster?"
                ) from None
            except ssl.SSLError as e:
                self._drop()
                raise self._tls_error(e) from None
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                raise Unreachable(
                    f"cannot reach the API server {self.server} ({self._why(e)}); is the control "
                    f"plane up? (--kubeconfig {self.kubeconfig})"
                ) from None

    def _exchange(self, method: str, url: str, data: bytes | None, headers: dict) -> tuple[int, str, bytes]:
        """One request on the kept connection (HTTP/1.1 keep-alive: over an SSH tunnel each new
        connection costs a channel and a TLS handshake), opened on first use."""
        if self._conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self._tls, timeout=self.timeout)
            if self.dial is not None:
                conn.sock = self._tunnel()
            self._conn = conn
        self._conn.request(method, url, body=data, headers=headers)
        resp = self._conn.getresponse()
        raw = resp.read()
        if resp.will_close:
            self._drop()
        return resp.status, resp.reason, raw

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _tunnel(self) -> ssl.SSLSocket:
        from kubeinit.connection import HostUnreachable

        try:
            raw = self.dial()
        except HostUnreachable as e:
            raise Unreachable(f"cannot reach the API server {self.server}: {e}; is the control plane up?") from None
        raw.settimeout(self.timeout)
        return self._tls.wrap_socket(raw, server_hostname=self.host)

    # --- errors --------------------------------------------------------------------------

    def _why(self, e: OSError | http.client.HTTPException) -> str:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, (TimeoutError, socket.timeout)):
            return f"no answer within {self.timeout:g}s"
        if isinstance(e, socket.gaierror):
            return f"cannot resolve {self.host}"
        if isinstance(e, http.client.RemoteDisconnected):
            return "the connection closed without an answer"
        if isinstance(e, http.client.HTTPException):
            return f"not an HTTP answer: {e.__class__.__name__}"
        return e.strerror or str(e) or e.__class__.__name__

    def _tls_error(self, e: ssl.SSLError) -> KubeinitError:
        reason = (e.reason or str(e)).lower()
        # the server turned our certificate down (TLS 1.3 reports it on the first read)
        if any(
            w in reason
            for w in (
                "certificate_required",
                "bad_certificate",
                "unknown_ca",
                "certificate_unknown",
                "decrypt_error",
                "access_denied",
            )
        ):
            return ApiError(
                f"the API server {self.server} rejected the client certificate of user "
                f"{self.user!r} in {self.kubeconfig} (TLS: {e.reason}); use a kubeconfig with "
                f"valid credentials for this cluster, {ADMIN_HINT}",
                401,
                "Unauthorized",
            )
        if isinstance(e, ssl.SSLEOFError) and self.client_cert:
            # a server that turns a certificate down may close before its alert is read
            return ApiError(
                f"the API server {self.server} closed the connection when shown the client "
                f"certificate of user {self.user!r} in {self.kubeconfig} (TLS: unexpected EOF): it "
                f"most likely rejected it; use a kubeconfig with valid credentials for this cluster, "
                f"{ADMIN_HINT}",
                401,
                "Unauthorized",
            )
        return Unreachable(
            f"TLS with the API server {self.server} failed ({e.reason or e}); is it an API "
            f"server, and is --kubeconfig {self.kubeconfig} for this cluster?"
        )

    def _answer(self, method: str, path: str, code: int, phrase: str, raw: bytes) -> dict:
        if code >= 400:
            raise self._refusal(method, path, code, phrase, raw)
        obj = _json(raw)
        if not isinstance(obj, dict):
            raise KubeinitError(
                f"the API server {self.server} answered {method} {path} with something that "
                f"is not a JSON object (HTTP {code}); is it an API server?"
            )
        return obj

    def _refusal(self, method: str, path: str, code: int, phrase: str, raw: bytes) -> ApiError:
        obj = _json(raw)
        status = obj if isinstance(obj, dict) and obj.get("kind") == "Status" else {}
        reason = status.get("reason") or phrase.replace(" ", "") or "Unknown"
        message = status.get("message") or (raw[:200].decode(errors="replace").strip() if obj is None else "")
        if code == 401:
            text = (
                f"the API server {self.server} rejected the credentials of user {self.user!r} in "
                f"{self.kubeconfig} (401 Unauthorized); use a kubeconfig with valid credentials for this "
                f"cluster, {ADMIN_HINT}"
            )
        elif code == 403:
            text = (
                f"user {self.user!r} of {self.kubeconfig} may not do this on {self.server} (403 Forbidden: "
                f"{message}); use a kubeconfig of a cluster admin, {ADMIN_HINT}"
            )
        else:
            text = f"the API server {self.server} refused {method} {path}: {message or phrase} ({code} {reason})"
        return ApiError(text, code, reason, message)


def _json(raw: bytes) -> object:
    """The parsed answer; {} for an empty one, None for one that is not JSON."""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None
