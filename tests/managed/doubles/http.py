"""A small threaded JSON HTTP(S) server that the GKE and ARM doubles build on."""

from __future__ import annotations

import json
import re
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Reply:
    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class JsonApiDouble:
    """Subclasses implement route(method, path, query, headers, body) -> Reply."""

    def __init__(self, tls: dict | None = None):
        self.tls = tls
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request seen
        self.faults: list[dict] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, method: str, path_regex: str, reply: Reply, times: int = 1) -> None:
        """Answer the next `times` matching requests with `reply` instead of handling them."""
        self.faults.append({"method": method, "re": re.compile(path_regex), "reply": reply, "left": times})

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()

    def start(self) -> JsonApiDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                parsed = urllib.parse.urlsplit(self.path)
                path = urllib.parse.unquote(parsed.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype and raw:
                    body = json.loads(raw)
                elif "x-www-form-urlencoded" in ctype:
                    body = dict(urllib.parse.parse_qsl(raw.decode()))
                else:
                    body = None
                with double.lock:
                    double.requests.append((self.command, path))
                    reply = double._fault(self.command, path) or double.route(
                        self.command, path, query, self.headers, body
                    )
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if data or self.command != "HEAD":
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls["cert"], self.tls["key"])
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _fault(self, method: str, path: str) -> Reply | None:
        for f in self.faults:
            if f["left"] and f["method"] == method and f["re"].search(path):
                f["left"] -= 1
                return f["reply"]
        return None

    def route(self, method: str, path: str, query: dict, headers, body) -> Reply:
        raise NotImplementedError
