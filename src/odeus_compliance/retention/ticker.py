"""The service's daily retention run: every replica looks every ``interval`` seconds (an hour by default)
whether today's run (UTC day) has happened; the unique ``retention_runs.daily_key`` lets exactly one
replica run it. A run that fails gives its day back, so the next tick tries again; a process that dies
mid-run leaves its pending receipts to the next day's run. Each run is counted in the app's metrics, and its
outcome is told on the configured channels (:mod:`.notices`).

Wiring (``app.py`` lifespan, after the appender is started)::

    retention = RetentionTicker(settings=settings, engine=engine, appender=appender)
    await retention.start()
    ...
    await retention.stop()
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.appender import AuditAppender
from odeus_compliance.core.background import BackgroundTask
from odeus_compliance.core.clock import Clock, utcnow
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.logging_setup import log_event
from odeus_compliance.retention.notices import RetentionNotifier
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
        metrics: ServiceMetrics | None = None,
        notifier: RetentionNotifier | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._appender = appender
        self._interval = interval
        self._metrics = metrics
        self.notifier = notifier or RetentionNotifier.from_settings(settings, metrics=metrics)
        self._clock = clock
        self._failure_told: str | None = None  # the UTC day whose failure this process has told
        self._background = BackgroundTask("retention-ticker")

    async def start(self) -> None:
        """Start in the background."""
        self._background.start(self._loop())

    async def stop(self) -> None:
        """Stop; a run in progress is cancelled (its pending receipt is finished by the next run)."""
        await self._background.stop()

    async def tick(self) -> None:
        """One look: run today's retention unless another replica did (failures are logged, not raised)."""
        now = self._clock()
        try:
            result = await run_daily(self._settings, engine=self._engine, appender=self._appender, now=now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must survive; the next day's run retries
            log_event(_log, logging.WARNING, "retention.daily_failed", error_type=type(exc).__name__)
            self._count("failed")
            day = now.astimezone(dt.UTC).date().isoformat()
            if self._failure_told != day:  # once a day: the hourly retries of one outage are not news
                self._failure_told = day
                await self._tell(self.notifier.failed(day=day, reason=type(exc).__name__, failed_at=now))
            return
        self._count("skipped" if result.skipped else "succeeded")
        if not result.skipped:
            log_event(_log, logging.INFO, "retention.daily", job_id=result.run_id, count=len(result.receipts))
            await self._tell(self.notifier.succeeded(result, finished_at=self._clock()))

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.retention_run(outcome)

    @staticmethod
    async def _tell(notice: Coroutine[Any, Any, None]) -> None:
        """Send a notice; one that fails is logged (its reason), never a failure of the run."""
        try:
            await notice
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a notice must not stop the ticker
            log_event(_log, logging.WARNING, "retention.notice_failed", error_type=type(exc).__name__)

    async def _loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)
