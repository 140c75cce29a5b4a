"""A fake Google Compute Engine API for tests: an HTTP server on 127.0.0.1 in a thread.

It serves the routes the REAL google-cloud-compute client calls for network endpoint groups
(attach/detach/list endpoints, operations get/wait) and the instances aggregated list, checks each
request's Bearer JWT against the test key's public half, records every call, and injects faults.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

PROJECT = "test-project"
_NEG_ROUTE = re.compile(
    r"^/compute/v1/projects/(?P<project>[^/]+)/(?P<scope>global|regions/[^/]+|zones/[^/]+)"
    r"/networkEndpointGroups/(?P<neg>[^/]+)/(?P<verb>attach|detach|list)NetworkEndpoints$"
)
_OPERATION_ROUTE = re.compile(
    r"^/compute/v1/projects/(?P<project>[^/]+)/(?P<scope>global|regions/[^/]+|zones/[^/]+)"
    r"/operations/(?P<operation>[^/]+?)(?P<wait>/wait)?$"
)
_INSTANCES_ROUTE = re.compile(r"^/compute/v1/projects/(?P<project>[^/]+)/aggregated/instances$")


def make_service_account_key(project: str = PROJECT) -> tuple[dict[str, Any], bytes]:
    """A real RSA key pair: the service-account JSON (private half) and the public key PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef",
        "private_key": private_pem,
        "client_email": f"neg-registrar@{project}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        # Not googleapis.com: google-auth then skips its regional-access-boundary lookup, a call to
        # iamcredentials.googleapis.com that tests must never make (they talk to 127.0.0.1 only).
        "universe_domain": "fake-universe.test",
    }
    return info, public_pem


def encode_key(info: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(info).encode()).decode()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any] | None
    verb: str  # attach | detach | list | wait | get | instances
    scope: str | None = None
    neg: str | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived (this machine's monotonic clock)


@dataclass
class Fault:
    verb: str
    status: int
    times: int
    message: str = "injected fault"


@dataclass
class FakeCompute:
    public_key_pem: bytes
    client_email: str
    # (scope, neg) -> endpoints; only NEGs created here exist (a missing one answers 404).
    negs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # zone -> instances
    calls: list[Call] = field(default_factory=list)
    rejected_auth: int = 0
    down: bool = False  # every call answers 503
    # Answer attach with an operation that finishes DONE with an "already exists" error.
    attach_done_with_error: bool = False
    # verb -> seconds to wait before handling a call: it is applied when the wait ends (a slow network).
    latency: dict[str, float] = field(default_factory=dict)
    # verb -> seconds to wait after applying a call before answering (accepted at once, answered late).
    hold: dict[str, float] = field(default_factory=dict)
    arrived: list[Call] = field(default_factory=list)  # every call as it arrives, before any latency
    _faults: list[Fault] = field(default_factory=list)
    _operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_request_id: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # ---- test controls ----
    def create_neg(self, scope: str, name: str, endpoints: list[dict[str, Any]] | None = None) -> None:
        self.negs[(scope, name)] = list(endpoints or [])

    def endpoints(self, scope: str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.negs[(scope, name)])

    def fail(self, verb: str, status: int, times: int = 1, message: str = "injected fault") -> None:
        with self._lock:
            self._faults.append(Fault(verb, status, times, message))

    def calls_of(self, verb: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.verb == verb]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCompute:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-compute").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- request handling ----
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        status, payload = self._route(method, parsed.path, parse_qs(parsed.query), body, handler.headers)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(auth[len("Bearer ") :], certs=self.public_key_pem, verify=True)
        except Exception:  # noqa: BLE001 - any invalid token is a 401
            return False
        return claims.get("iss") == self.client_email

    def _route(self, method: str, path: str, query: dict, body: Any, headers: Any) -> tuple[int, dict]:
        if not self._authorised(headers):
            with self._lock:
                self.rejected_auth += 1
            return 401, _error(401, "Request had invalid authentication credentials.")
        if match := _NEG_ROUTE.match(path):
            call = Call(method, path, query, body, match["verb"], match["scope"], match["neg"])
        elif match := _OPERATION_ROUTE.match(path):
            call = Call(method, path, query, body, "wait" if match["wait"] else "get", match["scope"])
        elif _INSTANCES_ROUTE.match(path):
            call = Call(method, path, query, body, "instances")
        else:
            return 404, _error(404, f"no fake route for {method} {path}")
        with self._lock:
            self.arrived.append(call)
        if call.verb in self.latency:
            time.sleep(self.latency[call.verb])
        with self._lock:
            self.calls.append(call)
            if self.down:
                return 503, _error(503, "The service is currently unavailable.")
            for fault in self._faults:
                if fault.verb == call.verb and fault.times > 0:
                    fault.times -= 1
                    return fault.status, _error(fault.status, fault.message)
            answer = self._serve(call, match)
        if call.verb in self.hold:
            time.sleep(self.hold[call.verb])
        return answer

    def _serve(self, call: Call, match: re.Match) -> tuple[int, dict]:
        if call.verb == "instances":
            return 200, self._aggregated_instances(call.query.get("filter", [""])[0])
        if call.verb in ("wait", "get"):
            operation = self._operations.get(match["operation"])
            return (200, operation) if operation else (404, _error(404, "operation not found"))
        key = (call.scope, call.neg)
        if key not in self.negs:
            return 404, _error(404, f"networkEndpointGroup {call.neg} in {call.scope} was not found")
        if call.verb == "list":
            return 200, {"items": [{"networkEndpoint": endpoint} for endpoint in self.negs[key]]}
        request_id = call.query.get("requestId", [None])[0]
        if request_id and request_id in self._by_request_id:  # a retried call: same operation
            return 200, self._operations[self._by_request_id[request_id]]
        requested = (call.body or {}).get("networkEndpoints", [])
        error = None
        for endpoint in requested:
            present = endpoint in self.negs[key]
            if call.verb == "attach" and not present:
                self.negs[key].append(endpoint)
            elif call.verb == "detach" and present:
                self.negs[key].remove(endpoint)
            elif call.verb == "attach" and present and self.attach_done_with_error:
                error = {"errors": [{"code": "RESOURCE_ALREADY_EXISTS", "message": "already attached"}]}
        operation = self._operation(call.scope, call.verb, error)
        if request_id:
            self._by_request_id[request_id] = operation["name"]
        return 200, operation

    def _operation(self, scope: str, verb: str, error: dict | None) -> dict:
        name = f"operation-{next(self._ids)}"
        operation = {
            "kind": "compute#operation",
            "name": name,
            "operationType": f"{verb}NetworkEndpoints",
            "status": "DONE",
            "progress": 100,
        }
        if scope.startswith("regions/"):
            operation["region"] = scope.split("/", 1)[1]
        elif scope.startswith("zones/"):
            operation["zone"] = scope.split("/", 1)[1]
        if error:
            operation["error"] = error
            operation["httpErrorStatusCode"] = 409
            operation["httpErrorMessage"] = "CONFLICT"
        self._operations[name] = operation
        return operation

    def _aggregated_instances(self, filter_text: str) -> dict:
        wanted = re.search(r'natIP\s*=\s*"?([0-9.]+)"?', filter_text)
        items = {}
        for zone, instances in self.instances.items():
            chosen = [
                instance
                for instance in instances
                if not wanted
                or any(
                    config.get("natIP") == wanted.group(1)
                    for nic in instance.get("networkInterfaces", [])
                    for config in nic.get("accessConfigs", [])
                )
            ]
            items[f"zones/{zone}"] = {"instances": chosen} if chosen else {"warning": {"code": "NO_RESULTS_ON_PAGE"}}
        return {"items": items}


def _error(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "errors": [{"message": message, "reason": "fake"}]}}
