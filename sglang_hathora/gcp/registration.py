"""Where the NEG is attached and detached: joining and leaving the GCP load balancer.

Order of life (lifecycle.py drives it): the engine is ready -> ``NegRegistrar.run`` attaches this
process's public address (HATHORA_HOSTNAME:HATHORA_DEFAULT_PORT) to every configured NEG, retrying
in the background while it fails and re-checking now and then that it is still there; on stop,
``detach_all`` removes it from every NEG in parallel within a small budget (Hathora sends SIGKILL
about 10 s after SIGTERM), before the server stops accepting and drains.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sglang_hathora.gcp.auth import credentials_from, decode_key
from sglang_hathora.gcp.neg_client import ComputeNegApi, NegTarget
from sglang_hathora.gcp.regions import gcp_region_for
from sglang_hathora.observability import logger
from sglang_hathora.settings import Settings
from sglang_hathora.threads import in_daemon_thread

_RETRY_MAX_DELAY = 30.0
_ATTACH_CALL_BUDGET = 30.0  # seconds for one attach of one NEG, retries included


class RegistrationConfigError(ValueError):
    pass


class RegistrationState(enum.StrEnum):
    PENDING = "pending"  # waiting for the engine to be ready
    ATTACHING = "attaching"
    ATTACHED = "attached"
    RETRYING = "retrying"  # an attach failed; serving anyway, retrying in the background
    DETACHING = "detaching"
    DETACHED = "detached"
    FAILED = "failed"


@dataclass(frozen=True)
class RegistrationPlan:
    mode: str
    project: str
    region: str | None
    name_templates: tuple[str, ...]
    hostname: str
    port: int
    credentials: Any


def plan_registration(settings: Settings) -> RegistrationPlan | None:
    """Check the registration settings at start (no network). None when registration is off."""
    missing = settings.registration_missing()
    if missing:
        logger.info("NEG registration is off: %s not set (normal outside Hathora)", ", ".join(missing))
        return None
    info = decode_key(settings.gcp_service_account_key_base64)
    credentials = credentials_from(info)
    region = None
    if settings.neg_mode != "zonal" or settings.gcp_region or settings.hathora_region:
        region = gcp_region_for(settings.hathora_region, settings.gcp_region)
    templates = tuple(settings.neg_name_templates())
    allowed = {"region", "zone"} if settings.neg_mode == "zonal" else {"region"}
    for template in templates:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        if fields - allowed:
            raise RegistrationConfigError(
                f"NEG_NAMES: {template!r} uses {sorted(fields - allowed)}; "
                f"{settings.neg_mode} mode allows {sorted(allowed)}"
            )
    return RegistrationPlan(
        mode=settings.neg_mode,
        project=settings.gcp_project_id or info["project_id"],
        region=region,
        name_templates=templates,
        hostname=settings.hathora_hostname,
        port=settings.hathora_default_port,
        credentials=credentials,
    )


class NegRegistrar:
    def __init__(self, plan: RegistrationPlan, settings: Settings) -> None:
        self.plan = plan
        self.settings = settings
        self.api = ComputeNegApi(plan.credentials, plan.project, settings.gcp_api_endpoint, settings.neg_call_timeout)
        self.state = RegistrationState.PENDING
        self.targets: list[NegTarget] = []
        self.attached: set[NegTarget] = set()
        self.last_error: str | None = None  # the full text, for the log and /metrics' operators
        self.last_error_class: str | None = None  # what /health shows: no project, NEG or key text
        self._closed = threading.Event()  # set when the stop begins: no new attach call from then on
        self._attach_idle = threading.Event()  # clear while an attach pass runs in its worker thread
        self._attach_idle.set()

    # ---- what /health and /metrics show ----
    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "mode": self.plan.mode,
            "negs": [{"name": t.name, "scope": t.scope, "attached": t in self.attached} for t in self.targets],
            "last_error": self.last_error,
        }

    def public_status(self) -> dict[str, Any]:
        """For /health, which anyone can read: the state and an error class, never GCP's raw text."""
        return {
            "state": self.state.value,
            "mode": self.plan.mode,
            "attached": f"{len(self.attached)}/{len(self.targets)}",
            "error": self.last_error_class,
        }

    def _failed(self, text: str, exc: BaseException) -> None:
        self.last_error = text
        self.last_error_class = type(exc).__name__

    # ---- attach ----
    async def run(self, give_up: Callable[[str], None]) -> None:
        """Attach, retry with backoff while failing, re-check while attached; until detach_all."""
        self.state = RegistrationState.ATTACHING
        give_up_at = time.monotonic() + self.settings.neg_attach_deadline
        delay = 1.0
        while not self._closed.is_set():
            ok = await in_daemon_thread(self._ensure_attached)  # a stop never waits for it
            if self._closed.is_set():
                return
            if ok:
                self.state = RegistrationState.ATTACHED
                delay = 1.0
                if self.settings.neg_recheck_interval <= 0:
                    return
                await asyncio.sleep(self.settings.neg_recheck_interval)
                continue
            self.state = RegistrationState.RETRYING
            if self.settings.neg_registration_required and time.monotonic() >= give_up_at:
                self.state = RegistrationState.FAILED
                give_up(f"NEG registration failed for {self.settings.neg_attach_deadline:.0f} s: {self.last_error}")
                return
            logger.warning("NEG attach incomplete (%s); retrying in %.0f s", self.last_error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)

    def _ensure_attached(self) -> bool:
        self._attach_idle.clear()
        try:
            return self._attach_pass()
        finally:
            self._attach_idle.set()

    def _attach_pass(self) -> bool:
        try:
            if not self.targets:
                self.targets = self._resolve_targets()
        except Exception as exc:  # noqa: BLE001 - reported in /health and retried
            self._failed(f"cannot resolve the NEG endpoint: {exc}", exc)
            return False
        all_ok = True
        for target in self.targets:
            if self._closed.is_set():
                return False
            try:
                outcome = self.api.change(
                    "attach", target, time.monotonic() + _ATTACH_CALL_BUDGET, stopping=self._closed.is_set
                )
            except Exception as exc:  # noqa: BLE001 - reported in /health and retried
                self.attached.discard(target)
                self._failed(f"{target}: {exc}", exc)
                all_ok = False
                if self._closed.is_set():
                    self._undo(target)  # the call may still have been applied
                continue
            if self._closed.is_set():
                # The stop began while this call was in flight, and detach_all may have run before the
                # call was applied: undo it here, so that no interleaving leaves the endpoint behind.
                self._undo(target)
                return False
            if target not in self.attached or outcome != "already attached":
                logger.info("NEG %s: %s %s", target, outcome, target.endpoint_dict)
            self.attached.add(target)
        if all_ok:
            self.last_error = self.last_error_class = None
        return all_ok

    def _resolve_targets(self) -> list[NegTarget]:
        plan = self.plan
        if plan.mode == "zonal":
            ip = _resolve_ipv4(plan.hostname)
            instance, zone = self.api.find_instance_by_ip(ip, time.monotonic() + _ATTACH_CALL_BUDGET)
            region = plan.region or zone.rsplit("-", 1)[0]
            endpoint = (("instance", instance), ("port", plan.port))
            logger.info("Zonal NEG: %s resolves to %s, instance %s in %s", plan.hostname, ip, instance, zone)
            names = [template.format(region=region, zone=zone) for template in plan.name_templates]
            return [NegTarget(f"zones/{zone}", name, endpoint) for name in names]
        scope = f"regions/{plan.region}" if plan.mode == "regional" else "global"
        endpoint = (("fqdn", plan.hostname), ("port", plan.port))
        return [NegTarget(scope, t.format(region=plan.region), endpoint) for t in plan.name_templates]

    # ---- detach ----
    async def detach_all(self, budget: float) -> None:
        """Remove the endpoint from every NEG, in parallel, within budget seconds."""
        self._closed.set()
        targets = list(self.targets)
        if not targets:
            self.state = RegistrationState.DETACHED
            return
        self.state = RegistrationState.DETACHING
        started = time.monotonic()
        deadline = started + budget
        tasks = [asyncio.create_task(asyncio.to_thread(self._detach, target, deadline)) for target in targets]
        done, pending = await asyncio.wait(tasks, timeout=budget)
        failed = pending or {task for task in done if task.result() is False}
        self.state = RegistrationState.FAILED if failed else RegistrationState.DETACHED
        logger.log(
            40 if failed else 20,
            "NEG detach %s in %.2f s (%d of %d NEGs)",
            "INCOMPLETE" if failed else "done",
            time.monotonic() - started,
            len(targets) - len(failed),
            len(targets),
        )

    async def settle(self, deadline: float) -> bool:
        """Wait (until the monotonic deadline) for an attach call that was in flight when the stop began;
        it undoes itself when it returns. False if it is still unanswered at the deadline."""
        if await asyncio.to_thread(self._attach_idle.wait, max(0.0, deadline - time.monotonic())):
            return True
        logger.error(
            "NEG attach call still unanswered at exit: if the Compute API applies it later, the endpoint "
            "%s stays in the NEG until removed by hand (or by the next process's start)",
            self.plan.hostname,
        )
        return False

    def _undo(self, target: NegTarget) -> None:
        logger.warning("NEG %s: an attach was in flight when the stop began; detaching again", target)
        self._detach(target, time.monotonic() + self.settings.neg_detach_budget)

    def _detach(self, target: NegTarget, deadline: float) -> bool:
        # Never waits for an attach in flight (a blocking call may hold on for its whole timeout):
        # the attach undoes itself when it returns (_attach_pass).
        try:
            outcome = self.api.change("detach", target, deadline)
        except Exception as exc:  # noqa: BLE001 - logged; the stop goes on
            self._failed(f"{target}: {exc}", exc)
            logger.error("NEG %s: detach failed: %s", target, exc)
            return False
        self.attached.discard(target)
        logger.info("NEG %s: %s %s", target, outcome, target.endpoint_dict)
        return True


def _resolve_ipv4(hostname: str) -> str:
    infos = socket.getaddrinfo(hostname, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{hostname} has no IPv4 address")
    return infos[0][4][0]
