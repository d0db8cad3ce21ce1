"""Floods of bad keys over a real loopback server: refusals are counted per client and window, not recorded
one by one; past the limit they are answered 429 (problem+json, ``Retry-After``); the ``count`` of the
``access.denied`` records adds up to the refused requests; a valid key from the same address still works;
replicas sharing PostgreSQL share one counter; and the audit log still verifies.

The tests that need exact figures use a window far longer than the test (no window boundary can fall inside
it); the one that follows the windows' ends uses one-second windows and bounds what it sees by the number of
windows the flood spanned, measured around it (no assertion on how long anything takes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.audit.denials import DenialRules
from odeus_compliance.db.migrate import upgrade
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.audit import cli, sql
from tests.support.postgres import scratch_database
from tests.support.server import issue_keys, run_server

pytestmark = pytest.mark.slow

LONG_WINDOW = 10.0**10
"""Seconds: windows are aligned to the Unix epoch, so the one holding now ends in the year 2286."""
ROUTES = ("/api/v1/whoami", "/api/v1/reports", "/api/v1/audit/entries", "/api/v1/policies")


def _settings(tmp_path: Path, database_url: str, *, window: float, records: int, limit: int) -> Settings:
    base = Settings.for_tests(tmp_path / "data", database_url=database_url)
    settings = dataclasses.replace(
        base, denial_window_seconds=window, denial_records=records, denial_limit=limit
    )
    asyncio.run(upgrade(settings))
    return settings


def _bad_request(client: httpx.Client, i: int) -> httpx.Response:
    """A refused request: a made-up key (now and then none at all) on one of several routes."""
    headers = {} if i % 7 == 0 else {"Authorization": f"Bearer oc_officer_{secrets.token_urlsafe(24)}"}
    return client.get(ROUTES[i % len(ROUTES)], headers=headers)


def _exported_records(settings: Settings, out: Path) -> list[dict[str, Any]]:
    """Every record, read the way an auditor reads a stopped installation's log (``audit export``)."""
    result = cli(settings, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    assert result.returncode == 0, result.stderr
    bundle = json.loads(out.read_text(encoding="utf-8"))
    return [entry["record"] for entry in bundle["entries"] if entry["record"] is not None]


def _anonymous_denials(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["action"] == "access.denied" and r["role"] == "anonymous"]


def _assert_log_verifies(settings: Settings) -> None:
    result = cli(settings, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def _assert_too_many(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:odeus-compliance:problem:too-many-requests"
    assert body["status"] == 429
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1


def _audit_entries(client: httpx.Client, auditor: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit/entries", params={"limit": 1000, **params}, headers=auditor)
    assert response.status_code == 200, response.text
    return [entry["record"] for entry in response.json()["entries"]]


def test_a_flood_of_bad_keys_is_counted_not_recorded_one_by_one(tmp_path: Path, database_url: str) -> None:
    records, limit, flood = 3, 40, 300
    settings = _settings(tmp_path, database_url, window=LONG_WINDOW, records=records, limit=limit)
    keys = issue_keys(settings)
    officer = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
    auditor = {"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
    presented: list[str] = []
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        responses = []
        for i in range(flood):
            response = _bad_request(client, i)
            presented.append(response.request.headers.get("authorization", ""))
            responses.append(response)
        # the first `limit` refusals are answered as before, every later one 429 until the window ends
        assert [r.status_code for r in responses[:limit]] == [401] * limit
        for response in responses[limit:]:
            _assert_too_many(response)

        # the same address with a valid key is served; a wrong role is refused (403) on the key's own counter
        assert client.get("/api/v1/whoami", headers=officer).status_code == 200
        assert client.get("/api/v1/audit/entries", headers=officer).status_code == 403

        # while the window is open only the first refusals are in the log, one record each
        denied = _audit_entries(client, auditor, action="access.denied")
        anonymous = [r for r in denied if r["role"] == "anonymous"]
        assert [r["details"]["count"] for r in anonymous] == [1] * records
        assert all(r["client_address"] == "127.0.0.1" for r in anonymous)
        assert [(r["role"], r["details"]["http_status"]) for r in denied if r["role"] != "anonymous"] == [
            ("officer", 403)
        ]
        # the counters name the client only by a keyed hash and a sealed payload
        (rows,) = sql(settings, [("SELECT * FROM access_denial_windows", {})])
        assert len(rows) == 2  # the anonymous client, and the officer's key
        dump = repr(rows).encode() + b"".join(v for row in rows for v in row if isinstance(v, bytes))
        assert b"127.0.0.1" not in dump
        assert keys[Role.OFFICER].encode() not in dump

    # stopping the service wrote the open window's summary
    exported = _exported_records(settings, tmp_path / "bundle.json")
    anonymous = _anonymous_denials(exported)
    assert len(anonymous) == records + 1
    summary = anonymous[-1]
    assert summary["outcome"] == "denied"
    assert summary["client_address"] == "127.0.0.1"
    assert summary["actor_key_id"] is None
    assert summary["details"]["count"] == flood - records
    assert summary["details"]["rate_limited_count"] == flood - limit
    assert summary["details"]["http_status"] == 401
    assert summary["details"]["route"] in ROUTES
    assert summary["details"]["from_time"] < summary["details"]["to_time"]
    assert sum(r["details"]["count"] for r in anonymous) == flood
    text = (tmp_path / "bundle.json").read_text(encoding="utf-8")
    assert not [key for key in presented if key and key.split(" ", 1)[1] in text]
    _assert_log_verifies(settings)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_window_gets_its_summary_and_the_records_stay_bounded(tmp_path: Path, database_url: str) -> None:
    records, limit, flood = 2, 5, 300
    rules = DenialRules(window_seconds=1.0, records=records, limit=limit)
    settings = _settings(tmp_path, database_url, window=1.0, records=records, limit=limit)
    keys = issue_keys(settings)
    auditor = {"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        first_window = rules.window(dt.datetime.now(dt.UTC))[0]
        statuses = Counter(_bad_request(client, i).status_code for i in range(flood))
        last_window = rules.window(dt.datetime.now(dt.UTC))[0]
        windows = (last_window - first_window) // dt.timedelta(seconds=1) + 1
        assert set(statuses) <= {401, 429}
        assert statuses[401] <= windows * limit

        # the service writes each window's summary after it ends, without being stopped
        deadline = time.monotonic() + 120  # only so that a broken ticker cannot hang the suite
        while True:
            anonymous = _anonymous_denials(_audit_entries(client, auditor, action="access.denied"))
            if sum(r["details"]["count"] for r in anonymous) >= flood or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sum(r["details"]["count"] for r in anonymous) == flood
        assert len(anonymous) <= windows * (records + 1)
        summaries = [r for r in anonymous if "from_time" in r["details"]]
        assert sum(r["details"]["rate_limited_count"] for r in summaries) == statuses[429]
        verdict = client.get("/api/v1/audit/verify", headers=auditor)
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["valid"] is True


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.mark.postgres
def test_two_replicas_share_one_counter(tmp_path: Path, postgres_url: str) -> None:
    records, limit, flood = 3, 40, 400
    settings = _settings(tmp_path, postgres_url, window=LONG_WINDOW, records=records, limit=limit)
    keys = issue_keys(settings)
    auditor = {"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
    with ExitStack() as stack:
        bases = [stack.enter_context(run_server(create_app(settings))) for _replica in range(2)]
        clients = [stack.enter_context(httpx.Client(base_url=base, timeout=60)) for base in bases]

        def send(i: int) -> tuple[int, int]:
            return i % 2, _bad_request(clients[i % 2], i).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(send, range(flood)))
        # one counter for both: exactly `limit` refusals answered 401 in all, the rest 429 from either one
        assert Counter(status for _replica, status in results) == {401: limit, 429: flood - limit}
        assert {replica for replica, status in results if status == 429} == {0, 1}
        # ... and exactly `records` single records, not `records` per replica
        for client in clients:
            assert client.get("/api/v1/whoami", headers=auditor).status_code == 200
            anonymous = _anonymous_denials(_audit_entries(client, auditor, action="access.denied"))
            assert [r["details"]["count"] for r in anonymous] == [1] * records

    exported = _exported_records(settings, tmp_path / "bundle.json")
    anonymous = _anonymous_denials(exported)
    # each replica's stop may write a summary of what was left open: at most one each
    assert records + 1 <= len(anonymous) <= records + 2
    assert sum(r["details"]["count"] for r in anonymous) == flood
    assert sum(r["details"].get("rate_limited_count", 0) for r in anonymous) == flood - limit
    _assert_log_verifies(settings)
