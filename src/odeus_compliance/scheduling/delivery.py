"""Telling a schedule's recipients that its report is ready, or that its run failed: the signed webhook
(Standard Webhooks, :mod:`odeus_compliance.notify.webhook`) and the e-mail.

Each channel is tried a bounded number of times per tick with backoff; a channel that accepted is not sent
to again. Attaching the PDF to an e-mail is handing it out: :func:`~odeus_compliance.reports.actions.hand_out`
records it first, or nothing is sent. Messages carry ids, the period, the PDF's hash or a failure's reason
code, never personal data.

A failed run is told on the same channels (event ``scheduled_report.failed``) when it fails for the first
time and when it has no attempt left, not at every retry in between; that notice is tried within the tick
(with the same backoff) and not kept for later ticks: the run's history keeps the failure.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.logging_setup import log_event
from odeus_compliance.notify.mail import MailSender
from odeus_compliance.notify.webhook import WebhookSender, event_body
from odeus_compliance.reports.actions import hand_out_bytes
from odeus_compliance.reports.jobs import ReportRecord
from odeus_compliance.reports.service import PDF_FILE
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.periods import Period
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.run_settings import Clock, RunSettings

__all__ = [
    "FAILED_EVENT",
    "SUCCEEDED_EVENT",
    "Deliverer",
    "RunTarget",
    "channels",
    "failure_code",
    "failure_mail_text",
    "failure_notification",
    "mail_text",
    "notification",
]

_log = logging.getLogger(__name__)
SUCCEEDED_EVENT: Final = "scheduled_report.succeeded"
FAILED_EVENT: Final = "scheduled_report.failed"
_FAILURE_CODES: Final = (
    # (start of the run's error, reason code): the errors are written in runner.py
    ("the schedule's policy", "policy_invalid"),
    ("the report job could not be queued", "queue_failed"),
    ("the report job disappeared", "job_disappeared"),
    ("the report job did not finish in time", "timeout"),
    ("the report job failed: the Odeus export could not be fetched", "upstream_failed"),
    ("the report job failed: the policy engine refused", "policy_refused"),
    ("the report job failed: cancelled", "cancelled"),
    ("the report job failed", "report_failed"),
)


@dataclass(frozen=True, slots=True)
class RunTarget:
    """The run being worked on, with its schedule's definition and period."""

    schedule: Schedule
    spec: ScheduleSpec
    run: ScheduleRun
    period: Period


_SHREDDED: Final = (
    "the e-mail recipients were shredded by retention with their key epoch; "
    "a compliance officer sets them again"
)
_NO_MAILER: Final = "e-mail delivery is not set up in this process"


@dataclass(frozen=True, slots=True)
class Deliverer:
    """The channels of this process (a channel it lacks fails its delivery with the reason)."""

    recorder: Recorder
    settings: RunSettings
    sleep: Callable[[float], Awaitable[None]]
    webhooks: WebhookSender | None = None
    mailer: MailSender | None = None
    store: ArtifactStore | None = None
    hasher: RecipientHasher | None = None
    metrics: ServiceMetrics | None = None

    def recipients(self, spec: ScheduleSpec) -> dict[str, str]:
        """The ``recipients`` detail of a record about this schedule's e-mail (keyed hashes), if any."""
        if self.hasher is None or not spec.delivery.email_to:
            return {}
        return {"recipients": self.hasher.digest(spec.delivery.email_to)}

    async def deliver(
        self,
        target: RunTarget,
        record: ReportRecord,
        clock: Clock,
        *,
        attempts_before: int,
        done_before: frozenset[str] = frozenset(),
    ) -> dict[str, object] | None:
        """Notify the schedule's webhook and e-mail recipients (bounded attempts with backoff; a channel that
        accepted is not sent to again); the delivery columns to store, or ``None`` with nothing to notify."""
        wanted = channels(target.spec)
        if not wanted:
            return None
        settings = self.settings
        done = set(done_before) & wanted
        attempts, error = attempts_before, "no attempt left"
        for attempt in range(settings.attempts_per_tick):
            if attempts >= settings.max_attempts or done == wanted:
                break
            if attempt > 0:
                await self.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
            attempts += 1
            for channel in sorted(wanted - done):
                failure = await self.send(channel, target, record)
                self._count(SUCCEEDED_EVENT, channel, sent=failure is None)
                if failure is None:
                    done.add(channel)
                else:
                    error = failure
        columns: dict[str, object] = {
            "delivery_attempts": attempts,
            "delivered_channels": ",".join(sorted(done)) or None,
        }
        if done == wanted:
            return columns | {
                "delivery_status": "delivered",
                "delivery_error": None,
                "delivery_next_at": None,
                "delivered_at": clock(),
            }
        retry = None
        if attempts < settings.max_attempts:
            retry = clock() + dt.timedelta(seconds=settings.retry_delay(attempts))
        return columns | {
            "delivery_status": "failed",
            "delivery_error": error[:500],
            "delivery_next_at": retry,
        }

    async def send(self, channel: str, target: RunTarget, record: ReportRecord) -> str | None:
        """One delivery on one channel: ``None`` if accepted, else why not."""
        delivery = target.spec.delivery
        if channel == "webhook":
            if self.webhooks is None or delivery.webhook_url is None or delivery.webhook_secret_env is None:
                return "webhook delivery is not set up in this process"
            return await self.webhooks.send(
                url=delivery.webhook_url,
                key_variable=delivery.webhook_secret_env,
                body=event_body(
                    SUCCEEDED_EVENT, record.finished_at or target.run.due_at, notification(target, record)
                ),
                message_id=str(target.run.id),
            )
        if delivery.recipients_shredded or self.mailer is None:
            return _SHREDDED if delivery.recipients_shredded else _NO_MAILER
        attachment = None
        if delivery.email_attach_pdf:
            if self.store is None:
                return "the PDF cannot be read in this process"
            try:
                # handing the PDF out is a data access: recorded first, or nothing is sent (fail closed)
                pdf = await hand_out_bytes(
                    self.recorder,
                    store=self.store,
                    record=record,
                    name=PDF_FILE,
                    purpose=target.spec.purpose,
                    delivery={
                        "schedule": target.spec.name,
                        "channel": "email",
                        "count": len(delivery.email_to),
                        **self.recipients(target.spec),
                    },
                )
            except Exception as exc:  # noqa: BLE001 - a failed attempt, recorded by its kind
                return f"the PDF could not be read or its hand-out recorded ({type(exc).__name__})"
            attachment = (f"{target.spec.name}-{target.period.label}.pdf", pdf)
        return await self.mailer.send(
            recipients=delivery.email_to,
            subject=f"Compliance report {target.period.label} ({target.spec.name}) is ready",
            text=mail_text(target, record, self.mailer.public_url, attached=attachment is not None),
            attachment=attachment,
        )

    async def notify_failure(
        self, target: RunTarget, *, error: str, retry: dt.datetime | None, failed_at: dt.datetime
    ) -> dict[str, str | None]:
        """Tell the schedule's webhook and e-mail recipients that the run failed (see the module docstring):
        per channel, ``None`` if it accepted, else why not."""
        delivery = target.spec.delivery
        wanted = {c for c in channels(target.spec) if c == "webhook" or not delivery.recipients_shredded}
        code = failure_code(error)
        body = event_body(FAILED_EVENT, failed_at, failure_notification(target, code, retry))
        # one id per failure notice: the first failure and the last are two events
        message_id = f"{target.run.id}-failed-{'final' if retry is None else 'first'}"
        results: dict[str, str | None] = {}
        for attempt in range(self.settings.attempts_per_tick):
            pending = sorted(c for c in wanted if c not in results or results[c] is not None)
            if not pending:
                break
            if attempt > 0:
                await self.sleep(self.settings.backoff_seconds * 2 ** (attempt - 1))
            for channel in pending:
                if channel == "webhook":
                    if (
                        self.webhooks is None
                        or delivery.webhook_url is None
                        or delivery.webhook_secret_env is None
                    ):
                        why: str | None = "webhook delivery is not set up in this process"
                    else:
                        why = await self.webhooks.send(
                            url=delivery.webhook_url,
                            key_variable=delivery.webhook_secret_env,
                            body=body,
                            message_id=message_id,
                        )
                elif self.mailer is None:
                    why = _NO_MAILER
                else:
                    why = await self.mailer.send(
                        recipients=delivery.email_to,
                        subject=f"Compliance report {target.period.label} ({target.spec.name}) failed",
                        text=failure_mail_text(target, code, retry),
                    )
                results[channel] = why
                self._count(FAILED_EVENT, channel, sent=why is None)
        for channel, why in sorted(results.items()):
            log_event(
                _log,
                logging.INFO if why is None else logging.WARNING,
                "schedule_failure_notified" if why is None else "schedule_failure_notice_failed",
                schedule=target.spec.name,
                period=target.period.label,
                reason=code,
                channel=channel,
            )
        return results

    def _count(self, event: str, channel: str, *, sent: bool) -> None:
        if self.metrics is not None:
            self.metrics.notification(event, channel, sent=sent)


def failure_code(error: str) -> str:
    """A short reason code for a run's error (the e-mail and webhook name the code, not the text)."""
    for start, code in _FAILURE_CODES:
        if error.startswith(start):
            return code
    return "failed"


def _run_header(target: RunTarget) -> dict[str, object]:
    """What every notice of a run says first: the schedule, the run and its period (no personal data)."""
    period = target.period
    return {
        "schedule": target.spec.name,
        "schedule_id": str(target.schedule.id),
        "run_id": str(target.run.id),
        "version": target.run.version,
        "period": {
            "label": period.label,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "timezone": period.timezone,
        },
    }


def failure_notification(target: RunTarget, code: str, retry: dt.datetime | None) -> dict[str, object]:
    """What the webhook is told of a failed run: ids, period, reason code, next try - no personal data."""
    return {
        **_run_header(target),
        "reason": code,
        "next_retry_at": None if retry is None else retry.isoformat(),
    }


def failure_mail_text(target: RunTarget, code: str, retry: dt.datetime | None) -> str:
    """The failure e-mail's text: schedule, period, reason code and what happens next; no personal data."""
    period = target.period
    lines = [
        f"The scheduled report of schedule {target.spec.name} for {period.label} failed.",
        "",
        f"Period:      {period.start.isoformat()} to {period.end.isoformat()} ({period.timezone})",
        f"Reason code: {code}",
        f"Run id:      {target.run.id}",
        "",
        (
            f"It is tried again automatically (next try after {retry.isoformat()})."
            if retry is not None
            else "It has no attempt left: an admin runs it again with 'odeus-compliance schedule rerun'."
        ),
        f"Details: 'odeus-compliance schedule runs {target.spec.name}' or GET /api/v1/schedules/{{id}}/runs.",
    ]
    return "\n".join(lines) + "\n"


def channels(spec: ScheduleSpec) -> frozenset[str]:
    """The notification channels a schedule asks for."""
    channels = set()
    if spec.delivery.webhook_url is not None:
        channels.add("webhook")
    if spec.delivery.email_to or spec.delivery.recipients_shredded:  # shredded: a failure that says so
        channels.add("email")
    return frozenset(channels)


def mail_text(target: RunTarget, record: ReportRecord, public_url: str | None, *, attached: bool) -> str:
    """The e-mail's text: what the report covers and how to get it; no personal data."""
    period = target.period
    where = f"{public_url}/api/v1/reports/{record.id}/pdf?purpose=..." if public_url else None
    lines = [
        f"The scheduled report of schedule {target.spec.name} for {period.label} is ready.",
        "",
        f"Period:      {period.start.isoformat()} to {period.end.isoformat()} ({period.timezone})",
        f"Report id:   {record.id} (version {record.version})",
        f"PDF SHA-256: {record.pdf_sha256 or '-'}",
        "",
        "The signed PDF is attached." if attached else "The signed PDF is in the archive.",
    ]
    if where is not None and not attached:
        lines.append(f"Download it with an officer's or auditor's API key, stating a purpose: {where}")
    lines.append("Check it with 'odeus-compliance report verify FILE.pdf'.")
    return "\n".join(lines) + "\n"


def notification(target: RunTarget, record: ReportRecord) -> dict[str, object]:
    """What the webhook is told: ids, period, hash - no personal data, no file."""
    return {
        **_run_header(target),
        "report": {
            "id": record.id,
            "version": record.version,
            "supersedes": record.supersedes,
            "pdf_sha256": record.pdf_sha256,
            "pdf": f"/api/v1/reports/{record.id}/pdf",
        },
    }
