"""The admins' console pages over a real loopback server (SQLite and PostgreSQL), checked against the API:
a schedule made and changed through the form is the one ``GET /api/v1/schedules`` shows, a bad field is
refused beside it (400) and changes nothing, the run history shows the runs the API lists; a key issued in the
console is shown once, works, is recorded with the person as the actor and is nowhere in the records, the
database or the logs; a revoked key gets 401; the policies are the API's; a key rotation is recorded. Officers
and auditors get a 403 page on every admin page, a page without a session sends to sign-in, and a form without
its CSRF token is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from contextlib import AbstractContextManager
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.ring import list_epochs
from odeus_compliance.scheduling.claims import Lease, claim_new, finish, mark_running
from odeus_compliance.scheduling.periods import Every, period_containing
from odeus_compliance.security import Role
from tests.support.audit import sql
from tests.support.console_session import audit_records, sign_in_link, signed_in_client
from tests.support.logs import captured_json_logs
from tests.support.server import LiveServer

ADMIN_PAGES: Final = (
    "/console/schedules",
    "/console/schedules/new",
    "/console/apikeys",
    "/console/policies",
    "/console/policies/default",
    "/console/keys",
    "/console/keys/report-data/rotate",
)
FORM: Final = {
    "name": "monthly-berlin",
    "every": "month",
    "day": "2",
    "time": "06:30",
    "timezone": "Europe/Berlin",
    "policy": "default",
    "catch_up": "skip-and-record",
    "enabled": "on",
}


def _admin(server: LiveServer) -> AbstractContextManager[httpx.Client]:
    return signed_in_client(
        server.base_url, sign_in_link(server.settings, server.base_url, "Ada Admin", "admin")
    )


def _csrf(client: httpx.Client, path: str = "/console/") -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert found is not None
    return found[1]


def _api_schedules(server: LiveServer) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.base_url}/api/v1/schedules", headers=server.auth(Role.ADMIN), timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["schedules"])


def _zoned(rfc3339: str) -> str:
    """An API time as the console writes it: ``2026-12-02 06:30 +01:00``."""
    when = dt.datetime.fromisoformat(rfc3339)
    return f"{when:%Y-%m-%d %H:%M} {when.isoformat()[-6:]}"


def _field_error(html: str, field: str) -> str:
    """The message beside ``field`` (the field points at it and is marked invalid)."""
    control = re.search(rf'<(?:input|select)[^>]*id="field-{field}"[^>]*>', html)
    assert control is not None, field
    assert 'aria-invalid="true"' in control[0]
    assert f"error-{field}" in control[0]  # aria-describedby names the message
    message = re.search(
        rf'<p class="field-error" id="error-{field}"><strong>Error:</strong> ([^<]+)</p>', html
    )
    assert message is not None, field
    return message[1]


def _make_runs(server: LiveServer, schedule_id: uuid.UUID) -> None:
    """Two runs as the scheduler makes them (the claims it uses): a failed one awaiting its retry, and an
    older period recorded as skipped by the catch-up rule."""

    async def go() -> None:
        engine = create_engine_for(server.settings)
        now = utcnow()
        lease = Lease(owner="test-runner", seconds=60)
        last = period_containing(Every.MONTH, now, "Europe/Berlin").previous()
        try:
            async with session_factory(engine)() as session:
                run = await claim_new(
                    session=session, schedule_id=schedule_id, period=last, due_at=now, version=1,
                    lease=lease, now=now,
                )  # fmt: skip
                assert run is not None
                assert await mark_running(session=session, run_id=run.id, lease=lease, now=now)
                assert await finish(
                    session=session, run_id=run.id, lease=lease, now=now, status="failed",
                    error="upstream_unreachable", next_retry_at=now + dt.timedelta(minutes=10),
                )  # fmt: skip
                await session.commit()
                skipped = await claim_new(
                    session=session, schedule_id=schedule_id, period=last.previous(), due_at=now, version=1,
                    lease=lease, now=now, skipped_reason="missed_while_down",
                )  # fmt: skip
                assert skipped is not None
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_a_schedule_made_and_changed_in_the_console_is_the_apis(live_server: LiveServer) -> None:
    server = live_server
    with _admin(server) as admin:
        assert "There are no schedules yet" in admin.get("/console/schedules").text
        token = _csrf(admin, "/console/schedules/new")
        made = admin.post("/console/schedules/new", data={**FORM, "csrf_token": token})
        assert made.status_code == 303, made.text
        (schedule,) = _api_schedules(server)
        assert made.headers["location"] == f"/console/schedules/{schedule['id']}?saved=1"
        expected = {k: FORM[k] for k in ("name", "every", "time", "timezone", "policy", "catch_up")}
        assert {k: schedule[k] for k in expected} == expected
        assert (schedule["day"], schedule["enabled"], schedule["revision"]) == (2, True, 1)
        listing = admin.get("/console/schedules").text
        assert f'href="/console/schedules/{schedule["id"]}">monthly-berlin</a>' in listing
        assert _zoned(schedule["next_due_at"]) in listing
        assert schedule["next_period"] in listing

        # each bad field: 400, the message beside it, nothing changed
        bad = {
            "timezone": ("Mars/Olympus_Mons", "is not a known IANA time zone"),
            "policy": ("no-such-policy", "is not a policy of the policy folder"),
            "day": ("31", "must be a day of the month from 1 to 28"),
            "time": ("25:00", "must match the pattern"),
            "every": ("fortnight", "must be one of: month, quarter, week"),
            "name": ("monthly-berlin", "is the name of another schedule"),
        }
        for field, (value, rule) in bad.items():
            form = {**FORM, "name": "other", field: value, "csrf_token": token}
            refused = admin.post("/console/schedules/new", data=form)
            assert refused.status_code == 400, field
            assert "text/html" in refused.headers["content-type"]
            assert rule in _field_error(refused.text, field)
            assert f'href="#field-{field}"' in refused.text  # the summary leads to the field
        changed_path = f"/console/schedules/{schedule['id']}"
        refused = admin.post(changed_path, data={**FORM, "day": "0", "csrf_token": token})
        assert refused.status_code == 400
        assert "must be a day of the month" in _field_error(refused.text, "day")
        assert _api_schedules(server) == [schedule]

        # changed through its page: the name stays (the API matches by name), unchecked means disabled
        edit = {k: v for k, v in FORM.items() if k != "enabled"} | {"time": "07:15", "name": "renamed"}
        saved = admin.post(changed_path, data={**edit, "csrf_token": token})
        assert saved.status_code == 303
        assert saved.headers["location"] == f"{changed_path}?saved=1"
        (after,) = _api_schedules(server)
        assert (after["name"], after["time"], after["enabled"], after["revision"]) == (
            "monthly-berlin", "07:15", False, 2,
        )  # fmt: skip
        again = admin.post(changed_path, data={**edit, "csrf_token": token})
        assert again.headers["location"] == f"{changed_path}?saved=unchanged"
        page = admin.get(f"{changed_path}?saved=1").text
        assert "The schedule was saved." in page
        assert 'value="07:15"' in page
        assert "has no runs" in page
        assert admin.get(f"/console/schedules/{uuid.uuid4()}").status_code == 404

    changes = audit_records(server.base_url, server.keys[Role.AUDITOR], action="schedule.changed")
    assert [r["details"]["status"] for r in changes] == ["created", "changed"]
    for record in changes:
        assert record["actor_name"] == "Ada Admin"
        assert record["actor_key_id"].startswith("console:")
        assert record["role"] == "admin"
        assert record["resource"] == f"schedule:{schedule['id']}"


def test_the_run_history_shows_what_the_api_lists(live_server: LiveServer) -> None:
    server = live_server
    with _admin(server) as admin:
        token = _csrf(admin, "/console/schedules/new")
        assert admin.post("/console/schedules/new", data={**FORM, "csrf_token": token}).status_code == 303
        (schedule,) = _api_schedules(server)
        _make_runs(server, uuid.UUID(schedule["id"]))
        runs = httpx.get(
            f"{server.base_url}/api/v1/schedules/{schedule['id']}/runs",
            headers=server.auth(Role.ADMIN),
            timeout=30,
        ).json()["runs"]
        assert [r["status"] for r in runs] == ["failed", "skipped"]
        page = admin.get(f"/console/schedules/{schedule['id']}").text
    rows = re.findall(r"<tr>\s*<td>(\S+)<br>.*?</tr>", page, flags=re.DOTALL)
    assert rows == [r["period"] for r in runs]  # newest period first, as the API
    failed, skipped = runs
    assert '<span class="status-failed">failed</span>' in page
    assert '<span class="status-skipped">skipped</span>' in page
    assert "upstream_unreachable" in page
    assert "missed_while_down" in page
    retry = dt.datetime.fromisoformat(failed["next_retry_at"]).astimezone(ZoneInfo(failed["timezone"]))
    assert _zoned(retry.isoformat()) in page  # the retry time in the run's zone too
    assert _zoned(failed["due_at"]) in page
    assert re.search(rf'<td class="number">{failed["attempts"]}</td>', page)
    assert skipped["attempts"] == 0


def test_a_key_issued_in_the_console_is_shown_once_works_and_is_revoked(live_server: LiveServer) -> None:
    server = live_server
    with captured_json_logs() as logs, _admin(server) as admin:
        token = _csrf(admin, "/console/apikeys")
        for form, field in (
            ({"name": " ", "role": "auditor"}, "name"),
            ({"name": "x", "role": "root"}, "role"),
        ):
            refused = admin.post("/console/apikeys", data={**form, "csrf_token": token})
            assert refused.status_code == 400
            assert _field_error(refused.text, field)
        issued = admin.post(
            "/console/apikeys", data={"name": "Nightly export", "role": "auditor", "csrf_token": token}
        )
        assert issued.status_code == 200, issued.text
        assert issued.headers["cache-control"] == "no-store"
        found = re.search(
            r'id="issued-key" class="key-once" value="(oc_auditor_[A-Za-z0-9_-]{43})"', issued.text
        )
        assert found is not None
        plaintext = found[1]
        whoami = httpx.get(
            f"{server.base_url}/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
        )
        assert whoami.status_code == 200
        assert whoami.json()["name"] == "Nightly export"
        assert whoami.json()["role"] == "auditor"
        key_id = whoami.json()["key_id"]
        listing = admin.get("/console/apikeys").text
        assert plaintext not in listing
        assert key_id in listing
        assert "Nightly export" in listing

        confirm = admin.get(f"/console/apikeys/{key_id}/revoke")
        assert confirm.status_code == 200
        assert "Revoke the key" in confirm.text
        # the link alone revokes nothing; the confirmation's POST does
        assert httpx.get(
            f"{server.base_url}/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
        ).status_code == 200  # fmt: skip
        revoked = admin.post(f"/console/apikeys/{key_id}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
        assert revoked.headers["location"] == "/console/apikeys?revoked=1"
        assert "The key was revoked" in admin.get(revoked.headers["location"]).text
        assert (
            admin.post(f"/console/apikeys/{uuid.uuid4()}/revoke", data={"csrf_token": token}).status_code
            == 404
        )
    assert httpx.get(
        f"{server.base_url}/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    ).status_code == 401  # fmt: skip

    records = audit_records(server.base_url, server.keys[Role.AUDITOR])
    created = [r for r in records if r["action"] == "apikey.created" and r["resource"] == f"apikey:{key_id}"]
    withdrawn = [r for r in records if r["action"] == "apikey.revoked"]
    assert len(created) == 1
    assert len(withdrawn) == 1
    for record in (*created, *withdrawn):
        assert record["actor_name"] == "Ada Admin"
        assert record["actor_key_id"].startswith("console:")
        assert record["details"] == {"key_id": key_id, "role": "auditor"}
    stored = sql(server.settings, [("SELECT * FROM api_keys", {}), ("SELECT * FROM audit_entries", {})])
    secret_part = plaintext.split("_", 2)[2]
    for place in (repr(records), repr(stored), logs.getvalue()):
        assert secret_part not in place
        assert secret_part[:20] not in place


def test_policies_and_key_epochs_are_the_apis_and_a_rotation_is_recorded(live_server: LiveServer) -> None:
    server = live_server
    api = httpx.Client(base_url=server.base_url, headers=server.auth(Role.ADMIN), timeout=30)
    with api, _admin(server) as admin:
        policies = api.get("/api/v1/policies").json()["policies"]
        listing = admin.get("/console/policies").text
        assert len(re.findall(r'<a href="/console/policies/[^"]+">', listing)) == len(policies)
        for policy in policies:
            assert f'<a href="/console/policies/{policy["name"]}">' in listing
            assert policy["hash"] in listing
        detail = api.get("/api/v1/policies/default").json()
        page = admin.get("/console/policies/default").text
        assert detail["summary"]["hash"] in page
        for export, columns in detail["canonical"]["columns"].items():
            assert f"Export {export}" in page
            for column, rule in columns.items():
                assert re.search(rf"<td><code>{column}</code></td>\s*<td>{rule['op']}</td>", page), column
        assert admin.get("/console/policies/no-such-policy").status_code == 404

        epochs = asyncio.run(_epochs(server))
        keys_page = admin.get("/console/keys").text
        for _kind, key_id, _epoch, _destroyed in epochs:
            assert f"<code>{key_id}</code>" in keys_page
        assert admin.get("/console/keys/checkpoint-signing/rotate").status_code == 404
        assert admin.get("/console/keys/no-kind/rotate").status_code == 404
        token = _csrf(admin, "/console/keys/report-data/rotate")
        rotated = admin.post("/console/keys/report-data/rotate", data={"csrf_token": token})
        assert rotated.status_code == 303
        after = asyncio.run(_epochs(server))
        (new,) = [e for e in after if e not in epochs]
        assert new[0] == "report-data"
        assert new[2] == 2
        page = admin.get(rotated.headers["location"]).text
        assert "A new epoch was started" in page
        assert re.search(rf"<code>{new[1]}</code></td>\s*<td>[^<]+</td>\s*<td><strong>current</strong>", page)
    (record,) = audit_records(server.base_url, server.keys[Role.AUDITOR], action="key.rotated")
    assert record["actor_name"] == "Ada Admin"
    assert record["details"]["key_id"] == new[1]


async def _epochs(server: LiveServer) -> list[tuple[str, str, int, bool]]:
    engine = create_engine_for(server.settings)
    try:
        async with session_factory(engine)() as session:
            return await list_epochs(executor=session)
    finally:
        await engine.dispose()


def test_only_admins_get_the_pages_and_forms_need_their_token(live_server: LiveServer) -> None:
    server = live_server
    with _admin(server) as admin:
        token = _csrf(admin, "/console/apikeys")
        assert admin.post("/console/schedules/new", data=FORM).status_code == 403
        assert admin.post("/console/apikeys", data={"name": "no token", "role": "admin"}).status_code == 403
        wrong = {"name": "bad token", "role": "admin", "csrf_token": "x" * 43}
        assert admin.post("/console/apikeys", data=wrong).status_code == 403
        assert admin.post("/console/keys/report-data/rotate").status_code == 403
        key_id = httpx.get(
            f"{server.base_url}/api/v1/whoami", headers=server.auth(Role.OFFICER), timeout=30
        ).json()["key_id"]
        assert admin.post(f"/console/apikeys/{key_id}/revoke").status_code == 403
        assert admin.get("/console/schedules").status_code == 200  # still signed in
    assert _api_schedules(server) == []
    assert httpx.get(f"{server.base_url}/api/v1/whoami", headers=server.auth(Role.OFFICER)).status_code == 200
    names = [row[0] for row in sql(server.settings, [("SELECT name FROM api_keys", {})])[0]]
    assert "no token" not in names
    assert "bad token" not in names
    assert audit_records(server.base_url, server.keys[Role.AUDITOR], action="key.rotated") == []

    for name, role in (("Olga Officer", "officer"), ("Aude Auditor", "auditor")):
        link = sign_in_link(server.settings, server.base_url, name, role)
        with signed_in_client(server.base_url, link) as person:
            token = _csrf(person)
            for path in ADMIN_PAGES:
                answer = person.get(path)
                assert answer.status_code == 403, (role, path)
                assert "text/html" in answer.headers["content-type"]
                assert "Traceback" not in answer.text
            posts = ("/console/schedules/new", "/console/apikeys", "/console/keys/report-data/rotate")
            for path in posts:
                assert (
                    person.post(path, data={**FORM, "role": "admin", "csrf_token": token}).status_code == 403
                )
    with httpx.Client(base_url=server.base_url, timeout=30) as nobody:
        for path in ADMIN_PAGES:
            answer = nobody.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/console/sign-in?next={path}"
    assert _api_schedules(server) == []
    assert len(asyncio.run(_epochs(server))) == 4
