"""moto's threaded server as the AWS test double, plus a request log and injected faults.

moto has no fault injection, so a WSGI layer in front of its app answers
chosen requests with an AWS error in the service's own wire format.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import urllib.parse

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import eks_updates


class MotoDouble(ThreadedMotoServer):
    def __init__(self):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Action or "")
        self.faults: list[dict] = []

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def _server_entry(self) -> None:  # ThreadedMotoServer's, with our layer around the app
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, self._layer(app), True, request_handler=MotoRequestHandler
        )
        accept = self._server.get_request

        def get_request():  # werkzeug writes headers and body apart: without this, Nagle adds ~40 ms a request
            conn, addr = accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, addr

        self._server.get_request = get_request
        self._server_ready_event.set()
        self._server.serve_forever()

    def reset(self) -> None:
        """Forget the state tests make. /moto-api/reset re-initialises every backend ever used
        (IAM reloads ~1,000 managed policies, ~2 s, on every reset): instead drop the EC2 and
        EKS region backends (the server runs in this process) and delete IAM roles through the API."""
        import boto3
        from moto.core.base_backend import backend_lock
        from moto.ec2.models import ec2_backends
        from moto.eks.models import eks_backends

        with backend_lock:
            for backends in (ec2_backends, eks_backends):
                for account in backends.values():
                    for region in account.values():
                        region.reset()
        iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="reset",
            aws_secret_access_key="reset",
        )
        for role in iam.list_roles()["Roles"]:
            for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=p["PolicyArn"])
            iam.delete_role(RoleName=role["RoleName"])
        self.requests.clear()
        self.faults.clear()
        eks_updates.updates.clear()

    def fail_query(self, action: str, code: str, message: str, status: int = 400, xml: str = "ec2") -> None:
        """Fail the next EC2/IAM request with this Action (query protocol)."""
        self.faults.append({"action": action, "status": status, "code": code, "message": message, "xml": xml})

    def fail_rest(self, method: str, path_regex: str, code: str, message: str, status: int = 400) -> None:
        """Fail the next EKS (rest-json) request matching method and path."""
        self.faults.append(
            {"method": method, "re": re.compile(path_regex), "status": status, "code": code, "message": message}
        )

    def _layer(self, app):
        def wsgi(environ, start_response):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            if path.startswith("/moto-api"):
                return app(environ, start_response)
            params = dict(urllib.parse.parse_qsl(body.decode(errors="replace")))
            params.update(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
            action = params.get("Action", "")
            self.requests.append((method, path, action))
            for f in self.faults:
                hit = (f.get("action") == action and action) or (
                    "re" in f and f["method"] == method and f["re"].search(path)
                )
                if hit:
                    self.faults.remove(f)
                    return _error(f, start_response)
            done = eks_updates.handle(method, path, body, environ)  # what moto lacks for upgrade cluster
            if done is not None:
                return eks_updates.answer(done, start_response)
            refused = _eks_scaling(method, path, body)
            if refused:
                return _error(
                    {"re": None, "status": 400, "code": "InvalidParameterException", "message": refused}, start_response
                )
            return app(environ, start_response)

        return wsgi


def _eks_scaling(method: str, path: str, body: bytes) -> str | None:
    """What real EKS refuses and moto accepts: a scalingConfig whose desired size is outside
    [minSize, maxSize] (an update's missing sizes are the nodegroup's current ones), or maxSize < 1."""
    m = re.match(r"^/clusters/([^/]+)/node-groups(?:/([^/]+)/update-config)?$", path)
    if method != "POST" or not m or not body:
        return None
    cfg = json.loads(body).get("scalingConfig")
    if not cfg:
        return None
    if m.group(2):
        from moto.eks.models import eks_backends

        for account in eks_backends.values():
            for backend in account.values():
                ng = getattr(backend.clusters.get(m.group(1)), "nodegroups", {}).get(m.group(2))
                if ng is not None:
                    cfg = {**ng.scaling_config, **cfg}
    lo, hi, want = cfg.get("minSize"), cfg.get("maxSize"), cfg.get("desiredSize")
    if hi is not None and hi < 1:
        return "maxSize can't be lower than 1"
    if want is not None and hi is not None and want > hi:
        return f"desired capacity {want} can't be greater than max size {hi}"
    if want is not None and lo is not None and want < lo:
        return f"desired capacity {want} can't be lower than min size {lo}"
    if lo is not None and hi is not None and lo > hi:
        return f"min size {lo} can't be greater than max size {hi}"
    return None


def _error(f: dict, start_response):
    status = f"{f['status']} Error"
    if "re" in f:  # rest-json (EKS)
        body = json.dumps({"message": f["message"]}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", f["code"])]
    elif f["xml"] == "iam":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{f['code']}</Code><Message>{f['message']}"
            f"</Message></Error><RequestId>test-double</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = (
            f"<Response><Errors><Error><Code>{f['code']}</Code><Message>{f['message']}</Message></Error>"
            f"</Errors><RequestID>test-double</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    start_response(status, headers + [("Content-Length", str(len(body)))])
    return [body]
