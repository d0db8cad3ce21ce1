"""The service's scheduler loop: ``run_due`` every ``schedule_tick_seconds``, in every replica.

Every replica ticks; the claims in the database make exactly one of them run each period, so no replica is
special and any may die. The report jobs the runs request are run by the report runtime's own loop (of this
replica or another); a run follows its job to the end. The loop is the one place the real clock is read.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.audit.appender import AuditAppender
from odeus_compliance.core.background import BackgroundTask
from odeus_compliance.core.clock import utcnow
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.logging_setup import log_event
from odeus_compliance.notify.mail import MailSender
from odeus_compliance.notify.webhook import WebhookSender
from odeus_compliance.reports.runtime import ReportRuntime
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.runner import Clock, Scheduler
from odeus_compliance.settings import Settings

__all__ = ["ScheduleTicker"]

_log = logging.getLogger(__name__)


class ScheduleTicker:
    """Calls :meth:`Scheduler.run_due` now and then every ``interval`` seconds until stopped."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        runtime: ReportRuntime,
        appender: AuditAppender,
        clock: Clock = utcnow,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.scheduler = Scheduler(
            sessions=sessions,
            jobs=runtime.jobs,
            appender=appender,
            webhooks=WebhookSender(settings.webhook_keys),
            mailer=MailSender.from_settings(settings),
            store=runtime.store,
            policy_dir=settings.policy_dir,
            hasher=RecipientHasher(settings.require_master_key()),
            metrics=metrics,
        )
        self._interval = settings.schedule_tick_seconds
        self._clock = clock
        self._background = BackgroundTask("schedule-ticker")

    async def start(self) -> None:
        """Start ticking in the background."""
        self._background.start(self._loop())

    async def stop(self) -> None:
        """Stop ticking; a run in progress keeps its claim until the lease lapses, then another replica (or
        this one, restarted) takes it over and follows its report job."""
        await self._background.stop()

    async def _loop(self) -> None:
        while True:
            try:
                outcomes = await self.scheduler.run_due(self._clock())
                if outcomes:
                    log_event(_log, logging.INFO, "schedule_tick", runs=len(outcomes))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive a database outage
                log_event(_log, logging.WARNING, "schedule_tick_failed", error_type=type(exc).__name__)
            await asyncio.sleep(self._interval)
