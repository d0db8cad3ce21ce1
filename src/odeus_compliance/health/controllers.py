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
from odeus_compliance.logging_setup import log_event
from odeus_compliance.security import public
from odeus_compliance.state_keys import ENGINE_KEY

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

    @get("/ready", operation_id="healthReady", security=[{}])
    async def ready(self, state: State) -> HealthStatus:
        """The database answers and its schema is at the revision this code expects; 503 otherwise."""
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
            raise ServiceUnavailable("The database is not reachable.") from None
        if not at_head:
            log_event(_log, logging.WARNING, "not_ready", reason="schema_not_at_head")
            raise ServiceUnavailable("The database schema is not current; run 'odeus-compliance db upgrade'.")
        return HealthStatus(status="ok")
