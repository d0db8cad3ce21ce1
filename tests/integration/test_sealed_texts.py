"""Report purposes and schedule e-mail recipients at rest, on SQLite and PostgreSQL: sealed under the audit
log's key epoch (never in clear in the database), opened for the roles and steps that use them, and
shredded with the epoch by retention, like the audit records that carry them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from odeus_compliance.app import create_app
from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import AuditEntry, Report, utcnow
from odeus_compliance.db.schedule_tables import Schedule
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.keys.ring import KeyEncryptionKey
from odeus_compliance.keys.sealed_text import SealedTextError, TextSealer
from odeus_compliance.reports.actions import request_report
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod
from odeus_compliance.reports.purposes import open_purpose
from odeus_compliance.reports.service import resolve_request
from odeus_compliance.scheduling.changes import change_schedule
from odeus_compliance.scheduling.delivery import Deliverer, RunTarget, channels
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.run_settings import RunSettings
from odeus_compliance.scheduling.service import delivery_summary, find_schedule, load_spec
from odeus_compliance.security import Role
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import run_simulator
from tests.support.retention import FAR, World, run
from tests.support.server import LiveServer, issue_keys, last_month, run_server

PURPOSE = "Prüfung der Akte Zebra7731 nach Hinweis von Erika Mustermann"
EMAILS = ["quokka.dpo7731@example.com", "betriebsrat7731@example.com"]
NEEDLES = [PURPOSE, "Zebra7731", "Mustermann", *EMAILS, "quokka", "betriebsrat7731"]
"""What must never be found in the database in clear (whole values and distinctive parts)."""
SCHEDULE: dict[str, Any] = {
    "name": "monthly-sealed",
    "every": "month",
    "day": 2,
    "time": "06:30",
    "timezone": "Europe/Berlin",
    "policy": "default",
}


async def _database_text(settings: Settings) -> str:
    """Every row of every table, as the database renders it as text (bytes as hex)."""
    if settings.is_sqlite:
        tables_query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        dump = 'SELECT * FROM "{}"'
    else:
        tables_query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        dump = 'SELECT t::text FROM "{}" t'
    engine = create_engine_for(settings)
    values: list[str] = []
    try:
        async with engine.connect() as conn:
            for (name,) in (await conn.execute(text(tables_query))).all():
                for row in (await conn.execute(text(dump.format(name)))).all():
                    values.extend(v.hex() if isinstance(v, bytes) else str(v) for v in row)
    finally:
        await engine.dispose()
    return "\n".join(values)


def _database_files(settings: Settings) -> bytes:
    """The SQLite database file and its WAL and shared-memory files, as bytes."""
    path = Path(settings.database_url.split(":///", 1)[1])
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def assert_not_in_clear(settings: Settings) -> None:
    text_ = await _database_text(settings)
    for needle in NEEDLES:
        assert needle not in text_, needle
        assert needle.encode().hex() not in text_, needle
    if settings.is_sqlite:
        raw = _database_files(settings)
        assert raw, "no database file found"
        for needle in NEEDLES:
            assert needle.encode("utf-8") not in raw, needle


@pytest.fixture
def sealed_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service pulling from the built-in simulator, e-mail allowed to one domain."""
    with run_simulator(SimulatorConfig(users=30, seed=5)) as sim:
        settings = dataclasses.replace(
            migrated_settings,
            odeus_base_url=sim.base_url,
            odeus_api_key=Secret(sim.api_key),
            download_hosts=frozenset({sim.download_host}),
            mail_recipients=frozenset({"@example.com"}),
        )
        ensure_demo_certificate(settings.data_dir, settings.require_master_key())
        keys = issue_keys(settings)
        with run_server(create_app(settings)) as base_url:
            yield LiveServer(base_url=base_url, settings=settings, keys=keys)


def _wait(client: httpx.Client, server: LiveServer, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240  # only so that a broken job cannot hang CI
    while True:
        body: dict[str, Any] = client.get(location, headers=server.auth(Role.OFFICER)).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_purpose_and_recipients_are_sealed_at_rest_and_shown_to_the_right_roles(
    sealed_server: LiveServer,
) -> None:
    server = sealed_server
    admin, officer, auditor = (server.auth(r) for r in (Role.ADMIN, Role.OFFICER, Role.AUDITOR))
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        schedule = client.put("/api/v1/schedules", json=SCHEDULE, headers=admin)
        assert schedule.status_code == 200, schedule.text
        schedule_id = schedule.json()["id"]
        delivery = client.put(
            f"/api/v1/schedules/{schedule_id}/delivery", json={"email_to": EMAILS}, headers=officer
        )
        assert delivery.status_code == 200, delivery.text
        queued = client.post(
            "/api/v1/reports",
            json={
                "month": last_month(),
                "timezone": "Europe/Berlin",
                "policy": "default",
                "purpose": PURPOSE,
            },
            headers=officer,
        )
        assert queued.status_code == 202, queued.text
        report_id = queued.json()["id"]
        final = _wait(client, server, queued.headers["location"])
        assert final["status"] == "succeeded", final
        # an admin changes the schedule: the recipients are opened and kept
        changed = client.put("/api/v1/schedules", json={**SCHEDULE, "time": "07:00"}, headers=admin)
        assert changed.json()["delivery"]["email_recipients"] == 2

        # auditors read the purpose in the log: as requested, and as the job read it back from its row
        entries = client.get(
            "/api/v1/audit/entries",
            params={"resource": f"report:{report_id}", "limit": 100, "purpose": "sealed texts test"},
            headers=auditor,
        )
        assert entries.status_code == 200, entries.text
        purposes = {e["record"]["action"]: e["record"]["purpose"] for e in entries.json()["entries"]}
        assert purposes["report.requested"] == PURPOSE
        assert purposes["export.fetched"] == PURPOSE  # written by the job from the sealed row
        assert purposes["report.generated"] == PURPOSE
        # admins and officers see how many recipients a schedule has, never the addresses
        for who in (admin, officer):
            listed = client.get("/api/v1/schedules", headers=who)
            assert listed.status_code == 200, listed.text
            (only,) = listed.json()["schedules"]
            assert only["delivery"]["email_recipients"] == 2
            assert not any(e in listed.text for e in EMAILS)
        assert client.get("/api/v1/schedules", headers=auditor).status_code == 403

    asyncio.run(assert_not_in_clear(server.settings))

    async def stored() -> tuple[str | None, tuple[str, ...]]:
        engine = create_engine_for(server.settings)
        sessions = session_factory(engine)
        kek = KeyEncryptionKey(server.settings.require_master_key())
        try:
            async with sessions() as session:
                row = await session.get(Report, report_id)
                assert row is not None
                assert row.purpose.startswith("sealed:v1:audit-data:")
                schedule_row = await find_schedule(session=session, name=SCHEDULE["name"])
                assert schedule_row is not None
                spec = await load_spec(session=session, row=schedule_row, sealer=TextSealer(kek))
            purpose = await open_purpose(kek, sessions, report_id=report_id, stored=row.purpose)
            return purpose, spec.delivery.email_to
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == (PURPOSE, tuple(EMAILS))


def test_retention_shreds_them_with_their_key_epoch(migrated_settings: Settings) -> None:
    settings = dataclasses.replace(migrated_settings, mail_recipients=frozenset({"@example.com"}))

    async def body(w: World) -> None:
        recorder = Recorder(w.appender, SYSTEM_CLI)
        wanted = resolve_request(
            period=ReportPeriod.month(2026, 8, "Europe/Berlin"),
            policy="default",
            purpose=PURPOSE,
            policy_dir=w.settings.policy_dir,
        )
        jobs = ReportJobs(w.sessions, kek=w.kek)  # as the runtime makes them
        record = await request_report(recorder, jobs=jobs, wanted=wanted, requested_by="cli")
        spec = ScheduleSpec.build(delivery={"email_to": EMAILS}, **SCHEDULE)
        async with w.sessions() as session:
            await change_schedule(
                recorder,
                session=session,
                spec=spec,
                policy_dir=w.settings.policy_dir,
                now=utcnow(),
                allowed_recipients=settings.mail_recipients,
                hasher=RecipientHasher(settings.require_master_key()),
            )
        await assert_not_in_clear(w.settings)
        old_key = await w.scalar(select(AuditEntry.key_id).order_by(AuditEntry.seq).limit(1))
        sealer = TextSealer(w.kek)

        async def read_back() -> tuple[str, str | None, Schedule, ScheduleSpec]:
            async with w.sessions() as session:
                row = await session.get(Report, record.id, populate_existing=True)
                schedule = await find_schedule(session=session, name=SCHEDULE["name"])
                assert row is not None
                assert schedule is not None
                await session.refresh(schedule)
                opened = await load_spec(session=session, row=schedule, sealer=sealer)
            purpose = await open_purpose(w.kek, w.sessions, report_id=record.id, stored=row.purpose)
            return row.purpose, purpose, schedule, opened

        stored, purpose, schedule, opened = await read_back()
        assert stored.startswith(f"sealed:v1:{old_key}:")  # the epoch of the records that carry it
        assert purpose == PURPOSE
        assert opened.delivery.email_to == tuple(EMAILS)
        assert delivery_summary(schedule)["email_recipients"] == 2

        # far in the future the epoch's records are past retention: its key is destroyed
        result = await w.purge().run(now=utcnow() + FAR)
        assert old_key in result.due["audit-payloads"]
        assert await w.destroyed(str(old_key))

        stored, purpose, schedule, opened = await read_back()
        assert purpose is None  # the queued job's row stays (retention never removes an open job)
        assert stored == f"sealed:v1:{old_key}:"  # and its ciphertext went with the key
        assert opened.delivery.email_to == ()
        assert opened.delivery.recipients_shredded
        assert delivery_summary(schedule) == {
            "archive": True,
            "webhook": False,
            "email_recipients": 0,
            "email_attach_pdf": False,
            "email_recipients_shredded": True,
        }
        assert "email_sealed" not in json.loads(schedule.delivery)
        # a delivery to them now fails, saying why, rather than silently sending to no one
        assert channels(opened) == frozenset({"email"})
        deliverer = Deliverer(recorder=recorder, settings=RunSettings(), sleep=lambda _s: asyncio.sleep(0))
        target = RunTarget(schedule, opened, None, None)  # type: ignore[arg-type]
        reason = await deliverer.send("email", target, None)  # type: ignore[arg-type]
        assert reason is not None
        assert "shredded by retention" in reason
        assert (await w.verify())[0]  # the log still verifies, the epoch's records pruned

        # an officer sets them again: sealed under the current epoch, readable
        async with w.sessions() as session:
            saved = await change_schedule(
                recorder,
                session=session,
                spec=spec,
                policy_dir=w.settings.policy_dir,
                now=utcnow() + FAR,
                allowed_recipients=settings.mail_recipients,
                hasher=RecipientHasher(settings.require_master_key()),
            )
        assert saved.changed
        _stored, _purpose, schedule, opened = await read_back()
        assert opened.delivery.email_to == tuple(EMAILS)
        assert not opened.delivery.recipients_shredded
        await assert_not_in_clear(w.settings)

    run(body, settings)


def test_a_sealed_text_opens_only_where_it_was_sealed(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        sealer = TextSealer(w.kek)
        async with w.sessions() as session:
            sealed = await sealer.seal(session, PURPOSE, context="report-purpose:rpt_a")
            assert PURPOSE not in sealed
            assert await sealer.open(session, sealed, context="report-purpose:rpt_a") == PURPOSE
            with pytest.raises(SealedTextError):  # copied to another row
                await sealer.open(session, sealed, context="report-purpose:rpt_b")
            with pytest.raises(SealedTextError):  # altered
                await sealer.open(session, sealed[:-6] + "AAAAAA", context="report-purpose:rpt_a")
            with pytest.raises(SealedTextError):  # a key the ring does not hold
                await sealer.open(
                    session, "sealed:v1:audit-data:9:00000000:AAAA", context="report-purpose:rpt_a"
                )
            with pytest.raises(SealedTextError):
                await sealer.open(session, "sealed:v1:", context="report-purpose:rpt_a")
            # a value stored before sealing existed is read as it is
            assert await sealer.open(session, "plain old purpose", context="x") == "plain old purpose"
            assert "*" in repr(sealer)

    run(body, migrated_settings)
