"""Blocking Compute API calls for network endpoint groups, with the official google-cloud-compute
client. Call from a worker thread (the client is synchronous, REST only).

Rules from shared/reference/hathora-gcp.md, each one a defect of the earlier implementation:
- idempotent: list first; "already attached" on attach and "not attached" on detach are success,
  whether they come as an HTTP error or inside a finished operation, so any 4xx answer (or an
  operation finished with an error) is settled by listing again;
- one requestId per logical attach/detach, reused by every retry, so a retried call is not applied twice;
- explicit per-call timeouts (the library's default is 600 s, with no retry) and our own bounded,
  jittered exponential backoff on 429, 5xx and transport errors;
- operations are awaited with the {Region,Global,Zone}OperationsClient built with the same
  client_options, because ExtendedOperation.result() ignores api_endpoint.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sglang_hathora.observability import logger

T = TypeVar("T")
Stop = Callable[[], bool] | None  # when it turns true, no further call (or retry) is sent
_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class NegTarget:
    """One endpoint in one NEG. scope: "global", "regions/<region>" or "zones/<zone>"."""

    scope: str
    name: str
    endpoint: tuple[tuple[str, Any], ...]  # hashable form of {"fqdn": ..., "port": ...}

    @property
    def endpoint_dict(self) -> dict[str, Any]:
        return dict(self.endpoint)

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"


class NegError(RuntimeError):
    pass


def _is_retryable(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from requests import exceptions as requests_exceptions

    if isinstance(exc, api_exceptions.TooManyRequests | api_exceptions.ServerError):
        return True
    return isinstance(exc, requests_exceptions.RequestException | auth_exceptions.TransportError)


def _is_client_error(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions

    return isinstance(exc, api_exceptions.ClientError) and not isinstance(exc, api_exceptions.TooManyRequests)


@dataclass
class ComputeNegApi:
    credentials: Any
    project: str
    api_endpoint: str | None
    call_timeout: float
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- clients (one of each kind, built on first use) ----
    def _client(self, kind: str) -> Any:
        from google.cloud import compute_v1  # imported only when registration is on (1-6 s)

        with self._lock:
            if kind not in self._clients:
                # The key's universe domain (googleapis.com for every public-cloud key) goes to the client,
                # which refuses credentials from another universe.
                options = {"universe_domain": self.credentials.universe_domain}
                if self.api_endpoint:
                    options["api_endpoint"] = self.api_endpoint
                cls = {
                    "regions": compute_v1.RegionNetworkEndpointGroupsClient,
                    "global": compute_v1.GlobalNetworkEndpointGroupsClient,
                    "zones": compute_v1.NetworkEndpointGroupsClient,
                    "regions-ops": compute_v1.RegionOperationsClient,
                    "global-ops": compute_v1.GlobalOperationsClient,
                    "zones-ops": compute_v1.ZoneOperationsClient,
                    "instances": compute_v1.InstancesClient,
                }[kind]
                self._clients[kind] = cls(credentials=self.credentials, client_options=options)
            return self._clients[kind]

    # ---- retry ----
    def _retrying(self, what: str, deadline: float, call: Callable[[float], T], stopping: Stop = None) -> T:
        """Run call(timeout) until it succeeds, a non-retryable error, the deadline, or stopping()."""
        delay = _BACKOFF_FIRST
        attempt = 1
        last: Exception | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The caller (and /health's error class) should see what GCP said, not our bookkeeping.
                raise last if last is not None else NegError(f"{what}: no time left")
            if stopping is not None and stopping():
                raise NegError(f"{what}: not sent, the process is stopping")
            try:
                return call(min(self.call_timeout, remaining))
            except Exception as exc:
                pause = delay * random.uniform(0.8, 1.2)  # jittered: many servers restart together
                if not _is_retryable(exc):
                    raise
                if time.monotonic() + pause >= deadline:
                    if last is not None and remaining < self.call_timeout:
                        # Cut to the deadline's last moments, the call timed out on our budget (a CI run:
                        # ReadTimeout after 0.0001 s): what GCP said before is the answer.
                        raise last from exc
                    raise
                last = exc
                logger.warning("%s failed (attempt %d: %s); retrying in %.1f s", what, attempt, _brief(exc), pause)
            time.sleep(pause)
            delay = min(delay * 2, _BACKOFF_MAX)
            attempt += 1

    # ---- scope plumbing: the three NEG kinds differ only in names ----
    def _location(self, target: NegTarget) -> tuple[str, dict[str, str]]:
        kind, _, where = target.scope.partition("/")
        fields = {"project": self.project}
        if kind == "regions":
            fields["region"] = where
        elif kind == "zones":
            fields["zone"] = where
        return kind, fields

    def list_endpoints(self, target: NegTarget, deadline: float, stopping: Stop = None) -> list[dict[str, Any]]:
        kind, fields = self._location(target)
        request = {**fields, "network_endpoint_group": target.name}

        def call(timeout: float) -> list[dict[str, Any]]:
            pager = self._client(kind).list_network_endpoints(request=request, retry=None, timeout=timeout)
            return [_endpoint_dict(item.network_endpoint) for item in pager]

        return self._retrying(f"list {target}", deadline, call, stopping)

    def is_attached(self, target: NegTarget, deadline: float, stopping: Stop = None) -> bool:
        return _matches_any(target.endpoint_dict, self.list_endpoints(target, deadline, stopping))

    def change(self, verb: str, target: NegTarget, deadline: float, stopping: Stop = None) -> str:
        """verb "attach" or "detach"; returns what happened. Raises NegError when it could not.
        stopping: once true, nothing more is sent (an attach in flight when the process stops)."""
        want_present = verb == "attach"
        if self.is_attached(target, deadline, stopping) == want_present:
            return "already attached" if want_present else "not attached"
        kind, fields = self._location(target)
        resource_field = {
            "regions": f"region_network_endpoint_groups_{verb}_endpoints_request_resource",
            "global": f"global_network_endpoint_groups_{verb}_endpoints_request_resource",
            "zones": f"network_endpoint_groups_{verb}_endpoints_request_resource",
        }[kind]
        request = {
            **fields,
            "network_endpoint_group": target.name,
            "request_id": str(uuid.uuid4()),  # one id for this logical change, reused by every retry
            resource_field: {"network_endpoints": [target.endpoint_dict]},
        }
        method = getattr(self._client(kind), f"{verb}_network_endpoints_unary")
        try:
            operation = self._retrying(
                f"{verb} {target}",
                deadline,
                lambda timeout: method(request=request, retry=None, timeout=timeout),
                stopping,
            )
            failure = self._wait(kind, fields, operation, deadline, f"{verb} {target}")
        except Exception as exc:
            if not _is_client_error(exc):
                raise
            failure = _brief(exc)
        if failure is None:
            return "attached" if want_present else "detached"
        # An error may mean "already attached"/"not attached": the list says what is true.
        if self.is_attached(target, deadline) == want_present:
            return "already attached" if want_present else "not attached"
        raise NegError(f"{verb} {target} failed: {failure}")

    def _wait(self, kind: str, fields: dict[str, str], operation: Any, deadline: float, what: str) -> str | None:
        """Wait for the operation on the chosen endpoint; its error text, or None when it succeeded."""
        from google.cloud import compute_v1

        ops = self._client(f"{kind}-ops")
        while operation.status != compute_v1.Operation.Status.DONE:
            operation = self._retrying(
                f"wait for {what}",
                deadline,
                lambda timeout, name=operation.name: ops.wait(
                    request={**fields, "operation": name}, retry=None, timeout=timeout
                ),
            )
        if operation.error and operation.error.errors:
            details = "; ".join(f"{e.code}: {e.message}" for e in operation.error.errors)
            return f"operation {operation.name} ended with HTTP {operation.http_error_status_code}: {details}"
        return None

    def find_instance_by_ip(self, ip: str, deadline: float) -> tuple[str, str]:
        """(instance name, zone) of the instance whose external NAT IP is ip (zonal NEG mode)."""
        request = {"project": self.project, "filter": f'networkInterfaces.accessConfigs.natIP="{ip}"'}

        def call(timeout: float) -> list[tuple[str, str]]:
            found = []
            pager = self._client("instances").aggregated_list(request=request, retry=None, timeout=timeout)
            for scope, scoped in pager:
                for instance in scoped.instances:
                    # Check the IP ourselves too: the filter is a convenience, not a guarantee.
                    nat_ips = {c.nat_i_p for nic in instance.network_interfaces for c in nic.access_configs}
                    if ip in nat_ips:
                        found.append((instance.name, scope.removeprefix("zones/")))
            return found

        matches = self._retrying(f"find the instance with external IP {ip}", deadline, call)
        if len(matches) != 1:
            raise NegError(f"expected one instance with external IP {ip} in project {self.project}, found {matches}")
        return matches[0]


def _endpoint_dict(endpoint: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("fqdn", "instance", "ip_address", "port"):
        if endpoint._pb.HasField(key):
            out[key] = getattr(endpoint, key)
    return out


def _matches_any(wanted: dict[str, Any], present: list[dict[str, Any]]) -> bool:
    # GCP reports an instance as a URL or a name, and may add ip_address: compare what we asked for.
    def same(have: dict[str, Any]) -> bool:
        for key, value in wanted.items():
            got = have.get(key)
            if key == "instance" and isinstance(got, str):
                got = got.rsplit("/", 1)[-1]
            if got != value:
                return False
        return True

    return any(same(endpoint) for endpoint in present)


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
