"""Telling the operator how the service's daily retention run went, on the configured channels.

``ODEUS_COMPLIANCE_RETENTION_WEBHOOK_URL`` gets a Standard Webhooks notification (signed with the key in
``ODEUS_COMPLIANCE_WEBHOOK_RETENTION``) and ``ODEUS_COMPLIANCE_RETENTION_MAIL_TO`` an e-mail: event
``retention.succeeded`` when a run deleted, finished or rotated something (a run with nothing to do stays
quiet), ``retention.failed`` when the day's run failed (once per UTC day and process; the run is retried by
the next tick). Messages carry the run id, counts per data class, receipt ids and a reason code (the error's
class), never an identifier of what was deleted and never personal data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.logging_setup import log_event
from odeus_compliance.notify.mail import MailSender
from odeus_compliance.notify.webhook import WebhookSender, event_body
from odeus_compliance.retention.purge import RunResult
from odeus_compliance.settings import Settings

__all__ = ["FAILED_EVENT", "KEY_VARIABLE", "SUCCEEDED_EVENT", "RetentionNotifier"]

_log = logging.getLogger(__name__)
SUCCEEDED_EVENT: Final = "retention.succeeded"
FAILED_EVENT: Final = "retention.failed"
KEY_VARIABLE: Final = "ODEUS_COMPLIANCE_WEBHOOK_RETENTION"
"""The variable holding the retention webhook's Standard Webhooks secret."""
ATTEMPTS: Final = 3
BACKOFF_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True)
class RetentionNotifier:
    """Sends retention notices to the configured webhook and addresses (either may be absent)."""

    webhook_url: str | None
    mail_to: tuple[str, ...]
    webhooks: WebhookSender
    mailer: MailSender
    metrics: ServiceMetrics | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def from_settings(cls, settings: Settings, *, metrics: ServiceMetrics | None = None) -> RetentionNotifier:
        """The channels of ``settings``."""
        return cls(
            webhook_url=settings.retention_webhook_url,
            mail_to=settings.retention_mail_to,
            webhooks=WebhookSender(settings.webhook_keys),
            mailer=MailSender.from_settings(settings),
            metrics=metrics,
        )

    async def succeeded(self, result: RunResult, *, finished_at: dt.datetime) -> None:
        """A run that changed something: what it did, by data class and receipt."""
        if not (result.receipts or result.rotated or result.finished) or result.run_id is None:
            return
        receipts = [{"id": r.id, "data_class": r.data_class.value, "count": r.count} for r in result.receipts]
        data = {
            "run_id": result.run_id,
            "as_of": result.as_of.isoformat(),
            "receipts": receipts,
            "rotated": list(result.rotated),
            "finished_pending": len(result.finished),
            "pending_held": len(result.waiting),
            "plaintext_findings": len(result.findings),
        }
        lines = [
            f"The retention run {result.run_id} (as of {result.as_of.isoformat()}) finished.",
            "",
            *(f"Deleted:     {r['count']} from {r['data_class']} (receipt {r['id']})" for r in receipts),
            f"Rotated:     {', '.join(result.rotated) or '-'}",
            f"Finished:    {len(result.finished)} pending receipt(s) of earlier runs",
        ]
        if result.findings:
            lines.append(f"Found {len(result.findings)} plaintext export-like file(s): run 'retention run'.")
        lines.append("Receipts: 'odeus-compliance retention receipts'.")
        await self._send(
            SUCCEEDED_EVENT,
            f"{result.run_id}-succeeded",
            finished_at,
            data,
            subject=f"Retention run {result.as_of.date().isoformat()} finished",
            text="\n".join(lines) + "\n",
        )

    async def failed(self, *, day: str, reason: str, failed_at: dt.datetime) -> None:
        """The day's run failed with ``reason`` (an error class name)."""
        data = {"day": day, "reason": reason, "retried": "at the next tick (within the hour)"}
        text = (
            f"The daily retention run of {day} (UTC) failed.\n\n"
            f"Reason code: {reason}\n\n"
            "Nothing is lost: what was due stays until a run deletes it, and a run cut short leaves a "
            "pending receipt the next run finishes. The next tick tries again; see the service log "
            "('retention.' events) or run 'odeus-compliance retention run'.\n"
        )
        await self._send(
            FAILED_EVENT,
            f"retention-{day}-failed",
            failed_at,
            data,
            subject=f"Retention run {day} failed",
            text=text,
        )

    async def _send(
        self,
        event: str,
        message_id: str,
        occurred: dt.datetime,
        data: Mapping[str, object],
        *,
        subject: str,
        text: str,
    ) -> None:
        wanted = (["webhook"] if self.webhook_url else []) + (["email"] if self.mail_to else [])
        body = event_body(event, occurred, data)
        outcome: dict[str, str | None] = {}
        for attempt in range(ATTEMPTS):
            pending = [c for c in wanted if outcome.get(c, "not yet") is not None]
            if not pending:
                break
            if attempt:
                await self.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            for channel in pending:
                if channel == "webhook" and self.webhook_url is not None:
                    why = await self.webhooks.send(
                        url=self.webhook_url, key_variable=KEY_VARIABLE, body=body, message_id=message_id
                    )
                else:
                    why = await self.mailer.send(recipients=self.mail_to, subject=subject, text=text)
                outcome[channel] = why
                if self.metrics is not None:
                    self.metrics.notification(event, channel, sent=why is None)
        for channel, why in sorted(outcome.items()):
            log_event(
                _log,
                logging.INFO if why is None else logging.WARNING,
                "retention.notified" if why is None else "retention.notice_failed",
                channel=channel,
                reason=event,
            )
