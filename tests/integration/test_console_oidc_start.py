"""Starting a sign-in with the identity provider, against a provider that is away and against a flood:
an outage is a 503 page with ``Retry-After`` and no audit record per click (the log says it), and the
sign-ins waiting for the provider's answer are bounded (each keeps a database row for ten minutes)."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.console import signin_pages
from odeus_compliance.security import Role
from odeus_compliance.settings import OidcSettings, Secret, Settings
from tests.support.console_session import audit_records
from tests.support.logs import captured_json_logs
from tests.support.server import issue_keys, run_server


def _discovery_only() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
            body = json.dumps(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/auth",
                    "token_endpoint": f"{issuer}/token",
                    "jwks_uri": f"{issuer}/jwks",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _discovery_only())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _with_provider(settings: Settings, issuer: str) -> Settings:
    oidc = OidcSettings(
        issuer=issuer, client_id="odeus", client_secret=Secret("s3cret"), role_map={"compliance": "officer"}
    )
    return dataclasses.replace(settings, oidc=oidc)


def test_a_provider_that_is_away_is_a_503_page_and_no_record_per_click(migrated_settings: Settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        away = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = _with_provider(migrated_settings, away)
    keys = issue_keys(settings)
    with (
        captured_json_logs() as logs,
        run_server(create_app(settings)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        answers = [client.get("/console/sign-in/oidc") for _ in range(3)]
        records = audit_records(base_url, keys[Role.AUDITOR])
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["retry-after"] == "60"
        assert "cannot be reached" in answer.text
    assert not [r for r in records if r["action"] in {"console.sign_in", "access.denied"}]
    events = [json.loads(line).get("event") for line in logs.getvalue().splitlines() if line.startswith("{")]
    assert events.count("oidc_provider_unavailable") == 3


def test_sign_ins_waiting_for_the_provider_are_bounded(
    migrated_settings: Settings, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin_pages, "MAX_PENDING_SIGN_INS", 3)
    settings = _with_provider(migrated_settings, provider)
    with run_server(create_app(settings)) as base_url:
        statuses = []
        for _ in range(5):  # a new browser each time: no cookie carries over
            with httpx.Client(base_url=base_url, timeout=30) as browser:
                statuses.append(browser.get("/console/sign-in/oidc").status_code)
        assert statuses == [303, 303, 303, 503, 503]
