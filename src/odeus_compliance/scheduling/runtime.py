"""A scheduler for a command (``schedule run-due``, ``schedule rerun``): report runtime, audit log and all.

The report jobs a command's runs request are run here, in the foreground (``ReportRuntime.run_job``), so a
command started by cron needs no service running; a job another process already runs is followed instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from odeus_compliance.notify.mail import MailSender
from odeus_compliance.notify.webhook import WebhookSender
from odeus_compliance.reports.runtime import standalone_runtime
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.runner import SCHEDULER, RunSettings, Scheduler
from odeus_compliance.settings import Settings

__all__ = ["standalone_scheduler"]


@contextlib.asynccontextmanager
async def standalone_scheduler(
    settings: Settings,
    *,
    run_settings: RunSettings | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[Scheduler]:
    """A :class:`Scheduler` with its own engine, audit appender and report runtime (closed afterwards);
    ``sleep`` is how it waits between attempts (tests observe it)."""
    async with standalone_runtime(settings, actor=SCHEDULER) as runtime:
        yield Scheduler(
            sessions=runtime.jobs.sessions,
            jobs=runtime.jobs,
            appender=runtime.flow.appender,
            settings=run_settings,
            sleep=sleep,
            run_job=runtime.run_job,
            webhooks=WebhookSender(settings.webhook_keys),
            mailer=MailSender.from_settings(settings),
            store=runtime.store,
            policy_dir=settings.policy_dir,
            hasher=RecipientHasher(settings.require_master_key()),
        )
