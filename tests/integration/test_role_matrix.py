"""Every route of the app against every role: no key -> 401, wrong role -> 403, right role -> through.

``ROUTES`` mirrors the HTTP API table of README.md. The test fails when the app has a route that is not in the
table, or when a route's declared roles differ from the table, so each new route must be added here with
a sample request (path with real parameters, query, JSON body) that reaches its handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from litestar import get

from odeus_compliance.app import create_app
from odeus_compliance.errors import ConfigurationError
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import (
    ALL_ROLES,
    PUBLIC_OPT,
    ROLES_OPT,
    Role,
    iter_http_routes,
    requires_role,
)
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, issue_keys, run_server

PUBLIC: Final = frozenset[Role]()
ALL: Final = frozenset(ALL_ROLES)
"""Every role of a person; the ``metrics`` role (a scraper's) reads ``/metrics`` only."""
OFFICER, AUDITOR, ADMIN, METRICS = Role.OFFICER, Role.AUDITOR, Role.ADMIN, Role.METRICS


@dataclasses.dataclass(frozen=True)
class Case:
    """Who may call a route, and a request that reaches its handler."""

    roles: frozenset[Role]
    """Allowed roles; ``PUBLIC`` (empty) means no key needed."""
    path: str
    """The concrete path to request (path parameters filled in)."""
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    json: Any = None


# (method, Litestar path template) -> Case. Mirrors README.md's HTTP API table.
ROUTES: Final[dict[tuple[str, str], Case]] = {
    ("GET", "/health/live"): Case(PUBLIC, "/health/live"),
    ("GET", "/health/ready"): Case(PUBLIC, "/health/ready"),
    ("GET", "/metrics"): Case(frozenset({METRICS, ADMIN}), "/metrics"),
    ("GET", "/api/v1/whoami"): Case(ALL, "/api/v1/whoami"),
    ("GET", "/api/v1/policies"): Case(ALL, "/api/v1/policies"),
    ("GET", "/api/v1/policies/{name:str}"): Case(ALL, "/api/v1/policies/default"),
    ("GET", "/api/v1/audit/entries"): Case(
        frozenset({AUDITOR}), "/api/v1/audit/entries", params={"limit": "5", "action": "access.denied"}
    ),
    ("GET", "/api/v1/audit/checkpoint"): Case(frozenset({AUDITOR}), "/api/v1/audit/checkpoint"),
    ("GET", "/api/v1/audit/entries/{seq:int}/proof"): Case(
        frozenset({AUDITOR}), "/api/v1/audit/entries/0/proof"
    ),
    ("GET", "/api/v1/audit/consistency"): Case(
        frozenset({AUDITOR}), "/api/v1/audit/consistency", params={"from": "1"}
    ),
    ("GET", "/api/v1/audit/verify"): Case(frozenset({AUDITOR}), "/api/v1/audit/verify"),
    ("POST", "/api/v1/audit/export"): Case(
        frozenset({AUDITOR}),
        "/api/v1/audit/export",
        json={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "purpose": "role matrix"},
    ),
    # a valid body naming no policy: the handler answers 400 before it queues a job (no upstream in this test)
    ("POST", "/api/v1/reports"): Case(
        frozenset({OFFICER}),
        "/api/v1/reports",
        json={"month": "2026-01", "timezone": "UTC", "policy": "no-such-policy", "purpose": "role matrix"},
    ),
    ("GET", "/api/v1/reports"): Case(frozenset({OFFICER, AUDITOR}), "/api/v1/reports"),
    ("GET", "/api/v1/reports/{report_id:str}"): Case(
        frozenset({OFFICER, AUDITOR}), "/api/v1/reports/rpt_000000000000000000000000"
    ),
    ("GET", "/api/v1/reports/{report_id:str}/pdf"): Case(
        frozenset({OFFICER, AUDITOR}),
        "/api/v1/reports/rpt_000000000000000000000000/pdf",
        params={"purpose": "role matrix"},
    ),
    ("GET", "/api/v1/reports/{report_id:str}/data.csv"): Case(
        frozenset({OFFICER}),
        "/api/v1/reports/rpt_000000000000000000000000/data.csv",
        params={"purpose": "role matrix"},
    ),
    ("POST", "/api/v1/reports/verify"): Case(ALL, "/api/v1/reports/verify"),  # no body: 400 from the handler
    ("POST", "/api/v1/reports/{report_id:str}/cancel"): Case(  # unknown id: 404 from the handler
        frozenset({OFFICER}),
        "/api/v1/reports/rpt_000000000000000000000000/cancel",
        json={"purpose": "role matrix"},
    ),
    ("GET", "/api/v1/schedules"): Case(frozenset({ADMIN, OFFICER}), "/api/v1/schedules"),
    ("PUT", "/api/v1/schedules"): Case(
        frozenset({ADMIN}),
        "/api/v1/schedules",
        json={
            "name": "role-matrix",
            "every": "month",
            "day": 1,
            "time": "06:00",
            "timezone": "Europe/Berlin",
            "policy": "default",
        },
    ),
    ("PUT", "/api/v1/schedules/{schedule_id:uuid}/delivery"): Case(  # unknown id: 404 from the handler
        frozenset({OFFICER}), "/api/v1/schedules/00000000-0000-4000-8000-000000000000/delivery", json={}
    ),
    ("GET", "/api/v1/schedules/{schedule_id:uuid}/runs"): Case(  # unknown id: 404 from the handler
        frozenset({ADMIN, OFFICER}), "/api/v1/schedules/00000000-0000-4000-8000-000000000000/runs"
    ),
    # the OpenAPI document and its renderers (Litestar's, public through their router's opt)
    ("GET", "/schema"): Case(PUBLIC, "/schema"),
    ("GET", "/schema/openapi.json"): Case(PUBLIC, "/schema/openapi.json"),
    ("GET", "/schema/openapi.yaml"): Case(PUBLIC, "/schema/openapi.yaml"),
    ("GET", "/schema/openapi.yml"): Case(PUBLIC, "/schema/openapi.yml"),
    ("GET", "/schema/{path:str}"): Case(PUBLIC, "/schema/no-such-page"),
}


def test_every_route_is_in_the_table_with_its_roles(tmp_path: Path) -> None:
    app = create_app(Settings.for_tests(tmp_path))
    declared: dict[tuple[str, str], frozenset[Role]] = {}
    for method, path, handler in iter_http_routes(app):
        if path.startswith("/console"):
            continue  # the console's pages have their own table (test_console_access.py)
        is_public = handler.opt.get(PUBLIC_OPT) is True
        declared[(method, path)] = PUBLIC if is_public else frozenset(handler.opt[ROLES_OPT])
    missing = sorted(set(declared) - set(ROUTES))
    assert not missing, f"routes missing from ROUTES in {__file__}: {missing}"
    stale = sorted(set(ROUTES) - set(declared))
    assert not stale, f"ROUTES lists routes the app does not have: {stale}"
    wrong = {
        k: (sorted(declared[k]), sorted(ROUTES[k].roles)) for k in ROUTES if declared[k] != ROUTES[k].roles
    }
    assert not wrong, f"declared roles differ from the table (declared, table): {wrong}"


def test_role_matrix_over_http(live_server: LiveServer) -> None:
    settings = live_server.settings
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())  # /health/ready: 200, not 503
    failures: list[str] = []
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        for (method, template), case in ROUTES.items():

            def call(headers: dict[str, str], method: str = method, case: Case = case) -> httpx.Response:
                return client.request(method, case.path, params=case.params, json=case.json, headers=headers)

            anonymous = call({})
            if case.roles == PUBLIC:
                if anonymous.status_code in {401, 403}:
                    failures.append(f"{method} {template}: public but {anonymous.status_code} without a key")
            elif anonymous.status_code != 401:
                failures.append(f"{method} {template}: {anonymous.status_code} without a key, expected 401")
            for role in Role:
                status = call(live_server.auth(role)).status_code
                allowed = case.roles == PUBLIC or role in case.roles
                if allowed and (status in {401, 403} or status >= 500):
                    failures.append(f"{method} {template}: {role} allowed but got {status}")
                if not allowed and status != 403:
                    failures.append(f"{method} {template}: {role} not allowed but got {status}, expected 403")
    assert not failures, "\n".join(failures)


def concrete(template: str) -> str:
    """A request path for a route template: each ``{name:type}`` filled with a sample value."""
    samples = {case.path for (_method, t), case in ROUTES.items() if t == template}
    return next(iter(samples)) if samples else template


def test_automatic_options_and_head_reveal_nothing(live_server: LiveServer) -> None:
    """Litestar answers ``OPTIONS`` on every path by itself (204 and ``Allow``, no key needed: CORS
    preflights) and has no automatic ``HEAD``. Neither may run a handler or return data without a key."""
    app = create_app(live_server.settings)
    automatic = [(m, p) for m, p, h in iter_http_routes(app, automatic_options=True) if not h.opt]
    paths = sorted(
        {
            path
            for _method, path, _handler in iter_http_routes(app, automatic_options=True)
            if not path.startswith("/console")  # the console's pages: test_console_access.py
        }
    )
    assert {p for _m, p in automatic if not p.startswith("/console")} <= set(paths)
    failures: list[str] = []
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        for template in paths:
            options = client.options(concrete(template))
            methods = {m for (m, t) in ROUTES if t == template} or {"GET"}
            allow = {m.strip() for m in options.headers.get("allow", "").split(",")}
            if options.status_code != 204 or options.content or not methods <= allow:
                failures.append(f"OPTIONS {template}: {options.status_code} {options.content[:60]!r}")
            head = client.head(concrete(template))
            public = all(case.roles == PUBLIC for (_m, t), case in ROUTES.items() if t == template)
            if not public and head.status_code < 400:
                failures.append(f"HEAD {template}: {head.status_code} without a key")
    assert not failures, "\n".join(failures)


def test_access_is_decided_by_declaration_not_by_path(migrated_settings: Settings) -> None:
    """A route that declares roles stays closed under ``/schema/`` and ``/health/`` (no path exemptions)."""

    @get("/schema/admin-notes", opt=requires_role(ADMIN), sync_to_thread=False)
    def schema_notes() -> str:
        return "admin notes"

    @get("/health/admin-notes", opt=requires_role(ADMIN), sync_to_thread=False)
    def health_notes() -> str:
        return "admin notes"

    keys = issue_keys(migrated_settings)
    app = create_app(migrated_settings, extra_route_handlers=[schema_notes, health_notes])
    with run_server(app) as base_url, httpx.Client(base_url=base_url) as client:
        for path in ("/schema/admin-notes", "/health/admin-notes"):
            assert client.get(path).status_code == 401, path
            officer = {"Authorization": f"Bearer {keys[OFFICER]}"}
            assert client.get(path, headers=officer).status_code == 403, path
            admin = {"Authorization": f"Bearer {keys[ADMIN]}"}
            assert client.get(path, headers=admin).text == "admin notes"


def test_an_undeclared_route_under_schema_is_refused(tmp_path: Path) -> None:
    @get("/schema/extra", sync_to_thread=False)
    def extra() -> str:
        return "?"

    with pytest.raises(ConfigurationError, match="must declare exactly one"):
        create_app(Settings.for_tests(tmp_path), extra_route_handlers=[extra])
