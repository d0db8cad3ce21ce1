"""The service's daily retention run tells its outcome on the configured channels, on SQLite and PostgreSQL:
a failed run as ``retention.failed`` (once a day, although the ticker retries it), a run that deleted
something as ``retention.succeeded``, each as a Standard Webhooks notification and an e-mail that names no
identifier of what was deleted; both are counted in the app's metrics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import socket
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import create_async_engine

from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.models import utcnow
from odeus_compliance.retention.ticker import RetentionTicker
from odeus_compliance.settings import Secret, Settings
from tests.support.retention import FAR, World, run
from tests.support.webhooks import Receiver, new_secret, verify_standard_webhook


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 OK"


def test_the_daily_run_tells_its_failure_once_and_its_work(migrated_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    secret = new_secret()
    settings = dataclasses.replace(
        migrated_settings,
        smtp_url=Secret(f"smtp://127.0.0.1:{port}"),
        webhook_keys={"ODEUS_COMPLIANCE_WEBHOOK_RETENTION": Secret(secret)},
        retention_mail_to=("dpo@example.com",),
    )
    receiver = Receiver([])
    settings = dataclasses.replace(settings, retention_webhook_url=receiver.url)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    metrics = ServiceMetrics()
    deleted: list[str] = []
    now = utcnow()

    async def body(w: World) -> None:
        deleted.append(await w.report(8))
        # the database is out of reach: the day's run fails
        unreachable = create_async_engine("sqlite+aiosqlite:////proc/no-such-dir/odeus.sqlite3")
        try:
            broken = RetentionTicker(
                settings=w.settings,
                engine=unreachable,
                appender=w.appender,
                metrics=metrics,
                clock=lambda: now,
            )
            await broken.tick()
            await broken.tick()  # the hourly retry fails again: counted, not told again
        finally:
            await unreachable.dispose()
        ticker = RetentionTicker(
            settings=w.settings,
            engine=w.engine,
            appender=w.appender,
            metrics=metrics,
            clock=lambda: now + FAR,
        )
        await ticker.tick()  # the report is past retention: deleted, with a receipt

    try:
        run(body, settings)
    finally:
        controller.stop()
        receiver.close()
    day = now.astimezone(dt.UTC).date().isoformat()
    assert [json.loads(b)["type"] for _h, b in receiver.received] == [
        "retention.failed",
        "retention.succeeded",
    ]
    (failed_headers, failed_body), (done_headers, done_body) = receiver.received
    assert failed_headers["webhook-id"] == f"retention-{day}-failed"
    failed = json.loads(failed_body)["data"]
    assert (failed["day"], failed["reason"]) == (day, "OperationalError")
    done = json.loads(done_body)["data"]
    assert done_headers["webhook-id"] == f"{done['run_id']}-succeeded"
    assert {r["data_class"]: r["count"] for r in done["receipts"]}["reports"] == 1
    for headers, sent in receiver.received:
        assert verify_standard_webhook(secret, headers, sent)
    subjects = []
    texts = []
    for envelope in mailbox.envelopes:
        assert envelope.rcpt_tos == ["dpo@example.com"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        subjects.append(str(message["Subject"]))
        texts.append(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert subjects == [
        f"Retention run {day} failed",
        f"Retention run {(now + FAR).date().isoformat()} finished",
    ]
    assert "Reason code: OperationalError" in texts[0]
    assert "from reports" in texts[1]
    for text in [*texts, *(b.decode() for _h, b in receiver.received)]:
        assert deleted[0] not in text  # what was deleted is in the signed receipt, not in a notice
    assert metrics.retention_runs.value(outcome="failed") == 2
    assert metrics.retention_runs.value(outcome="succeeded") == 1
    assert metrics.notifications.value(event="retention.failed", channel="webhook", outcome="sent") == 1
    assert metrics.notifications.value(event="retention.succeeded", channel="email", outcome="sent") == 1
