"""Telling a schedule's recipients that its report is ready: the signed webhook and the e-mail.

Each channel is tried a bounded number of times per tick with backoff; a channel that accepted is not sent
to again. Attaching the PDF to an e-mail is handing it out: :func:`~odeus_compliance.reports.actions.hand_out`
records it first, or nothing is sent. Messages carry ids, the period and the PDF's hash, never personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.reports.actions import hand_out_bytes
from odeus_compliance.reports.jobs import ReportRecord
from odeus_compliance.reports.service import PDF_FILE
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.scheduling.mail import MailSender
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.periods import Period
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.run_settings import Clock, RunSettings
from odeus_compliance.scheduling.webhook import WebhookSender, notification_body

__all__ = ["Deliverer", "RunTarget", "channels", "mail_text", "notification"]


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
                body=notification_body(notification(target, record)),
                delivery_id=str(target.run.id),
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
        "report": {
            "id": record.id,
            "version": record.version,
            "supersedes": record.supersedes,
            "pdf_sha256": record.pdf_sha256,
            "pdf": f"/api/v1/reports/{record.id}/pdf",
        },
    }
