"""The platform seen by an attacker over a real HTTP connection: errors that say nothing, logs that carry
nothing, and an ``Authorization`` header that is read one way only."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import JSONBody
from litestar.response import Stream

from odeus_compliance.apikeys.service import revoke_api_key
from odeus_compliance.app import create_app
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import ALL_ROLES, Role, requires_role
from odeus_compliance.settings import Settings
from tests.support.logs import captured_json_logs, parse_lines
from tests.support.server import issue_keys, run_server

PERSONAL = "jane.doe@example.com"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)


@get("/api/v1/test/fails", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def fails() -> str:
    raise RuntimeError(f"could not process {PERSONAL}")


@get("/api/v1/test/fails-key", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def fails_key() -> str:
    return {"x": 1}[PERSONAL]  # type: ignore[return-value]


@get("/api/v1/test/decode", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def decode_bug() -> str:
    return PERSONAL.encode("utf-16").decode("utf-8")  # our own bug: must stay a 500


@get("/api/v1/test/unsupported", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def unsupported() -> str:
    raise HTTPException(status_code=415, detail=f"cannot take {PERSONAL}")


@get("/api/v1/test/stream-fails", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def stream_fails() -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        raise RuntimeError(f"stream broke for {PERSONAL}")

    return Stream(chunks())


class Body(msgspec.Struct):
    month: str


@post("/api/v1/test/body", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def body(data: JSONBody[Body]) -> dict[str, str]:
    return {"month": data.month}


@post("/api/v1/test/raw", opt=requires_role(*ALL_ROLES))
async def raw(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"size": len(await request.body())}


TEST_ROUTES = [fails, fails_key, decode_bug, unsupported, stream_fails, body, raw]


@pytest.fixture
def server(migrated_settings: Settings) -> Iterator[tuple[str, dict[Role, str]]]:
    keys = issue_keys(migrated_settings)
    with run_server(create_app(migrated_settings, extra_route_handlers=TEST_ROUTES)) as base_url:
        yield base_url, keys


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_unhandled_exception_is_a_generic_500(server: tuple[str, dict[Role, str]]) -> None:
    base_url, keys = server
    with (
        captured_json_logs() as logs,
        httpx.Client(base_url=base_url, headers=bearer(keys[Role.AUDITOR])) as c,
    ):
        responses = [
            c.get("/api/v1/test/fails"),
            c.get("/api/v1/test/fails-key"),
            c.get("/api/v1/test/decode"),
        ]
    for response in responses:
        problem = assert_problem(response, 500)
        assert problem["type"] == "urn:odeus-compliance:problem:internal-error"
        assert PERSONAL not in response.text
        assert "RuntimeError" not in response.text
        assert "KeyError" not in response.text
    assert PERSONAL not in logs.getvalue()
    errors = [line for line in parse_lines(logs) if line.get("event") == "unhandled_error"]
    assert {e["error_type"] for e in errors} == {"RuntimeError", "KeyError", "UnicodeDecodeError"}
    assert {e["request_id"] for e in errors} == {r.headers["x-request-id"] for r in responses}
    assert all(e["frames"] for e in errors)


def test_a_body_that_is_not_utf8_is_a_400(server: tuple[str, dict[Role, str]]) -> None:
    base_url, keys = server
    response = httpx.post(
        f"{base_url}/api/v1/test/body",
        content=b'{"month": "\xff' + PERSONAL.encode() + b'"}',
        headers={**bearer(keys[Role.OFFICER]), "content-type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert problem["type"] == "urn:odeus-compliance:problem:validation-failed"
    assert PERSONAL not in response.text


def test_every_error_class_is_problem_json(server: tuple[str, dict[Role, str]]) -> None:
    base_url, keys = server
    with httpx.Client(base_url=base_url, headers=bearer(keys[Role.ADMIN]), timeout=60) as c:
        assert_problem(c.get(f"/api/v1/{PERSONAL}"), 404)
        for path in ("/schema/no-such-page", "/schema/nothing.json", f"/schema/{PERSONAL}"):
            response = c.get(path)
            assert_problem(response, 404)
            assert PERSONAL not in response.text
        not_allowed = assert_problem(c.delete("/api/v1/whoami"), 405)
        assert not_allowed["detail"] == "Method Not Allowed"
        too_large = c.post("/api/v1/test/raw", content=b"x" * (11 * 1024 * 1024))
        assert_problem(too_large, 413)
        unsupported = c.get("/api/v1/test/unsupported")
        assert_problem(unsupported, 415)
        assert PERSONAL not in unsupported.text
        assert_problem(c.post("/api/v1/test/body", json=[PERSONAL]), 400)


def test_the_authorization_header_is_read_one_way(
    server: tuple[str, dict[Role, str]], migrated_settings: Settings
) -> None:
    base_url, keys = server
    key = keys[Role.OFFICER]
    random_part = key.split("_", 2)[2]
    accepted = {
        "Bearer " + key,
        "bearer " + key,
        "BEARER " + key,
        "Bearer   " + key,
    }
    refused = {
        "Bearer\t" + key,
        "Bearer" + key,
        "Basic " + key,
        key,
        "Bearer oc_admin_" + random_part,  # the role in the text is no capability
        "Bearer oc_officer_" + random_part[:-1],
        "Bearer oc_officer_" + random_part + "x",
        "Bearer " + key + ", Bearer " + key,
        "Bearer " + key + "a" * 10_000,
        "Bearer " + "a" * 7_000,
    }
    with httpx.Client(base_url=base_url) as client:
        for header in accepted:
            assert client.get("/api/v1/whoami", headers={"Authorization": header}).status_code == 200
        for header in refused:
            response = client.get("/api/v1/whoami", headers={"Authorization": header})
            assert_problem(response, 401)
            assert random_part not in response.text
        # two headers: which one counts would depend on the proxies in front, so neither does
        for pair in ([key, "bad"], ["bad", key], [key, key]):
            headers = [("Authorization", f"Bearer {value}") for value in pair]
            assert_problem(client.get("/api/v1/whoami", headers=headers), 401)

        me = client.get("/api/v1/whoami", headers=bearer(key)).json()
        asyncio.run(_revoke(migrated_settings, uuid.UUID(me["key_id"])))
        assert_problem(client.get("/api/v1/whoami", headers=bearer(key)), 401)


async def _revoke(settings: Settings, key_id: uuid.UUID) -> None:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            await revoke_api_key(session=session, key_id=key_id)
    finally:
        await engine.dispose()


def test_a_burst_of_requests_logs_no_key_no_email_no_query_value(
    server: tuple[str, dict[Role, str]], migrated_settings: Settings
) -> None:
    """At DEBUG, the most talkative level an operator can set."""
    base_url, keys = server
    ensure_demo_certificate(migrated_settings.data_dir, migrated_settings.require_master_key())  # ready
    officer = keys[Role.OFFICER]
    query_value = "needle-" + uuid.uuid4().hex
    with captured_json_logs("DEBUG") as logs, httpx.Client(base_url=base_url, timeout=60) as client:
        statuses = [
            client.get("/api/v1/whoami", params={"email": PERSONAL}, headers=bearer(officer)).status_code,
            client.get(
                "/api/v1/whoami", params={"q": query_value}, headers=bearer(officer + "x")
            ).status_code,
            client.get(f"/schema/{PERSONAL}", params={"q": query_value}).status_code,
            client.get(f"/api/v1/{PERSONAL}", params={"email": PERSONAL}).status_code,
            client.get("/api/v1/test/fails", params={"q": query_value}, headers=bearer(officer)).status_code,
            client.post("/api/v1/test/body", json={"month": PERSONAL}, headers=bearer(officer)).status_code,
            client.post("/api/v1/test/body", json={"month": [PERSONAL]}, headers=bearer(officer)).status_code,
            client.get("/health/ready", params={"q": query_value}).status_code,
        ]
        with pytest.raises(httpx.HTTPError):
            client.get("/api/v1/test/stream-fails", headers=bearer(officer)).read()
    assert statuses == [200, 401, 404, 404, 500, 201, 400, 200]
    text = logs.getvalue()
    lines = parse_lines(logs)
    assert lines
    for secret in (
        officer,
        officer.split("_", 2)[2],
        officer.split("_", 2)[2][:12],
        PERSONAL,
        "jane",
        query_value,
    ):
        assert secret not in text, secret
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == len(statuses) + 1
    assert {line["route"] for line in requests} <= {
        "/api/v1/whoami",
        "/schema/{path}",
        "<unmatched>",
        "/api/v1/test/fails",
        "/api/v1/test/body",
        "/api/v1/test/stream-fails",
        "/health/ready",
    }


def test_foreign_log_messages_lose_their_quoted_parts() -> None:
    """asyncio reports a lost task's exception as its repr; a careless f-string of ours is no event."""
    with captured_json_logs("DEBUG") as logs:
        logging.getLogger("asyncio").error(
            "Task exception was never retrieved\nfuture: <Task finished name='Task-7' coro=<job() done> "
            "exception=ValueError('no user %s')>",
            PERSONAL,
        )
        logging.getLogger("odeus_compliance.test").info(f"user {PERSONAL} fetched")  # noqa: G004
        logging.getLogger("sqlalchemy.engine.Engine").info("[generated] ('%s',)", PERSONAL)
        logging.getLogger("aiosqlite").debug("executing %s", PERSONAL)
    assert PERSONAL not in logs.getvalue()
    lines = parse_lines(logs)
    assert [line.get("event") for line in lines if line["logger"].startswith("odeus_compliance")] == [
        "unnamed_event"
    ]
    assert lines[0]["message"].startswith("Task exception was never retrieved")
