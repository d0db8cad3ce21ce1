"""Console sign-in over a real loopback server, as an outsider meets it: one-time links work once and
until they expire, garbage is refused without a 5xx, two clicks on one link make one session (SQLite and
PostgreSQL), sessions end when idle, at their absolute end and at sign-out (which needs the CSRF token),
the records say who and how without ever holding a token, the logs hold no token or cookie either, made-up
links are counted as refused requests (bounded records, then 429) rather than recorded one by one, a new
sign-in ends the browser's previous session, an API key opens no console page and a console cookie no API
route; and ``console link`` on the command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from odeus_compliance.app import create_app
from odeus_compliance.core.clock import utcnow
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.audit import cli
from tests.support.console_session import (
    audit_records,
    expired_link,
    last_seen,
    move_session,
    session_count,
    sign_in_link,
    signed_in_client,
)
from tests.support.logs import captured_json_logs
from tests.support.server import LiveServer, issue_keys, run_server

COOKIE = "odeus_console"


def _token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def _set_cookie(answer: httpx.Response) -> str:
    (header,) = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    return header


def _session_id(server: LiveServer) -> str:
    """The session id of the latest successful sign-in."""
    ins = audit_records(server.base_url, server.keys[Role.AUDITOR], action="console.sign_in")
    return str([r for r in ins if r["outcome"] == "success"][-1]["details"]["session_id"])


def test_a_link_signs_in_once_and_a_replay_is_refused_and_recorded(live_server: LiveServer) -> None:
    server = live_server
    link = sign_in_link(server.settings, server.base_url, "Olga Officer", "officer")
    with captured_json_logs() as logs, httpx.Client(base_url=server.base_url) as browser:
        first = browser.get(link)
        assert first.status_code == 200
        assert "text/html" in first.headers["content-type"]
        cookie = _set_cookie(first)
        assert cookie.startswith(f"{COOKIE}=")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=strict"} <= attributes
        assert "secure" not in attributes  # plain http on loopback
        cookie_value = browser.cookies[COOKIE]
        home = browser.get("/console/")
        assert home.status_code == 200
        assert "Olga Officer" in home.text

        with httpx.Client(base_url=server.base_url) as other:
            replay = other.get(link)
            assert replay.status_code == 403
            assert "text/html" in replay.headers["content-type"]
            assert COOKIE not in other.cookies
        garbage = [
            "x",
            "A" * 43,
            "A" * 5000,
            "%00%0a" * 10,
            _token_of(link)[:-1] + "~",
            "..%2f..%2fapi",
        ]
        for token in garbage:
            answer = browser.get(f"/console/sign-in/{token}")
            assert answer.status_code in {403, 404}, (token, answer.status_code)
            assert "text/html" in answer.headers["content-type"], (token, answer.text)
    records = audit_records(server.base_url, server.keys[Role.AUDITOR])
    sign_ins = [r for r in records if r["action"] == "console.sign_in"]
    success, used = sign_ins[0], sign_ins[1]
    assert success["outcome"] == "success"
    assert re.fullmatch(r"console:link:lnk_[0-9a-f]{24}", success["actor_key_id"])
    assert success["actor_name"] == "Olga Officer"
    assert success["role"] == "officer"
    details = success["details"]
    assert details["sign_in"] == "link"
    assert details["session_id"].startswith("ses_")
    assert success["actor_key_id"] == f"console:link:{details['link_id']}"
    assert used["outcome"] == "failure"
    assert used["details"]["error_code"] == "link_used"
    assert used["actor_name"] == "Olga Officer"
    assert used["details"]["link_id"] == details["link_id"]
    assert len(sign_ins) == 2  # an unknown link names nobody: a refused request, not a sign-in record
    unknown = [
        r for r in records if r["action"] == "access.denied" and r["details"].get("reason") == "link_unknown"
    ]
    assert len(unknown) >= 5  # the ones that reach the sign-in route (a `/` in a token is another path)
    assert all(r["role"] == "anonymous" for r in unknown)
    secrets_seen = (_token_of(link), cookie_value, home.text.split('name="csrf_token" value="')[1][:64])
    everything = repr(records) + logs.getvalue()
    for secret in secrets_seen:
        assert secret not in everything


def test_a_flood_of_made_up_links_is_counted_not_recorded_one_by_one(migrated_settings: Settings) -> None:
    """Anyone can send made-up links: they are refused requests (bounded records, then 429), not one
    permanent record each."""
    # a window that ends in the year 2286: no window boundary falls inside the test
    settings = dataclasses.replace(
        migrated_settings, denial_records=3, denial_limit=8, denial_window_seconds=10.0**10
    )
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as client:
        statuses = [client.get(f"/console/sign-in/{'B' * 42}{i % 10}").status_code for i in range(12)]
        assert statuses[:8] == [403] * 8
        assert set(statuses[8:]) == {429}
        too_many = client.get(f"/console/sign-in/{'C' * 43}")
        assert too_many.status_code == 429
        assert too_many.headers["content-type"].startswith("text/html")
        assert "retry-after" in too_many.headers
        records = audit_records(base_url, keys[Role.AUDITOR])
    assert not [r for r in records if r["action"] == "console.sign_in"]
    denied = [r for r in records if r["action"] == "access.denied"]
    assert len(denied) == 3
    assert {r["details"]["reason"] for r in denied} == {"link_unknown"}


def test_the_cookie_is_host_prefixed_and_secure_when_the_public_url_is_https(
    migrated_settings: Settings,
) -> None:
    settings = dataclasses.replace(migrated_settings, public_url="https://console.example.test")
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as browser:
        answer = browser.get(sign_in_link(settings, base_url, "Olga Officer", "officer"))
        assert answer.status_code == 200
        cookie = _set_cookie(answer)
        assert cookie.startswith("__Host-odeus_console=")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)


def test_an_expired_link_is_refused_and_recorded(live_server: LiveServer) -> None:
    server = live_server
    link = expired_link(server.settings, server.base_url, "Olga Officer", "officer")
    with httpx.Client(base_url=server.base_url) as browser:
        answer = browser.get(link)
    assert answer.status_code == 403
    assert "text/html" in answer.headers["content-type"]
    assert COOKIE not in browser.cookies
    (refused,) = [
        r
        for r in audit_records(server.base_url, server.keys[Role.AUDITOR], action="console.sign_in")
        if r["outcome"] == "failure"
    ]
    assert refused["details"]["error_code"] == "link_expired"
    assert refused["actor_name"] == "Olga Officer"


def test_two_parallel_uses_of_one_link_make_one_session(live_server: LiveServer) -> None:
    server = live_server
    for _ in range(3):
        link = sign_in_link(server.settings, server.base_url, "Olga Officer", "officer")
        before = session_count(server.settings)

        def use(_: int, link: str = link) -> int:
            with httpx.Client(timeout=30) as client:
                return client.get(link).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = sorted(pool.map(use, range(4)))
        assert statuses == [200, 403, 403, 403]
        assert session_count(server.settings) == before + 1


def test_a_session_ends_when_idle_and_at_its_absolute_end(live_server: LiveServer) -> None:
    server = live_server
    idle = dt.timedelta(minutes=server.settings.console_idle_minutes)
    for moved in (
        {"last_seen_at": utcnow() - idle - dt.timedelta(seconds=5)},
        {"expires_at": utcnow() - dt.timedelta(seconds=5)},
    ):
        link = sign_in_link(server.settings, server.base_url, "Olga Officer", "officer")
        with signed_in_client(server.base_url, link) as browser:
            assert browser.get("/console/").status_code == 200
            # still fresh just inside the idle time
            move_session(
                server.settings, _session_id(server), last_seen_at=utcnow() - idle + dt.timedelta(minutes=2)
            )
            assert browser.get("/console/").status_code == 200
            move_session(server.settings, _session_id(server), **moved)
            gone = browser.get("/console/")
            assert gone.status_code == 303
            assert gone.headers["location"].startswith("/console/sign-in?next=/console")
            assert browser.get("/console/").status_code == 303  # deleted, not just skipped


def test_a_busy_session_outlives_a_one_minute_idle_time(migrated_settings: Settings) -> None:
    """With ``console_idle_minutes=1`` a request 40 s after the last one keeps the session alive (it used
    to move ``last_seen_at`` only after a full minute: a session used every 40 s ended)."""
    settings = dataclasses.replace(migrated_settings, console_idle_minutes=1)
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        server = LiveServer(base_url=base_url, settings=settings, keys=keys)
        link = sign_in_link(settings, base_url, "Olga Officer", "officer")
        with signed_in_client(base_url, link) as browser:
            session_id = _session_id(server)
            earlier = utcnow() - dt.timedelta(seconds=40)
            move_session(settings, session_id, last_seen_at=earlier)
            assert browser.get("/console/").status_code == 200
            assert last_seen(settings, session_id) > earlier


def test_sign_out_needs_the_csrf_token_and_ends_the_session(live_server: LiveServer) -> None:
    server = live_server
    link = sign_in_link(server.settings, server.base_url, "Ada Admin", "admin")
    with signed_in_client(server.base_url, link) as browser:
        old_cookie = browser.cookies[COOKIE]
        page = browser.get("/console/").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        for form in ({}, {"csrf_token": "0" * 64}, {"csrf_token": "é"}):
            refused = browser.post("/console/sign-out", data=form)
            assert refused.status_code == 403, form
            assert "text/html" in refused.headers["content-type"]
        refused = browser.post("/console/sign-out", headers={b"X-CSRF-Token": b"\xe9" * 64})
        assert refused.status_code == 403
        assert browser.get("/console/").status_code == 200  # the session stays
        out = browser.post("/console/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in?signed_out=1"
        assert not browser.cookies.get(COOKIE)  # cleared
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: old_cookie}) as old:
        assert old.get("/console/").status_code == 303
    (signed_out,) = audit_records(server.base_url, server.keys[Role.AUDITOR], action="console.sign_out")
    assert signed_out["actor_name"] == "Ada Admin"
    assert signed_out["role"] == "admin"
    assert signed_out["details"]["sign_in"] == "link"


def test_a_new_sign_in_ends_the_session_the_browser_had(live_server: LiveServer) -> None:
    server = live_server
    with signed_in_client(
        server.base_url, sign_in_link(server.settings, server.base_url, "Ada", "admin")
    ) as browser:
        admin_cookie = browser.cookies[COOKIE]
        assert (
            browser.get(sign_in_link(server.settings, server.base_url, "Olga", "officer")).status_code == 200
        )
        assert "Olga" in browser.get("/console/").text
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: admin_cookie}) as old:
        assert old.get("/console/").status_code == 303
    (ended,) = audit_records(server.base_url, server.keys[Role.AUDITOR], action="console.sign_out")
    assert ended["actor_name"] == "Ada"


def test_an_api_key_opens_no_console_page_and_a_cookie_no_api_route(live_server: LiveServer) -> None:
    server = live_server
    link = sign_in_link(server.settings, server.base_url, "Arthur Auditor", "auditor")
    with httpx.Client(base_url=server.base_url) as client:
        keyed = client.get("/console/", headers=server.auth(Role.AUDITOR))
        assert keyed.status_code == 303
        assert keyed.headers["location"].startswith("/console/sign-in?next=")
        signed_out = client.post("/console/sign-out", headers=server.auth(Role.AUDITOR))
        assert signed_out.status_code == 303
    with signed_in_client(server.base_url, link) as browser:
        for path in ("/api/v1/whoami", "/api/v1/audit/entries", "/api/v1/reports"):
            answer = browser.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["content-type"].startswith("application/problem+json")


def test_console_link_on_the_command_line(live_server: LiveServer, tmp_path: Path) -> None:
    server = live_server
    made = cli(
        server.settings,
        "console",
        "link",
        "--role",
        "officer",
        "--name",
        "Olga",
        "--base-url",
        server.base_url,
    )
    assert made.returncode == 0, made.stderr
    (url,) = made.stdout.splitlines()
    assert url.startswith(f"{server.base_url}/console/sign-in/")
    assert _token_of(url) not in made.stderr
    with httpx.Client() as browser:
        assert browser.get(url).status_code == 200
        assert "Olga" in browser.get(f"{server.base_url}/console/").text
    with httpx.Client() as again:
        assert again.get(url).status_code == 403
    for args in (
        ("--role", "boss", "--name", "Olga"),
        ("--role", "metrics", "--name", "Olga"),
        ("--role", "officer", "--name", "   "),
        ("--role", "officer", "--name", "Ol\x07ga"),
        ("--role", "officer", "--name", "Ol\u202ega"),
        ("--role", "officer", "--name", "O" * 129),
    ):
        bad = cli(server.settings, "console", "link", *args, "--base-url", server.base_url)
        assert bad.returncode == 2, (args, bad.stderr)
        assert bad.stdout == ""
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert bad.stderr.startswith("Error: ")
