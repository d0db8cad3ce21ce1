"""``/health/live`` and ``/health/ready``: public probes that reveal nothing but up or not up."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.db.migrate import schema_status
from odeus_compliance.errors import ServiceUnavailable
from odeus_compliance.health.signing import SigningProbe
from odeus_compliance.logging_setup import log_event
from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.security import public
from odeus_compliance.state_keys import ENGINE_KEY, SIGNING_PROBE_KEY

__all__ = ["HealthController", "HealthStatus"]

READY_TIMEOUT_SECONDS: Final = 5.0
_log = logging.getLogger(__name__)


class HealthStatus(msgspec.Struct, frozen=True):
    """A probe's answer."""

    status: str
    """Always ``ok`` (failures are 503 problem documents)."""


async def _check_database(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return (await schema_status(engine)).at_head


class HealthController(Controller):
    """Probes for the orchestrator; public, so they must never say more than up or down."""

    path = "/health"
    opt = public()
    tags = ["health"]  # noqa: RUF012 - Litestar's own attribute type

    @get("/live", operation_id="healthLive", security=[{}])
    async def live(self) -> HealthStatus:
        """The process is up and serving HTTP (it does not touch the database)."""
        return HealthStatus(status="ok")

    @get(
        "/ready",
        operation_id="healthReady",
        security=[{}],
        responses=problem_responses(
            public(), 503, why={503: "Not ready: `check` names the failed check (`database` or `signing`)."}
        ),
    )
    async def ready(self, state: State) -> HealthStatus:
        """Ready to make reports: the database answers, its schema is at the revision this code expects, and
        a report can be signed (a trial signature verifies against the trust anchors). Otherwise 503, with
        `check` naming the failed check (`database` or `signing`) and a reason that names no file."""
        engine: AsyncEngine = state[ENGINE_KEY]
        try:
            at_head = await asyncio.wait_for(_check_database(engine), timeout=READY_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the database means not ready
            log_event(
                _log,
                logging.WARNING,
                "not_ready",
                reason="database_unreachable",
                error_type=type(exc).__name__,
            )
            raise ServiceUnavailable("The database is not reachable.", extra={"check": "database"}) from None
        if not at_head:
            log_event(_log, logging.WARNING, "not_ready", reason="schema_not_at_head")
            raise ServiceUnavailable(
                "The database schema is not current; run 'odeus-compliance init'.",
                extra={"check": "database"},
            )
        probe: SigningProbe = state[SIGNING_PROBE_KEY]
        signing = await probe.check()
        if not signing.ok:
            log_event(_log, logging.WARNING, "not_ready", reason="signing_unavailable")
            raise ServiceUnavailable(
                f"Reports cannot be signed: {signing.reason}.", extra={"check": "signing"}
            )
        return HealthStatus(status="ok")
