"""An in-memory Kubernetes API server TEST DOUBLE for unit tests. It is not kube-apiserver and
nothing in kubeinit/ uses it; it stands in for one because no real API server can run here.

HTTPS on 127.0.0.1 (a random port) with a serving certificate for 127.0.0.1 signed by a test
cluster CA. Clients authenticate as kube-apiserver's x509 authenticator does: a client
certificate signed by that CA (CN = user, O = groups), so a kubeconfig made by kubeinit's own
code works; or a bearer token from `tokens` (or one `review(token)` vouches for, as a webhook
token authenticator does: EKS's, GKE's). Authorisation is kube-apiserver's: the group
system:masters may do anything without RBAC; everyone else (kubeadm:cluster-admins too) only what
the stored ClusterRoleBindings and RoleBindings grant through the roles they name (verbs, API
groups, resources, resourceNames, '*'); a binding is honoured `binding_delay` seconds after it is
written, as the real authorizer's cache lags. The server's RBAC bootstrap is done: the ClusterRole
cluster-admin exists (and only it of the default roles). An anonymous request RBAC does not allow gets 401.

Enough of the protocol for kubeinit's client and the real kubectl (`kubectl get secrets|configmaps`):
    /version, /api, /api/v1 (APIResourceList), /apis (no groups), /api/v1/namespaces[/<ns>]
    secrets and configmaps, namespaced or across namespaces: GET item and list (fieldSelector
    type=, metadata.name=, metadata.namespace=; labelSelector k=v, k!=v, k, !k), POST, PUT, DELETE;
    the server sets uid, resourceVersion and creationTimestamp
    errors are Status objects: 400 BadRequest, 401 Unauthorized, 403 Forbidden, 404 NotFound,
    405 MethodNotAllowed, 409 AlreadyExists / Conflict, 422 Invalid

    nodes (cluster-scoped; a test adds one as a kubelet would register it), pods (fieldSelector
    spec.nodeName=, status.phase=; graceful deletion and the pods/eviction subresource with
    PodDisruptionBudgets: apiserver_pods.py), services,
    serviceaccounts, apps/v1 deployments and daemonsets (stored as given: no controller runs them),
    policy/v1 poddisruptionbudgets, apiextensions.k8s.io/v1 customresourcedefinitions (checked as
    kube-apiserver checks them: name <plural>.<group>, a dotted group, scope, exactly one storage
    version, each with a schema of type object, the approval annotation on *.k8s.io and
    *.kubernetes.io groups; the server sets status: Established; no custom resources are served)
    rbac.authorization.k8s.io/v1 roles and rolebindings (namespaced), clusterroles and
    clusterrolebindings: the same verbs (not in discovery: kubectl cannot list them here)
    /readyz: "ok" (text/plain)
    starting(forbidden, unready): answers as a kube-apiserver still starting (403, then /readyz 500);
    the port is bound from the start but refuses connections until start()

Not there: watch, PATCH, pagination (limit is ignored), other resources. One known difference:
a client certificate from another CA fails the TLS handshake here (Python's ssl cannot defer
the check), where kube-apiserver would answer 401; a request with no credentials gets 401.

    make_cluster(root) -> Cluster     a PKI and kubeconfigs in root (kubeinit's own code), the double started
    cluster                              the pytest fixture: make_cluster(tmp_path), stopped afterwards
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import apiserver_pods as pods
import pytest

SUPERUSERS = "system:masters"  # the one group kube-apiserver authorizes without RBAC
CLUSTER_ADMIN = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {
        "name": "cluster-admin",
        "namespace": "",
        "uid": "cluster-admin-uid",
        "resourceVersion": "1",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
    },
    "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
}
NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# resource -> (group/version, kind, namespaced)
RESOURCES = {
    "secrets": ("v1", "Secret", True),
    "configmaps": ("v1", "ConfigMap", True),
    "nodes": ("v1", "Node", False),
    "pods": ("v1", "Pod", True),
    "services": ("v1", "Service", True),
    "serviceaccounts": ("v1", "ServiceAccount", True),
    "deployments": ("apps/v1", "Deployment", True),
    "daemonsets": ("apps/v1", "DaemonSet", True),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", True),
    "customresourcedefinitions": ("apiextensions.k8s.io/v1", "CustomResourceDefinition", False),
    **{
        r: ("rbac.authorization.k8s.io/v1", k, r.startswith("role"))
        for r, k in (
            ("roles", "Role"),
            ("rolebindings", "RoleBinding"),
            ("clusterroles", "ClusterRole"),
            ("clusterrolebindings", "ClusterRoleBinding"),
        )
    },
}
KINDS = {r: k for r, (_, k, _) in RESOURCES.items()}
GROUP_VERSION = {r: gv for r, (gv, _, _) in RESOURCES.items()}
CLUSTER_SCOPED = {r for r, (_, _, namespaced) in RESOURCES.items() if not namespaced}
RBAC = "rbac.authorization.k8s.io/v1"
FIELDS = {r: ("metadata.name", "metadata.namespace", *(("type",) if r == "secrets" else ())) for r in RESOURCES}
FIELDS["pods"] += ("spec.nodeName", "status.phase")
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RBAC_NAME = re.compile(r"[^/%]+")  # RBAC objects allow ':' in names (kubeadm:get-nodes)
_ITEM = re.compile(
    r"/(?:api/(?P<core>v1)|apis/(?P<gv>[^/]+/[^/]+))/(?:namespaces/(?P<ns>[^/]+)/)?"
    r"(?P<res>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?"
)


class Fail(Exception):
    """An error answer: (code, reason, message, details)."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        obj["details"] = details
    return obj


class ApiServerDouble:
    def __init__(self, tokens: dict[str, tuple[str, tuple[str, ...]]] | None = None, binding_delay: float = 0.0):
        self.tokens = tokens or {}  # bearer token -> (user, groups)
        # a webhook token authenticator (EKS's aws-iam-authenticator, GKE's): token -> (user, groups) or None
        self.review = None
        self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, namespace, name) -> object
        self.objects[("clusterroles", "", "cluster-admin")] = json.loads(json.dumps(CLUSTER_ADMIN))
        self.binding_delay = binding_delay
        self._honoured: dict[tuple[str, str, str], float] = {}  # binding -> when the authorizer sees it
        self.requests: list[tuple[str, str, str]] = []  # (method, path with query, user)
        self.connections = 0  # TLS connections accepted
        self._rv = 100
        self._lock = threading.Lock()
        self._boot: list[str] = []  # see starting()
        # bound now, so that certificates and kubeconfigs can name the port before start(); not
        # listening until start(): a connection before it is refused, as by a server not yet up
        self._http = _TLSServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self._http.server_bind()
        self._http.api = self
        self.port = self._http.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self, ca_pem: bytes, cert_file: Path, key_file: Path) -> ApiServerDouble:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert_file, key_file)
        tls.load_verify_locations(cadata=ca_pem.decode())
        tls.verify_mode = ssl.CERT_OPTIONAL  # no certificate is allowed through to a 401, as anonymous
        self._http.tls = tls
        self._http.server_activate()
        # a short poll: stop() (each test's teardown) waits up to one interval
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def starting(self, forbidden: int, unready: int) -> None:
        """Answer as a kube-apiserver that is still starting: before its RBAC bootstrap roles
        exist, every request of a user outside system:masters gets 403 and /readyz 500 for
        the others; then /readyz answers 500 (post-start hooks not done). Each phase lasts
        for that many /readyz requests. Never more permissive than serving normally."""
        self._boot = ["forbidden"] * forbidden + ["unready"] * unready

    def stop(self) -> None:
        if self._thread:
            self._http.shutdown()
        self._http.server_close()

    # --- what a request does (no HTTP in here) --------------------------------------------

    def handle(self, method: str, target: str, body: bytes, identity: tuple[str, tuple[str, ...]] | None):
        """-> (HTTP code, JSON object)"""
        url = urlsplit(target)
        self.requests.append((method, target, identity[0] if identity else ""))
        try:
            if identity is None and not (method == "GET" and self._anonymous_may_get(url.path)):
                raise Fail(401, "Unauthorized", "Unauthorized")
            identity = identity or ("system:anonymous", ("system:unauthenticated",))
            with self._lock:
                if self._boot and (answer := self._booting(method, url.path, identity)):
                    return answer
                return self._route(method, url.path.rstrip("/") or "/", parse_qs(url.query), body, identity)
        except Fail as f:
            return f.code, status(f.code, f.reason, f.message, f.details)

    def _route(self, method, path, query, body, identity):
        if path == "/readyz" and method == "GET":
            return 200, "ok"  # the real one answers text/plain "ok"
        discovery = {"/version": self._version, "/api": self._api, "/apis": self._apis, "/api/v1": self._v1}
        item = _ITEM.fullmatch(path)
        if path in discovery or (path.startswith("/api/v1/namespaces") and not (item and item["res"] in RESOURCES)):
            if method != "GET":
                raise Fail(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
            if path in discovery:
                return 200, discovery[path]()
            parts = path.split("/")
            self._authorize(identity, "list" if len(parts) == 4 else "get", "namespaces", "", "/".join(parts[4:]))
            return 200, self._namespaces(path)
        m = _ITEM.fullmatch(path)
        if not m:
            raise Fail(404, "NotFound", "the server could not find the requested resource")
        res, ns, name = m["res"], unquote(m["ns"] or ""), unquote(m["name"] or "")
        if res not in RESOURCES or (m["core"] or m["gv"]) != GROUP_VERSION[res] or (ns and res in CLUSTER_SCOPED):
            raise Fail(404, "NotFound", "the server could not find the requested resource")
        if m["sub"]:  # the one subresource served: a pod's eviction
            if (res, m["sub"]) != ("pods", "eviction"):
                raise Fail(404, "NotFound", "the server could not find the requested resource")
            if method != "POST":
                raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            self._authorize(identity, "create", "pods/eviction", ns, name)
            if ns not in NAMESPACES:
                raise Fail(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            return 201, pods.evict(self, ns, name, body)
        if method == "GET":
            verb = "get" if name else "list"
        elif (ns or res in CLUSTER_SCOPED) and (method, bool(name)) in (
            ("POST", False),
            ("PUT", True),
            ("DELETE", True),
        ):
            verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}[method]
        else:
            raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        self._authorize(identity, verb, res, ns, name)
        if ns and ns not in NAMESPACES:
            raise Fail(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if verb == "list":
            return 200, self._list(res, ns, query)
        if verb == "get":
            return 200, self._get(res, ns, name)
        if verb == "delete" and res == "pods":
            return 200, pods.delete(self, ns, name)
        if verb == "delete":
            obj = self._get(res, ns, name)
            del self.objects[(res, ns, name)]
            return 200, {**status(200, "", ""), "details": {"name": name, "kind": res, "uid": obj["metadata"]["uid"]}}
        obj = self._decode(res, ns, name, body)
        if verb == "create" and res == "pods":
            obj = pods.created(obj)
        return (201, self._create(res, ns, obj)) if verb == "create" else (200, self._update(res, ns, name, obj))

    def _booting(self, method: str, path: str, identity) -> tuple[int, str] | None:
        state = self._boot[0]
        if path == "/readyz":
            self._boot.pop(0)
        if state == "forbidden" and "system:masters" not in identity[1]:
            raise Fail(403, "Forbidden", f'forbidden: User "{identity[0]}" cannot {method.lower()} path "{path}"')
        if path == "/readyz":  # text/plain, as the real one lists its checks
            return 500, (
                "[+]ping ok\n[+]etcd ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n"
                "readyz check failed\n"
            )
        return None

    def _anonymous_may_get(self, path: str) -> bool:
        """Whether RBAC lets the anonymous user get this object (kubeadm grants it cluster-info)."""
        m = _ITEM.fullmatch(path)
        if not (m and m["name"] and m["res"] in RESOURCES):
            return False
        with self._lock:
            return self.allowed(
                ("system:anonymous", ("system:unauthenticated",)),
                "get",
                m["res"],
                unquote(m["ns"] or ""),
                unquote(m["name"]),
            )

    def _authorize(self, identity, verb, res, ns, name=""):
        if not self.allowed(identity, verb, res, ns, name):
            group = GROUP_VERSION.get(res, "v1").rpartition("/")[0]
            where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            raise Fail(
                403,
                "Forbidden",
                f'{res} is forbidden: User "{identity[0]}" cannot {verb} resource "{res}" in '
                f'API group "{group}"{where}',
                {"kind": res},
            )

    def allowed(self, identity, verb: str, res: str, ns: str, name: str = "") -> bool:
        """kube-apiserver's RBAC authorizer (plus its system:masters superuser), for resource requests."""
        user, groups = identity
        if SUPERUSERS in groups:
            return True
        group = GROUP_VERSION.get(res, "v1").rpartition("/")[0]
        now = time.monotonic()

        def subject(s: dict) -> bool:
            return (s.get("kind") == "User" and s.get("name") == user) or (
                s.get("kind") == "Group" and s.get("name") in groups
            )

        def grants(role: dict | None) -> bool:
            return any(
                (rule.get("verbs") or [])
                and _any(rule.get("verbs"), verb)
                and _any(rule.get("apiGroups"), group)
                and _any(rule.get("resources"), res)
                and (not rule.get("resourceNames") or (name and name in rule["resourceNames"]))
                for rule in (role or {}).get("rules") or []
            )

        for (r, o_ns, o_name), b in list(self.objects.items()):
            if r not in ("clusterrolebindings", "rolebindings") or (r == "rolebindings" and (not ns or o_ns != ns)):
                continue
            if now < self._honoured.get((r, o_ns, o_name), 0) or not any(map(subject, b.get("subjects") or [])):
                continue
            ref = b.get("roleRef") or {}
            role = (
                self.objects.get(("clusterroles", "", ref.get("name")))
                if ref.get("kind") == "ClusterRole"
                else self.objects.get(("roles", o_ns, ref.get("name")))
            )
            if grants(role):
                return True
        return False

    # --- discovery ------------------------------------------------------------------------

    def _version(self):
        return {"major": "1", "minor": "34", "gitVersion": "v1.34.0-test-double", "platform": "linux/amd64"}

    def _api(self):
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}],
        }

    def _apis(self):
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}

    def _v1(self):
        crud = ["create", "delete", "get", "list", "update"]
        resources = [
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["get", "list"],
                "shortNames": ["ns"],
            }
        ]
        resources += [
            {
                "name": r,
                "singularName": r[:-1],
                "namespaced": r not in CLUSTER_SCOPED,
                "kind": k,
                "verbs": crud,
                **({"shortNames": ["cm"]} if r == "configmaps" else {}),
            }
            for r, k in KINDS.items()
            if GROUP_VERSION[r] == "v1"
        ]
        # the Eviction subresource names its group version (kubectl's CheckEvictionSupport reads it)
        eviction = {"name": "pods/eviction", "singularName": "", "namespaced": True, "kind": "Eviction"}
        resources.append({**eviction, "group": "policy", "version": "v1", "verbs": ["create"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources}

    def _namespaces(self, path):
        def ns(name):
            return {
                "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "resourceVersion": "1"},
                "status": {"phase": "Active"},
            }

        parts = path.split("/")
        if len(parts) == 4:  # /api/v1/namespaces
            return {
                "kind": "NamespaceList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": [ns(n) for n in NAMESPACES],
            }
        if len(parts) == 5 and parts[4] in NAMESPACES:
            return {"kind": "Namespace", "apiVersion": "v1", **ns(parts[4])}
        raise Fail(
            404,
            "NotFound",
            f'namespaces "{parts[4]}" not found'
            if len(parts) == 5
            else "the server could not find the requested resource",
        )

    # --- objects --------------------------------------------------------------------------

    def _get(self, res, ns, name):
        obj = self.objects.get((res, ns, name))
        if obj is None:
            raise Fail(404, "NotFound", f'{res} "{name}" not found', {"name": name, "kind": res})
        return obj

    def _list(self, res, ns, query):
        fields = _selector(query.get("fieldSelector", [""])[0], "field")
        labels = _selector(query.get("labelSelector", [""])[0], "label")
        for key, _, _ in fields:
            if key not in FIELDS[res]:
                raise Fail(400, "BadRequest", f"field label not supported: {key}")
        items = []
        for (r, o_ns, _), obj in sorted(self.objects.items()):
            if r != res or (ns and o_ns != ns):
                continue
            flat = {
                "metadata.name": obj["metadata"]["name"],
                "metadata.namespace": o_ns,
                "type": obj.get("type"),
                "spec.nodeName": (obj.get("spec") or {}).get("nodeName", ""),
                "status.phase": (obj.get("status") or {}).get("phase", ""),
            }
            if _matches(fields, flat) and _matches(labels, obj["metadata"].get("labels") or {}):
                items.append({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})  # as lists carry them
        return {
            "kind": KINDS[res] + "List",
            "apiVersion": GROUP_VERSION[res],
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _decode(self, res, ns, name, body) -> dict:
        try:
            obj = json.loads(body or b"null")
        except ValueError as e:
            raise Fail(400, "BadRequest", f"the body is not JSON: {e}") from None
        if not isinstance(obj, dict) or obj.get("kind") != KINDS[res] or obj.get("apiVersion") != GROUP_VERSION[res]:
            raise Fail(400, "BadRequest", f"the object is not a {GROUP_VERSION[res]} {KINDS[res]}")
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise Fail(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        meta["namespace"] = ns
        if name and meta.get("name") != name:
            raise Fail(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})",
            )
        new = meta.get("name") or ""
        valid = _RBAC_NAME if GROUP_VERSION[res] == RBAC else _DNS1123
        if not (len(new) <= 253 and valid.fullmatch(new)):
            kind = KINDS[res]
            why = (
                "name or generateName is required"
                if not new
                else "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            )
            raise Fail(
                422,
                "Invalid",
                f'{kind} "{new}" is invalid: metadata.name: Invalid value: "{new}": {why}',
                {
                    "name": new,
                    "kind": res,
                    "causes": [{"reason": "FieldValueInvalid", "message": why, "field": "metadata.name"}],
                },
            )
        if res == "customresourcedefinitions":
            _check_crd(obj)
        if res == "secrets":
            data = obj.get("data") or {}
            for k, v in data.items():
                try:
                    base64.b64decode(v, validate=True)
                except (binascii.Error, TypeError, ValueError):
                    raise Fail(
                        400,
                        "BadRequest",
                        f'Secret in version "v1" cannot be handled as a Secret: data[{k}] is not base64',
                    ) from None
            for k, v in (obj.pop("stringData", None) or {}).items():  # the server folds stringData into data
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
        return obj

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _create(self, res, ns, obj):
        name = obj["metadata"]["name"]
        if (res, ns, name) in self.objects:
            raise Fail(409, "AlreadyExists", f'{res} "{name}" already exists', {"name": name, "kind": res})
        obj["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_rv(),
            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.objects[(res, ns, name)] = obj
        self._written(res, ns, name)
        return obj

    def _written(self, res, ns, name):
        if res.endswith("bindings"):
            self._honoured[(res, ns, name)] = time.monotonic() + self.binding_delay

    def _update(self, res, ns, name, obj):
        old = self._get(res, ns, name)
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise Fail(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": name, "kind": res},
            )
        obj["metadata"].update(
            uid=old["metadata"]["uid"],
            creationTimestamp=old["metadata"]["creationTimestamp"],
            resourceVersion=self._next_rv(),
        )
        self.objects[(res, ns, name)] = obj
        self._written(res, ns, name)
        return obj

    def secret_data(self, name: str, namespace: str = "kube-system") -> dict[str, str]:
        """A stored Secret's data, base64-decoded (for assertions)."""
        obj = self.objects[("secrets", namespace, name)]
        return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def _check_crd(obj: dict) -> None:
    """kube-apiserver's validation of a CustomResourceDefinition (the parts a manifest can get
    wrong), as 422 Invalid; then the status it sets once the names are accepted."""
    spec, meta = obj.get("spec") or {}, obj["metadata"]
    group, names = spec.get("group") or "", spec.get("names") or {}
    causes = []
    if meta["name"] != f"{names.get('plural')}.{group}":
        causes.append(("metadata.name", 'must be spec.names.plural+"."+spec.group'))
    if "." not in group:
        causes.append(("spec.group", "should be a domain with at least one dot"))
    if re.search(r"(^|\.)(k8s|kubernetes)\.io$", group) and not (meta.get("annotations") or {}).get(
        "api-approved.kubernetes.io"
    ):
        causes.append(
            (
                "metadata.annotations[api-approved.kubernetes.io]",
                'protected groups must have approval annotation "api-approved.kubernetes.io"',
            )
        )
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append((f"spec.names.{key}", "Required value"))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        causes.append(("spec.scope", 'Unsupported value: supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if sum(bool(v.get("storage")) for v in versions) != 1:
        causes.append(("spec.versions", "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if not schema:
            causes.append((f"spec.versions[{i}].schema.openAPIV3Schema", "Required value: schemas are required"))
        elif schema.get("type") != "object":
            causes.append((f"spec.versions[{i}].schema.openAPIV3Schema.type", "must be object at the root"))
    if causes:
        raise Fail(
            422,
            "Invalid",
            f'CustomResourceDefinition.apiextensions.k8s.io "{meta["name"]}" is invalid: '
            + ", ".join(f"{f}: {m}" for f, m in causes),
            {
                "name": meta["name"],
                "group": "apiextensions.k8s.io",
                "kind": "CustomResourceDefinition",
                "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
            },
        )
    obj["status"] = {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
        ],
        "storedVersions": [v["name"] for v in versions if v.get("storage")],
    }


def _selector(text: str, kind: str) -> list[tuple[str, str, str | None]]:
    """'a=b,c!=d,e,!f' -> [(key, op, value)]; ops '=', '!=', 'exists', '!exists' (the last two for labels)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", part)
        if m:
            out.append((m[1], "!=" if m[2] == "!=" else "=", m[3]))
        elif kind == "label" and re.fullmatch(r"!?[A-Za-z0-9._/-]+", part):
            out.append((part.lstrip("!"), "!exists" if part.startswith("!") else "exists", None))
        else:
            raise Fail(
                400,
                "BadRequest",
                f"unable to parse requirement: {part!r} (the test double knows =, ==, != and, for labels, k and !k)",
            )
    return out


def _any(allowed, value: str) -> bool:
    """An RBAC rule's list: the value itself, or '*'."""
    return bool(allowed) and ("*" in allowed or value in allowed)


def _matches(reqs, values: dict) -> bool:
    for key, op, want in reqs:
        have = values.get(key)
        ok = {"=": have == want, "!=": have != want, "exists": key in values, "!exists": key not in values}[op]
        if not ok:
            return False
    return True


# --- HTTP ---------------------------------------------------------------------------------


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    api: ApiServerDouble
    tls: ssl.SSLContext

    def finish_request(self, request, client_address):
        # the handshake runs in the request's own thread, so one bad client cannot stall the others
        request.settimeout(10)
        # headers and body are two writes: without this each answer waits for the client's
        # delayed ACK (40 ms), which kube-apiserver (Go sets TCP_NODELAY) never makes anyone wait
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # e.g. a client certificate from another CA: the handshake failed, the client was told
        self.api.connections += 1
        self.RequestHandlerClass(conn, client_address, self)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-request is not the double's problem


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as kubectl expects
    server: _TLSServer

    def log_message(self, *args):
        pass

    def _serve(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        code, obj = self.server.api.handle(self.command, self.path, body, self._identity())
        text = isinstance(obj, str)
        data = obj.encode() if text else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _identity(self) -> tuple[str, tuple[str, ...]] | None:
        cert = self.connection.getpeercert()  # only a certificate that chains to the cluster CA gets here
        if cert:
            rdns = [attr for rdn in cert.get("subject", ()) for attr in rdn]
            return (
                next((v for k, v in rdns if k == "commonName"), ""),
                tuple(v for k, v in rdns if k == "organizationName"),
            )
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token, api = auth[len("Bearer ") :], self.server.api
            return api.tokens.get(token) or (api.review(token) if api.review else None)
        return None


# --- a cluster to talk to --------------------------------------------------------------------


@dataclass
class Cluster:
    api: ApiServerDouble
    root: Path
    ca_pem: bytes

    @property
    def admin_conf(self) -> Path:
        return self.root / "admin.conf"

    def kubeconfig(self, name: str) -> Path:
        return self.root / name

    def start(self) -> None:
        self.api.start(self.ca_pem, self.root / "pki" / "apiserver.crt", self.root / "pki" / "apiserver.key")


def make_cluster(
    root: Path, tokens: dict | None = None, start: bool = True, admins_bound: bool = True, binding_delay: float = 0.0
) -> Cluster:
    """ca.crt/key and apiserver.crt/key under root/pki, admin.conf, super-admin.conf and scheduler.conf
    (a user without admin rights) in root, all made by kubeinit's own PKI and kubeconfig code; the
    double started (with start=False: cluster.start() later; until then connections are refused).
    admins_bound: the ClusterRoleBinding kubeadm:cluster-admins is there, as init leaves a cluster;
    without it admin.conf may do nothing, as before init's API phases."""
    from kubeinit.certs.catalogue import PKIConfig
    from kubeinit.certs.kubeconfig import plan_kubeconfigs
    from kubeinit.certs.pki import plan_pki

    api = ApiServerDouble(tokens, binding_delay=binding_delay)
    if admins_bound:
        api.objects[("clusterrolebindings", "", "kubeadm:cluster-admins")] = {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": "kubeadm:cluster-admins",
                "namespace": "",
                "uid": "admins-uid",
                "resourceVersion": "2",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}],
        }
    cfg = PKIConfig(node_name="cp-1", advertise_address="127.0.0.1", bind_port=api.port, algorithm="ECDSA-P256")
    pki = plan_pki(cfg, {}, only=["ca", "apiserver"])
    kcs = plan_kubeconfigs(
        cfg, pki.result["ca.crt"], pki.result["ca.key"], {}, only=["admin.conf", "super-admin.conf", "scheduler.conf"]
    )
    for sub, plan in (("pki", pki), ("", kcs)):
        for f in plan.files:
            p = root / sub / f.path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f.content)
            p.chmod(f.mode)
    c = Cluster(api, root, pki.result["ca.crt"])
    if start:
        c.start()
    return c


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path / "cluster")
    yield c
    c.api.stop()
