"""Every route of the app against every role: no key -> 401, wrong role -> 403, right role -> through.

``ROUTES`` mirrors the HTTP table of DESIGN.md. The test fails when the app has a route that is not in the
table, or when a route's declared roles differ from the table, so each new route must be added here with
a sample request (path with real parameters, query, JSON body) that reaches its handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx

from odeus_compliance.app import create_app
from odeus_compliance.security import PUBLIC_OPT, ROLES_OPT, Role, iter_http_routes
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer

PUBLIC: Final = frozenset[Role]()
ALL: Final = frozenset(Role)
OFFICER, AUDITOR, ADMIN = Role.OFFICER, Role.AUDITOR, Role.ADMIN


@dataclasses.dataclass(frozen=True)
class Case:
    """Who may call a route, and a request that reaches its handler."""

    roles: frozenset[Role]
    """Allowed roles; ``PUBLIC`` (empty) means no key needed."""
    path: str
    """The concrete path to request (path parameters filled in)."""
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    json: Any = None


# (method, Litestar path template) -> Case. Mirrors DESIGN.md's HTTP table.
ROUTES: Final[dict[tuple[str, str], Case]] = {
    ("GET", "/health/live"): Case(PUBLIC, "/health/live"),
    ("GET", "/health/ready"): Case(PUBLIC, "/health/ready"),
    ("GET", "/api/v1/whoami"): Case(ALL, "/api/v1/whoami"),
    ("GET", "/api/v1/policies"): Case(ALL, "/api/v1/policies"),
    ("GET", "/api/v1/policies/{name:str}"): Case(ALL, "/api/v1/policies/default"),
}


def test_every_route_is_in_the_table_with_its_roles(tmp_path: Path) -> None:
    app = create_app(Settings.for_tests(tmp_path))
    declared: dict[tuple[str, str], frozenset[Role]] = {}
    for method, path, handler in iter_http_routes(app):
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
