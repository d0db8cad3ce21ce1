"""The service's daily retention run: every replica looks every ``interval`` seconds (an hour by default)
whether today's run (UTC day) has happened; the unique ``retention_runs.daily_key`` lets exactly one
replica run it. A run that fails gives its day back, so the next tick tries again; a process that dies
mid-run leaves its pending receipts to the next day's run.

Wiring (``app.py`` lifespan, after the appender is started)::

    retention = RetentionTicker(settings=settings, engine=engine, appender=appender)
    await retention.start()
    ...
    await retention.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.appender import AuditAppender
from odeus_compliance.logging_setup import log_event
from odeus_compliance.retention.purge import run_daily
from odeus_compliance.settings import Settings

__all__ = ["DEFAULT_INTERVAL", "RetentionTicker"]

_log = logging.getLogger(__name__)
DEFAULT_INTERVAL: Final = 3600.0


class RetentionTicker:
    """Calls :func:`run_daily` now and then every ``interval`` seconds until stopped."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        appender: AuditAppender,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._appender = appender
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start in the background."""
        self._task = asyncio.create_task(self._loop(), name="retention-ticker")

    async def stop(self) -> None:
        """Stop; a run in progress is cancelled (its pending receipt is finished by the next run)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> None:
        """One look: run today's retention unless another replica did (failures are logged, not raised)."""
        try:
            result = await run_daily(self._settings, engine=self._engine, appender=self._appender)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must survive; the next day's run retries
            log_event(_log, logging.WARNING, "retention.daily_failed", error_type=type(exc).__name__)
            return
        if not result.skipped:
            log_event(_log, logging.INFO, "retention.daily", job_id=result.run_id, count=len(result.receipts))

    async def _loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)
