"""The service over a real HTTP connection: probes, OpenAPI, problem+json for every kind of error, logs."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import get, post
from litestar.params import FromQuery, JSONBody

from odeus_compliance.app import create_app
from odeus_compliance.db.migrate import downgrade
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.logging_setup import configure_logging
from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.security import ALL_ROLES, Role, requires_role
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, issue_keys, run_server

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["instance"] == f"urn:uuid:{body['request_id']}"
    return dict(body)


def test_health_and_schema(live_server: LiveServer) -> None:
    settings = live_server.settings
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())  # ready: reports can be signed
    with httpx.Client(base_url=live_server.base_url) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok"}
        schema = client.get("/schema/openapi.json")
        assert schema.status_code == 200
        doc = schema.json()
        assert doc["info"]["title"] == "odeus-compliance"
        assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
        assert "/api/v1/whoami" in doc["paths"]
        assert doc["paths"]["/api/v1/whoami"]["get"]["operationId"] == "whoami"
        # every operation is documented: an operationId and a description a reader can rely on
        undocumented = [
            f"{method.upper()} {path}"
            for path, operations in doc["paths"].items()
            for method, operation in operations.items()
            if not operation.get("operationId") or len(operation.get("description") or "") < 20
        ]
        assert undocumented == []


def test_whoami_and_policies(live_server: LiveServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=live_server.base_url) as client:
        me = client.get("/api/v1/whoami", headers=live_server.auth(Role.AUDITOR))
        assert me.status_code == 200
        assert me.json()["role"] == "auditor"
        assert me.json()["name"] == "test auditor"
        policies = client.get("/api/v1/policies", headers=live_server.auth(Role.OFFICER))
        assert policies.status_code == 200
        assert isinstance(policies.json()["policies"], list)


def test_policies_are_validated_and_cited_by_canonical_hash(
    migrated_settings: Settings, tmp_path: Path
) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    shipped = (migrated_settings.policy_dir / "default.toml").read_text("utf-8")
    # the same policy with other comments and spacing: the canonical hash must not change
    (policy_dir / "default.toml").write_text("# reformatted\n" + shipped.replace(" = ", "="), "utf-8")
    (policy_dir / "broken.toml").write_text("[policy]\nname = 'broken'\nsurprise = 1\n", "utf-8")
    (policy_dir / "notes.txt").write_text("not a policy", "utf-8")
    settings = dataclasses.replace(migrated_settings, policy_dir=policy_dir)
    expected_hash = policy_hash(load_policy(migrated_settings.policy_dir / "default.toml"))
    keys = issue_keys(settings)
    auth = {"Authorization": f"Bearer {keys[Role.ADMIN]}"}
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as client:
        listing = client.get("/api/v1/policies", headers=auth).json()["policies"]
        detail = client.get("/api/v1/policies/default", headers=auth).json()
        broken = client.get("/api/v1/policies/broken", headers=auth).json()
        missing = client.get("/api/v1/policies/nope", headers=auth)
        traversal = client.get("/api/v1/policies/..%2Fsecrets", headers=auth)

    assert [(p["name"], p["valid"]) for p in listing] == [("broken", False), ("default", True)]
    assert listing[1]["hash"] == expected_hash
    assert listing[1]["exports"] == ["api-keys", "assistants", "models", "projects", "users"]
    assert detail["summary"]["hash"] == expected_hash
    assert detail["canonical"]["columns"]["users"]["email"]["op"] == "drop"
    assert broken["summary"]["problems"] == len(broken["problems"]) > 0
    assert broken["canonical"] is None
    assert any("surprise" in p["message"] for p in broken["problems"])
    assert_problem(missing, 404)
    assert traversal.status_code == 404


def test_problem_documents(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as client:
        missing = assert_problem(client.get("/api/v1/whoami"), 401)
        assert missing["type"] == "urn:odeus-compliance:problem:not-authenticated"
        bad = client.get("/api/v1/whoami", headers={"Authorization": "Bearer oc_admin_" + "x" * 43})
        assert_problem(bad, 401)
        assert bad.headers["www-authenticate"].lower().startswith("bearer")
        assert_problem(client.get("/api/v1/whoami", headers={"Authorization": "Basic abc"}), 401)
        assert_problem(client.get("/nope", headers=live_server.auth(Role.ADMIN)), 404)
        not_allowed = assert_problem(client.post("/health/live"), 405)
        assert not_allowed["detail"] == "Method Not Allowed"


def test_forbidden_problem(migrated_settings: Settings) -> None:
    @get("/api/v1/admin-only", opt=requires_role(Role.ADMIN), sync_to_thread=False)
    def admin_only() -> dict[str, str]:
        return {"ok": "yes"}

    keys = issue_keys(migrated_settings)
    with run_server(create_app(migrated_settings, extra_route_handlers=[admin_only])) as base_url:
        officer = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
        body = assert_problem(httpx.get(f"{base_url}/api/v1/admin-only", headers=officer), 403)
        assert body["type"] == "urn:odeus-compliance:problem:permission-denied"
        admin = {"Authorization": f"Bearer {keys[Role.ADMIN]}"}
        assert httpx.get(f"{base_url}/api/v1/admin-only", headers=admin).json() == {"ok": "yes"}


class Colour(enum.Enum):
    RED = "red"


class EchoBody(msgspec.Struct):
    month: str
    colour: Colour


@post("/api/v1/echo", opt=requires_role(*ALL_ROLES), sync_to_thread=False)
def echo(data: JSONBody[EchoBody], limit: FromQuery[int]) -> dict[str, str]:
    return {"month": data.month}


def test_validation_problem_does_not_echo_values(migrated_settings: Settings) -> None:
    keys = issue_keys(migrated_settings)
    headers = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
    with run_server(create_app(migrated_settings, extra_route_handlers=[echo])) as base_url:
        secret = "jane.doe@example.com"
        response = httpx.post(
            f"{base_url}/api/v1/echo",
            params={"limit": secret},
            json={"month": "2026-10", "colour": secret},
            headers=headers,
        )
        body = assert_problem(response, 400)
        assert secret not in response.text
        assert body["type"] == "urn:odeus-compliance:problem:validation-failed"
        assert body["errors"]
        missing = httpx.post(f"{base_url}/api/v1/echo?x={secret}", json={"month": 1}, headers=headers)
        assert_problem(missing, 400)
        assert secret not in missing.text
        malformed = httpx.post(
            f"{base_url}/api/v1/echo?limit=1",
            content=b'{"month": "' + secret.encode(),
            headers={**headers, "content-type": "application/json"},
        )
        assert_problem(malformed, 400)
        assert secret not in malformed.text


def test_ready_503_when_not_migrated(migrated_settings: Settings) -> None:
    asyncio.run(downgrade(migrated_settings, "base"))
    with run_server(create_app(migrated_settings)) as base_url:
        body = assert_problem(httpx.get(f"{base_url}/health/ready"), 503)
        assert "odeus-compliance init" in str(body["detail"])
        assert body["check"] == "database"
        assert httpx.get(f"{base_url}/health/live").status_code == 200


def test_ready_503_when_database_unreachable(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    with run_server(create_app(settings)) as base_url:
        body = assert_problem(httpx.get(f"{base_url}/health/ready", timeout=30), 503)
        assert body["detail"] == "The database is not reachable."
        assert body["check"] == "database"
        # authentication needs the database too: unreachable is a 503 (the key may be fine), not a 401
        some_key = {"Authorization": "Bearer oc_officer_" + "a" * 43}
        assert_problem(httpx.get(f"{base_url}/api/v1/whoami", headers=some_key), 503)
        # ... and so is a console session: a 503 page, not a 500 or a trip to the sign-in page
        page = httpx.get(f"{base_url}/console/reports", cookies={"odeus_console": "A" * 43}, timeout=30)
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Route all logging to JSON lines in a buffer (as ``serve`` does), restoring pytest's handlers after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    access = logging.getLogger("uvicorn.access")
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        access.disabled = False
        access.propagate = True


def test_logs_hold_no_key_and_no_query_values(live_server: LiveServer, json_logs: io.StringIO) -> None:
    personal = "jane.doe@example.com"
    key = live_server.keys[Role.OFFICER]
    with httpx.Client(base_url=live_server.base_url) as client:
        ok = client.get("/api/v1/whoami", params={"email": personal}, headers=live_server.auth(Role.OFFICER))
        assert ok.status_code == 200
        client.get("/api/v1/whoami", params={"name": personal}, headers={"Authorization": f"Bearer {key}x"})
        client.get(f"/nope/{personal}", params={"q": personal})
    text = json_logs.getvalue()
    assert key not in text
    assert key.split("_", 2)[2][:12] not in text
    assert personal not in text
    assert "jane" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) >= 3
    first = requests[0]
    assert first["route"] == "/api/v1/whoami"
    assert first["status"] == 200
    assert first["method"] == "GET"
    assert first["key_id"] == ok.json()["key_id"]
    assert first["request_id"] == ok.headers["x-request-id"]
    assert isinstance(first["duration_ms"], float | int)
    assert {r["status"] for r in requests} >= {200, 401, 404}
    assert all(r["route"] in {"/api/v1/whoami", "<unmatched>"} for r in requests)


def test_validation_problems_name_the_field_and_what_it_must_be(migrated_settings: Settings) -> None:
    keys = issue_keys(migrated_settings)
    headers = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
    secret = "jane.doe@example.com"
    cases: list[tuple[dict[str, Any], list[dict[str, str]]]] = [
        (
            {"params": {"limit": secret}, "json": {"month": "2026-10", "colour": "red"}},
            [{"key": "limit", "source": "query", "message": "must be an integer"}],
        ),
        (
            {"params": {"limit": 1}, "json": {"month": "2026-10", "colour": secret}},
            [{"key": "colour", "source": "body", "message": "must be one of: red"}],
        ),
        (
            {"params": {"limit": 1}, "json": {"colour": "red"}},
            [{"key": "month", "source": "body", "message": "is required"}],
        ),
        (
            {"json": {"month": "2026-10", "colour": "red"}},
            [{"key": "limit", "source": "query", "message": "is required"}],
        ),
        (
            {"params": {"limit": 1}, "content": b'{"month": "' + secret.encode()},
            [{"key": "body", "source": "body", "message": "must be valid JSON"}],
        ),
    ]
    with run_server(create_app(migrated_settings, extra_route_handlers=[echo])) as base_url:
        for request, errors in cases:
            sent_headers = {**headers, "content-type": "application/json"}
            response = httpx.post(f"{base_url}/api/v1/echo", headers=sent_headers, **request)
            body = assert_problem(response, 400)
            assert body["errors"] == errors, request
            # the detail says the same in words: the field and the rule
            assert body["detail"] == " ".join(f"'{e['key']}' {e['message']}." for e in errors)
            assert secret not in response.text
