"""The schedule API over a real server: upsert by name, read back, bad schedules refused clearly, audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, issue_keys, run_server

BODY: dict[str, Any] = {
    "name": "monthly-berlin",
    "every": "month",
    "day": 2,
    "time": "06:30",
    "timezone": "Europe/Berlin",
    "policy": "default",
    "catch_up": "skip-and-record",
}
DELIVERY: dict[str, Any] = {
    "webhook_url": "https://hooks.example.com/T0KEN-secret-path",
    "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_HOOK",
    "email_to": ["dpo@example.com"],
}


@pytest.fixture
def mail_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service with e-mail allowed to one domain only."""
    settings = dataclasses.replace(migrated_settings, mail_recipients=frozenset({"@example.com"}))
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


def test_delivery_is_an_officers_and_goes_only_to_allowed_recipients(mail_server: LiveServer) -> None:
    admin, officer, auditor = (mail_server.auth(r) for r in (Role.ADMIN, Role.OFFICER, Role.AUDITOR))
    with httpx.Client(base_url=mail_server.base_url, timeout=30) as client:
        # an admin may not name recipients, not even while creating the schedule
        refused = client.put("/api/v1/schedules", json={**BODY, "delivery": DELIVERY}, headers=admin)
        assert refused.status_code == 403
        assert "dpo@" not in refused.text
        schedule = client.put("/api/v1/schedules", json=BODY, headers=admin).json()
        path = f"/api/v1/schedules/{schedule['id']}/delivery"
        assert client.put(path, json=DELIVERY, headers=admin).status_code == 403
        assert client.put(path, json=DELIVERY, headers=auditor).status_code == 403
        # an officer may, to allowed recipients only; the refusal names the entry, never the address
        outside = client.put(path, json={"email_to": ["dpo@example.com", "x@evil.test"]}, headers=officer)
        assert outside.status_code == 400
        assert "entry 2" in outside.json()["detail"]
        assert "evil" not in outside.text
        # hidden characters and look-alikes: refused, not sent somewhere that merely reads the same
        for spoof in ("dpo@example.com\u200b", " dpo@example.com", "dpo@ex\u0430mple.com"):
            spoofed = client.put(path, json={"email_to": [spoof]}, headers=officer)
            assert spoofed.status_code == 400, spoof
            assert "entry 1" in spoofed.json()["detail"]
        webhook = client.put(
            path, json={**DELIVERY, "webhook_url": "http://x.example/T0KEN"}, headers=officer
        )
        assert webhook.status_code == 400
        assert "T0KEN" not in webhook.text
        done = client.put(path, json=DELIVERY, headers=officer)
        assert done.status_code == 200, done.text
        assert done.json()["delivery"]["email_recipients"] == 1
        # the admin changes the schedule later: the officer's delivery stays
        changed = client.put("/api/v1/schedules", json={**BODY, "time": "07:00"}, headers=admin).json()
        assert changed["delivery"]["email_recipients"] == 1
        entries = client.get(
            "/api/v1/audit/entries",
            params={"action": "schedule.changed", "purpose": "schedule test"},
            headers=auditor,
        )
        records = [e["record"] for e in entries.json()["entries"]]
        by_role = [(r["role"], r["details"].get("recipients")) for r in records]
        assert [role for role, _ in by_role] == ["admin", "officer", "admin"]
        recipients = by_role[1][1]
        assert recipients is not None
        assert re.fullmatch(r"[0-9a-f]{10}", recipients)  # a keyed hash, never the address
        assert "dpo" not in entries.text


def test_put_creates_then_changes_and_get_reads_back(live_server: LiveServer) -> None:
    admin, officer, auditor = (live_server.auth(r) for r in (Role.ADMIN, Role.OFFICER, Role.AUDITOR))
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        created = client.put("/api/v1/schedules", json=BODY, headers=admin)
        assert created.status_code == 200, created.text
        first = created.json()
        assert (first["name"], first["every"], first["day"], first["time"]) == (
            "monthly-berlin",
            "month",
            2,
            "06:30",
        )
        assert first["revision"] == 1
        assert first["catch_up"] == "skip-and-record"
        # delivery is summarised (an officer sets it; see the test above): the archive only, so far
        assert first["delivery"] == {
            "archive": True,
            "webhook": False,
            "email_recipients": 0,
            "email_attach_pdf": False,
        }
        # next due: day 2 at 06:30 Berlin time after the period
        due = dt.datetime.fromisoformat(first["next_due_at"])
        assert (due.day, due.hour, due.minute) == (2, 6, 30)
        assert due > dt.datetime.now(dt.UTC)

        # the same definition again changes nothing; a new one bumps the revision, keeping the id
        assert client.put("/api/v1/schedules", json=BODY, headers=admin).json()["revision"] == 1
        changed = client.put("/api/v1/schedules", json={**BODY, "time": "07:00"}, headers=admin).json()
        assert (changed["id"], changed["revision"], changed["time"]) == (first["id"], 2, "07:00")

        listed = client.get("/api/v1/schedules", headers=officer)
        assert listed.status_code == 200
        assert [s["name"] for s in listed.json()["schedules"]] == ["monthly-berlin"]
        runs = client.get(f"/api/v1/schedules/{first['id']}/runs", headers=officer)
        assert runs.status_code == 200
        assert runs.json() == {"schedule_id": first["id"], "runs": []}

        # an officer may read but not change; an auditor may do neither; no key, no answer
        assert client.put("/api/v1/schedules", json=BODY, headers=officer).status_code == 403
        assert client.put("/api/v1/schedules", json=BODY, headers=auditor).status_code == 403
        assert client.get("/api/v1/schedules", headers=auditor).status_code == 403
        assert client.get(f"/api/v1/schedules/{first['id']}/runs", headers=auditor).status_code == 403
        assert client.get("/api/v1/schedules").status_code == 401
        assert client.get(f"/api/v1/schedules/{first['id']}/runs").status_code == 401
        assert client.put("/api/v1/schedules", json=BODY).status_code == 401

        # two changes, two schedule.changed records (the unchanged PUT wrote none)
        entries = client.get(
            "/api/v1/audit/entries",
            params={"action": "schedule.changed", "purpose": "schedule test"},
            headers=auditor,
        )
        assert entries.status_code == 200, entries.text
        records = [e["record"] for e in entries.json()["entries"]]
        assert [r["details"]["status"] for r in records] == ["created", "changed"]
        assert all(r["details"]["schedule"] == "monthly-berlin" for r in records)


def test_bad_schedules_are_refused_with_clear_problems(live_server: LiveServer) -> None:
    admin = live_server.auth(Role.ADMIN)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone is not a known IANA time zone", "Olympus"),
        ({"policy": "no-such-policy"}, "policy is not a policy of the policy folder", "no-such-policy"),
        ({"day": 31}, "day must be a day of the month from 1 to 28", None),
        ({"time": "25:61"}, "'time' must match the pattern ^([01][0-9]|2[0-3]):[0-5][0-9]$", "25:61"),
        ({"catch_up": "maybe"}, "'catch_up' must be one of: run-missed-once, skip-and-record", "maybe"),
    ]
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        for changes, message, secret in cases:
            response = client.put("/api/v1/schedules", json={**BODY, **changes}, headers=admin)
            assert response.status_code == 400, (changes, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert message in response.json()["detail"], (changes, response.text)
            if secret is not None:
                assert secret not in response.text
        # nothing was stored by the refused requests
        assert client.get("/api/v1/schedules", headers=admin).json() == {"schedules": []}
        unknown = client.get("/api/v1/schedules/00000000-0000-4000-8000-000000000000/runs", headers=admin)
        assert unknown.status_code == 404
