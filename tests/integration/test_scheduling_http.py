"""The schedule API over a real server: upsert by name, read back, bad schedules refused clearly, audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from odeus_compliance.security import Role
from tests.support.server import LiveServer

BODY: dict[str, Any] = {
    "name": "monthly-berlin",
    "every": "month",
    "day": 2,
    "time": "06:30",
    "timezone": "Europe/Berlin",
    "policy": "default",
    "catch_up": "skip-and-record",
    "delivery": {
        "webhook_url": "https://hooks.example.com/T0KEN-secret-path",
        "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_HOOK",
        "email_to": ["dpo@example.com"],
    },
}


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
        # delivery is summarised: the URL (it carries a token) and the addresses never come back
        assert first["delivery"] == {
            "archive": True,
            "webhook": True,
            "email_recipients": 1,
            "email_attach_pdf": False,
        }
        assert "T0KEN" not in created.text
        assert "dpo@" not in created.text
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
        assert "T0KEN" not in entries.text


def test_bad_schedules_are_refused_with_clear_problems(live_server: LiveServer) -> None:
    admin = live_server.auth(Role.ADMIN)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone is not a known IANA time zone", "Olympus"),
        ({"policy": "no-such-policy"}, "policy is not a policy of the policy folder", "no-such-policy"),
        ({"day": 31}, "day must be a day of the month from 1 to 28", None),
        ({"time": "25:61"}, "time must be HH:MM", "25:61"),
        ({"catch_up": "maybe"}, "catch_up must be one of", "maybe"),
        (
            {
                "delivery": {
                    "webhook_url": "http://x.example/T0KEN",
                    "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_K",
                }
            },
            "https://",
            "T0KEN",
        ),
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
