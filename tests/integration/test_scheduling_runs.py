"""``run_due`` end to end on SQLite and PostgreSQL: the real report runtime pulling from the Odeus simulator.

Two schedulers racing the same due time make exactly one run and one report; an upstream outage makes
retries, then a failed run visible in the history, retried by a later tick; catch-up policies; re-runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import Report
from odeus_compliance.db.schedule_tables import ScheduleRun
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.keys.ring import KeyEncryptionKey, ensure_key_ring
from odeus_compliance.keys.sealed_text import TextSealer
from odeus_compliance.reports.jobs import ReportStatus
from odeus_compliance.reports.purposes import open_purpose
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.runner import RunOutcome, RunSettings
from odeus_compliance.scheduling.runtime import standalone_scheduler
from odeus_compliance.scheduling.service import list_runs, save_schedule
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.webhooks import Receiver, new_secret, verify_standard_webhook

FAST = RunSettings(
    lease_seconds=30, attempts_per_tick=2, backoff_seconds=0.05, retry_after_seconds=600, poll_seconds=0.05
)


def last_closed_month_start() -> dt.date:
    """The first day of last month (Odeus keeps only recent history, so tests stay near the real date)."""
    today = dt.datetime.now(dt.UTC).date().replace(day=1)
    return (today - dt.timedelta(days=1)).replace(day=1)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=30, seed=5)) as running:
        yield running


@pytest.fixture
def upstream_settings(migrated_settings: Settings, sim: RunningSimulator) -> Settings:
    settings = dataclasses.replace(
        migrated_settings,
        odeus_base_url=sim.base_url,
        odeus_api_key=Secret(sim.api_key),
        download_hosts=frozenset({sim.download_host}),
    )
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    return settings


async def create_schedule(settings: Settings, *, active_from: dt.datetime, **changes: Any) -> uuid.UUID:
    fields: dict[str, Any] = {
        "name": "monthly",
        "every": "month",
        "day": 1,
        "time": "06:00",
        "timezone": "Europe/Berlin",
        "policy": "default",
        **changes,
    }
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            kek = KeyEncryptionKey(settings.require_master_key())
            await ensure_key_ring(session=session, kek=kek)  # e-mail recipients are sealed under its keys
            saved = await save_schedule(
                session=session,
                spec=ScheduleSpec.build(**fields),
                policy_dir=settings.policy_dir,
                now=active_from,
                active_from=active_from,
                sealer=TextSealer(kek),
            )
            return saved.schedule.id
    finally:
        await engine.dispose()


async def run_due(settings: Settings, now: dt.datetime) -> list[RunOutcome]:
    async with standalone_scheduler(settings, run_settings=FAST) as scheduler:
        return await scheduler.run_due(now)


async def runs_of(settings: Settings, schedule_id: uuid.UUID) -> list[ScheduleRun]:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            return list(await list_runs(session=session, schedule_id=schedule_id))
    finally:
        await engine.dispose()


async def stored_purpose(settings: Settings, report: Report) -> str | None:
    engine = create_engine_for(settings)
    try:
        kek = KeyEncryptionKey(settings.require_master_key())
        return await open_purpose(kek, session_factory(engine), report_id=report.id, stored=report.purpose)
    finally:
        await engine.dispose()


async def reports_of(settings: Settings, schedule_id: uuid.UUID) -> list[Report]:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            query = (
                select(Report)
                .where(Report.requested_by == f"schedule:{schedule_id}")
                .order_by(Report.requested_at)
            )
            return list((await session.execute(query)).scalars().all())
    finally:
        await engine.dispose()


async def audit_rows(settings: Settings, action: str) -> list[tuple[str, str]]:
    """(action, outcome) of the audit entries whose action starts with ``action``, in log order."""
    engine = create_engine_for(settings)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT action, outcome FROM audit_entries WHERE action LIKE :a ORDER BY seq"),
                {"a": action + "%"},
            )
            return [(row[0], row[1]) for row in result.all()]
    finally:
        await engine.dispose()


def berlin_due(first_of_next_month: dt.date) -> dt.datetime:
    """06:00 Berlin time on that day, as UTC."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    local = dt.datetime.combine(first_of_next_month, dt.time(6, 0), ZoneInfo("Europe/Berlin"))
    return local.astimezone(dt.UTC)


async def test_racing_schedulers_make_exactly_one_run_and_one_report(upstream_settings: Settings) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=20))
    # one minute before the due time: nothing
    assert await run_due(upstream_settings, due - dt.timedelta(minutes=1)) == []
    results = await asyncio.gather(*(run_due(upstream_settings, due) for _ in range(3)))
    outcomes = [o for result in results for o in result]
    assert [(o.status, o.version) for o in outcomes] == [("succeeded", 1)], outcomes
    runs = await runs_of(upstream_settings, schedule_id)
    assert len(runs) == 1
    run = runs[0]
    assert (run.status, run.attempts, run.report_id, run.lease_owner) == (
        "succeeded",
        1,
        outcomes[0].report_id,
        None,
    )
    assert run.period_label == f"{month.year:04d}-{month.month:02d}"
    reports = await reports_of(upstream_settings, schedule_id)
    assert [r.id for r in reports] == [run.report_id]
    report = reports[0]
    assert report.status == ReportStatus.SUCCEEDED.value
    assert report.purpose.startswith("sealed:v1:audit-data:")  # stored sealed, opened with the key ring
    assert await stored_purpose(upstream_settings, report) == "scheduled monthly report monthly"
    assert (report.period_start, report.period_end) == (run.period_start, run.period_end)
    assert report.timezone == "Europe/Berlin"
    # a later tick finds nothing to do
    assert await run_due(upstream_settings, due + dt.timedelta(hours=5)) == []
    # audited: the request (data access, with purpose) and the run
    assert await audit_rows(upstream_settings, "schedule.run") == [("schedule.run", "success")]
    assert ("report.requested", "success") in await audit_rows(upstream_settings, "report.requested")


async def test_upstream_outage_retries_then_fails_visibly_then_next_tick_succeeds(
    upstream_settings: Settings, sim: RunningSimulator
) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=1))
    sim.faults.fail_next(500, status=503)
    [outcome] = await run_due(upstream_settings, due)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("the report job failed")
    [run] = await runs_of(upstream_settings, schedule_id)
    assert (run.status, run.attempts) == ("failed", 2)
    assert run.next_retry_at is not None
    assert run.next_retry_at <= due + dt.timedelta(seconds=60)  # the next tick (a minute on) retries it
    failed_reports = await reports_of(upstream_settings, schedule_id)
    assert [r.status for r in failed_reports] == ["failed", "failed"]
    # the outage is over; the next tick retries the failed run
    sim.faults.clear()
    [retried] = await run_due(upstream_settings, due + dt.timedelta(seconds=60))
    assert (retried.status, retried.run_id) == ("succeeded", run.id)
    [run] = await runs_of(upstream_settings, schedule_id)
    assert (run.status, run.attempts, run.error, run.next_retry_at) == ("succeeded", 3, None, None)
    statuses = [r.status for r in await reports_of(upstream_settings, schedule_id)]
    assert statuses == ["failed", "failed", "succeeded"]
    assert [o for _a, o in await audit_rows(upstream_settings, "schedule.run")] == ["failure", "success"]


async def test_catch_up_skip_records_missed_periods_and_rerun_supersedes(upstream_settings: Settings) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    # weekly schedule, down for three weeks: skip-and-record runs only the latest week, records the others
    schedule_id = await create_schedule(
        upstream_settings,
        active_from=due - dt.timedelta(days=21, hours=1),
        name="weekly",
        every="week",
        day=1,
        catch_up="skip-and-record",
    )
    outcomes = await run_due(upstream_settings, due)
    assert [o.status for o in outcomes] == ["skipped", "skipped", "succeeded"], outcomes
    runs = await runs_of(upstream_settings, schedule_id)
    assert sorted(r.status for r in runs) == ["skipped", "skipped", "succeeded"]
    assert all(r.error and "catch-up policy" in r.error for r in runs if r.status == "skipped")
    assert len(await reports_of(upstream_settings, schedule_id)) == 1
    # a re-run of the closed latest week: version 2 supersedes version 1, both kept
    latest = next(r for r in runs if r.status == "succeeded")
    async with standalone_scheduler(upstream_settings, run_settings=FAST) as scheduler:
        async with scheduler.sessions() as session:
            from odeus_compliance.scheduling.service import get_schedule  # noqa: PLC0415

            schedule = await get_schedule(session=session, schedule_id=schedule_id)
        assert schedule is not None
        rerun = await scheduler.rerun(
            schedule=schedule, moment=latest.period_start + dt.timedelta(hours=1), now=due, requested_by="cli"
        )
    assert (rerun.status, rerun.version) == ("succeeded", 2)
    versions = [
        r for r in await runs_of(upstream_settings, schedule_id) if r.period_start == latest.period_start
    ]
    assert [(r.version, r.status) for r in versions] == [(2, "succeeded"), (1, "succeeded")]
    assert versions[0].supersedes_run_id == latest.id
    reports = await reports_of(upstream_settings, schedule_id)
    assert len(reports) == 2
    assert reports[1].supersedes == reports[0].id
    assert reports[1].version == 2


async def test_a_dead_owners_run_is_taken_over_and_its_unrecorded_job_adopted(
    upstream_settings: Settings,
) -> None:
    """The owner claimed the run, queued the report job and died before recording the job's id: the taker
    adopts that job instead of requesting a second report for the period."""
    from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod  # noqa: PLC0415
    from odeus_compliance.scheduling import claims  # noqa: PLC0415
    from odeus_compliance.scheduling.periods import Every, due_at, previous_closed_period  # noqa: PLC0415

    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=1))
    period = previous_closed_period(Every.MONTH, due, "Europe/Berlin")
    dead = claims.Lease("dead-host:1:0", 30)
    engine = create_engine_for(upstream_settings)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            run = await claims.claim_new(
                session=session,
                schedule_id=schedule_id,
                period=period,
                due_at=due_at(period, day=1, time=dt.time(6, 0)),
                version=1,
                lease=dead,
                now=due,
            )
            assert run is not None
            assert await claims.mark_running(session=session, run_id=run.id, lease=dead, now=due)
        orphan = await ReportJobs(sessions).request(
            period=ReportPeriod(period.start, period.end, period.timezone),
            policy="default",
            purpose="scheduled monthly report monthly",
            requested_by=f"schedule:{schedule_id}",
        )
    finally:
        await engine.dispose()
    # within the lease the owner might still be alive: nobody touches the run
    assert await run_due(upstream_settings, due + dt.timedelta(seconds=20)) == []
    [outcome] = await run_due(upstream_settings, due + dt.timedelta(seconds=31))
    assert (outcome.status, outcome.run_id, outcome.report_id) == ("succeeded", run.id, orphan.id)
    [stored] = await runs_of(upstream_settings, schedule_id)
    assert (stored.status, stored.attempts, stored.report_id, stored.lease_owner) == (
        "succeeded",
        1,
        orphan.id,
        None,
    )
    assert [(r.id, r.status) for r in await reports_of(upstream_settings, schedule_id)] == [
        (orphan.id, "succeeded")
    ]


async def test_webhook_is_signed_retried_and_delivered_by_a_later_tick(upstream_settings: Settings) -> None:
    import json  # noqa: PLC0415

    key = new_secret()
    settings = dataclasses.replace(
        upstream_settings, webhook_keys={"ODEUS_COMPLIANCE_WEBHOOK_TEST": Secret(key)}
    )
    receiver = Receiver([500, 503])  # the receiver is down for the first two deliveries
    try:
        month = last_closed_month_start()
        due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
        schedule_id = await create_schedule(
            settings,
            active_from=due - dt.timedelta(days=1),
            delivery={"webhook_url": receiver.url, "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_TEST"},
        )
        [outcome] = await run_due(settings, due)
        assert outcome.status == "succeeded"  # the report is archived whatever the webhook does
        [run] = await runs_of(settings, schedule_id)
        assert (run.delivery_status, run.delivery_attempts) == ("failed", 2)
        assert run.delivery_error == "the webhook answered HTTP 503"
        assert run.delivery_next_at is not None
        assert run.delivery_next_at <= due + dt.timedelta(seconds=60)  # the next tick tries again
        assert len(receiver.received) == 2
        [again] = await run_due(settings, due + dt.timedelta(seconds=60))
        assert (again.status, again.run_id) == ("delivered", run.id)
        [run] = await runs_of(settings, schedule_id)
        assert (run.delivery_status, run.delivery_attempts, run.delivery_error) == ("delivered", 3, None)
        assert run.lease_owner is None
        assert len(receiver.received) == 3
        assert await run_due(settings, due + dt.timedelta(seconds=2000)) == []  # delivered once is enough
        assert len(receiver.received) == 3
    finally:
        receiver.close()
    # every attempt carried the same body and webhook id, signed with the key (Standard Webhooks)
    bodies = {body for _headers, body in receiver.received}
    assert len(bodies) == 1
    for headers, body in receiver.received:
        assert headers["webhook-id"] == str(run.id)
        assert headers["content-type"] == "application/json"
        assert headers["webhook-signature"].startswith("v1,")
        assert verify_standard_webhook(key, headers, body)
        assert not verify_standard_webhook(new_secret(), headers, body)
        assert not verify_standard_webhook(key, headers, body + b" ")
    note = json.loads(bodies.pop())
    assert note["type"] == "scheduled_report.succeeded"
    data = note["data"]
    assert (data["schedule"], data["run_id"], data["report"]["id"]) == ("monthly", str(run.id), run.report_id)
    assert data["period"]["label"] == f"{month.year:04d}-{month.month:02d}"
    assert data["report"]["pdf_sha256"]
    assert data["report"]["pdf"] == f"/api/v1/reports/{run.report_id}/pdf"
    statuses = [o for _a, o in await audit_rows(settings, "schedule.run")]
    assert statuses == ["failure", "success", "success"]  # delivery failed, run succeeded, delivered


async def test_email_with_the_signed_pdf_after_a_mail_server_outage(upstream_settings: Settings) -> None:
    import email  # noqa: PLC0415
    import email.policy  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from aiosmtpd.controller import Controller  # noqa: PLC0415

    class Mailbox:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
            self.envelopes.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a port where, at first, no mail server listens
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    settings = dataclasses.replace(upstream_settings, smtp_url=Secret(f"smtp://127.0.0.1:{port}"))
    recipients = ["dpo@example.com", "works-council@example.com"]
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(
        settings,
        active_from=due - dt.timedelta(days=1),
        delivery={"email_to": recipients, "email_attach_pdf": True},
    )
    [outcome] = await run_due(settings, due)
    assert outcome.status == "succeeded"
    [run] = await runs_of(settings, schedule_id)
    assert (run.delivery_status, run.delivery_attempts, run.delivered_channels) == ("failed", 2, None)
    assert (
        run.delivery_error
        == "the mail server refused the message or could not be reached (ConnectionRefusedError)"
    )
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        [again] = await run_due(settings, due + dt.timedelta(seconds=700))
    finally:
        controller.stop()
    assert again.status == "delivered"
    [run] = await runs_of(settings, schedule_id)
    assert (run.delivery_status, run.delivered_channels, run.delivery_error) == ("delivered", "email", None)
    [envelope] = mailbox.envelopes
    assert sorted(envelope.rcpt_tos) == sorted(recipients)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == f"Compliance report {run.period_label} (monthly) is ready"
    assert run.report_id is not None
    assert run.report_id in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"monthly-{run.period_label}.pdf"
    pdf = attachment.get_content()
    [report] = await reports_of(settings, schedule_id)
    assert hashlib.sha256(pdf).hexdigest() == report.pdf_sha256
    assert pdf.startswith(b"%PDF-")
    # each attempt to hand the PDF out was recorded first (fail closed): two refused, one accepted
    assert await audit_rows(settings, "report.downloaded") == [("report.downloaded", "success")] * 3


async def test_a_slow_delivery_keeps_the_runs_lease(upstream_settings: Settings) -> None:
    """A webhook that answers late must not let the lease lapse meanwhile: another replica would take the run
    over, notify again and fence the first one's result out."""
    import time  # noqa: PLC0415

    settings = dataclasses.replace(
        upstream_settings, webhook_keys={"ODEUS_COMPLIANCE_WEBHOOK_TEST": Secret(new_secret())}
    )
    leases: list[dt.datetime | None] = []

    async def lease_now() -> dt.datetime | None:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                return (await session.execute(select(ScheduleRun.lease_expires_at))).scalar_one()
        finally:
            await engine.dispose()

    def slow() -> None:  # in the receiver's thread: the lease before and after a wait of three leases
        leases.append(asyncio.run(lease_now()))
        time.sleep(3.0)
        leases.append(asyncio.run(lease_now()))

    receiver = Receiver([], on_request=slow)
    try:
        month = last_closed_month_start()
        due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
        await create_schedule(
            settings,
            active_from=due - dt.timedelta(days=1),
            delivery={"webhook_url": receiver.url, "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_TEST"},
        )
        async with standalone_scheduler(
            settings, run_settings=dataclasses.replace(FAST, lease_seconds=1.0)
        ) as scheduler:
            [outcome] = await scheduler.run_due(due)
    finally:
        receiver.close()
    assert outcome.status == "succeeded"
    assert len(leases) == 2
    before, after = leases
    assert before is not None
    assert after is not None
    assert after > before  # renewed while the receiver took its time


async def test_a_long_backoff_keeps_the_runs_lease(
    upstream_settings: Settings, sim: RunningSimulator
) -> None:
    """A backoff longer than the lease must not let another replica take the run over in the middle."""
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=1))
    sim.faults.fail_next(500, status=503)
    leases: list[dt.datetime | None] = []

    async def lease_now() -> dt.datetime | None:
        engine = create_engine_for(upstream_settings)
        try:
            async with session_factory(engine)() as session:
                return (await session.execute(select(ScheduleRun.lease_expires_at))).scalar_one()
        finally:
            await engine.dispose()

    async def backoff(seconds: float) -> None:  # the backoff, observed: the lease before and after it
        if seconds != 0.07:  # a poll of the report job, not the backoff
            await asyncio.sleep(seconds)
            return
        leases.append(await lease_now())
        await asyncio.sleep(3.0)
        leases.append(await lease_now())

    async with standalone_scheduler(
        upstream_settings,
        run_settings=dataclasses.replace(FAST, lease_seconds=1.0, backoff_seconds=0.07),
        sleep=backoff,
    ) as scheduler:
        [outcome] = await scheduler.run_due(due)
    assert outcome.status == "failed"
    assert len(leases) == 2  # one backoff: two attempts per tick
    before, after = leases
    assert before is not None
    assert after is not None
    assert after > before  # renewed during the backoff


async def test_a_failed_run_is_told_by_webhook_and_e_mail_naming_no_one(
    upstream_settings: Settings, sim: RunningSimulator
) -> None:
    """The channels of a success carry the failure: a Standard Webhooks ``scheduled_report.failed`` and an
    e-mail with the schedule, the period and a reason code; neither names anyone of the workspace. A retry
    that fails again is not news; the run's last failure (no attempt left) is told again."""
    import email  # noqa: PLC0415
    import email.policy  # noqa: PLC0415
    import json  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from aiosmtpd.controller import Controller  # noqa: PLC0415

    class Mailbox:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
            self.envelopes.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    key = new_secret()
    settings = dataclasses.replace(
        upstream_settings,
        smtp_url=Secret(f"smtp://127.0.0.1:{port}"),
        webhook_keys={"ODEUS_COMPLIANCE_WEBHOOK_TEST": Secret(key)},
    )
    receiver = Receiver([])
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    try:
        schedule_id = await create_schedule(
            settings,
            active_from=due - dt.timedelta(days=1),
            delivery={
                "webhook_url": receiver.url,
                "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_TEST",
                "email_to": ["dpo@example.com"],
            },
        )
        sim.faults.fail_next(500, status=503)  # the upstream is down for the whole test
        [outcome] = await run_due(settings, due)
        assert outcome.status == "failed"
        assert (len(receiver.received), len(mailbox.envelopes)) == (1, 1)
        # the retry a minute later fails again: not told a second time
        [again] = await run_due(settings, due + dt.timedelta(seconds=60))
        assert again.status == "failed"
        assert (len(receiver.received), len(mailbox.envelopes)) == (1, 1)
        # out of attempts: the last failure is told
        async with standalone_scheduler(
            settings, run_settings=dataclasses.replace(FAST, max_attempts=5)
        ) as scheduler:
            [last] = await scheduler.run_due(due + dt.timedelta(seconds=7200))
        assert last.status == "failed"
        [run] = await runs_of(settings, schedule_id)
        assert run.next_retry_at is None
        assert (len(receiver.received), len(mailbox.envelopes)) == (2, 2)
    finally:
        controller.stop()
        receiver.close()
    sent: list[str] = []
    for (headers, body), final in zip(receiver.received, (False, True), strict=True):
        assert headers["webhook-id"] == f"{run.id}-failed-{'final' if final else 'first'}"
        assert verify_standard_webhook(key, headers, body)
        note = json.loads(body)
        assert note["type"] == "scheduled_report.failed"
        data = note["data"]
        assert (data["schedule"], data["run_id"], data["reason"]) == (
            "monthly",
            str(run.id),
            "upstream_failed",
        )
        assert data["period"]["label"] == run.period_label
        assert (data["next_retry_at"] is None) == final
        sent.append(body.decode())
    for envelope, final in zip(mailbox.envelopes, (False, True), strict=True):
        assert envelope.rcpt_tos == ["dpo@example.com"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message["Subject"] == f"Compliance report {run.period_label} (monthly) failed"
        assert not list(message.iter_attachments())
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "Reason code: upstream_failed" in text
        assert run.period_label in text
        assert ("no attempt left" in text) == final
        sent.append(text)
    users = sim.workspace.users
    for value in [*users.ids, *users.emails, *users.names]:
        assert all(value not in message_text for message_text in sent), "a notice names someone"
