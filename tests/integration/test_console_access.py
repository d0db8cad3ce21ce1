"""Who may open what in the console, over every console route the app has (read from the app, so a new page
is covered the day it is added): no session is sent to sign in, a role the route does not list gets a 403
page and an ``access.denied`` record, a form without its CSRF token is refused, every page carries the strict
CSP and ``no-store`` and has no inline script, style or handler, unknown paths are a 404 page for everyone,
and no ``next`` leads out of the console.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import lxml.html
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.console.routing import safe_return_path
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import ALL_ROLES, PUBLIC_OPT, ROLES_OPT, Role, iter_http_routes
from odeus_compliance.settings import Settings
from tests.support.console_session import audit_records, sign_in_link
from tests.support.server import LiveServer, issue_keys, run_server

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PEOPLE = {Role.OFFICER: "Olga Officer", Role.AUDITOR: "Arthur Auditor", Role.ADMIN: "Ada Admin"}
# a value for each kind of path parameter the console uses (unknown ones: a 404 is fine, a 5xx is not)
_PARAMETERS = {"int": "0", "uuid": str(uuid.UUID(int=1)), "path": "no-such-thing", "str": "no-such-thing"}
_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    template: str
    roles: frozenset[Role] | None  # None: public

    @property
    def path(self) -> str:
        return _PARAMETER.sub(lambda m: _PARAMETERS[m.group(2)], self.template)


def console_routes(settings: Settings) -> list[Route]:
    """Every console route of the app (``/console...``), the static assets aside."""
    routes = []
    for method, template, handler in iter_http_routes(create_app(settings)):
        if not template.startswith("/console") or template.startswith("/console/static"):
            continue
        public = handler.opt.get(PUBLIC_OPT) is True
        routes.append(Route(method, template, None if public else frozenset(handler.opt[ROLES_OPT])))
    return routes


@pytest.fixture
def server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The app with refusals recorded one by one (no summaries, no 429 however many the matrix makes)."""
    settings = dataclasses.replace(migrated_settings, denial_records=100_000, denial_limit=1_000_000)
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


@pytest.fixture
def people(server: LiveServer) -> Iterator[dict[Role, httpx.Client]]:
    """One signed-in client per role."""
    clients = {}
    for role, name in PEOPLE.items():
        client = httpx.Client(base_url=server.base_url, timeout=60)
        assert client.get(sign_in_link(server.settings, server.base_url, name, role.value)).status_code == 200
        clients[role] = client
    yield clients
    for client in clients.values():
        client.close()


def _csrf(client: httpx.Client) -> str:
    return client.get("/console/").text.split('name="csrf_token" value="')[1].split('"')[0]


def assert_console_page(answer: httpx.Response) -> None:
    """A console HTML answer: the strict CSP, not cached, no inline script, style or event handler."""
    assert answer.headers["content-type"].startswith("text/html"), answer.request.url
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert answer.headers["cache-control"] == "no-store"
    assert "Traceback" not in answer.text
    if not answer.text:
        return
    document = lxml.html.document_fromstring(answer.text)
    for script in document.iter("script"):
        assert script.get("src"), f"inline script in {answer.request.url}"
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            assert name != "style", f"style= in {answer.request.url}"
            assert not name.startswith(("on", "hx-on")), f"{name}= in {answer.request.url}"
            assert not value.strip().lower().startswith("javascript:"), f"{name}={value}"


@SQLITE
def test_every_console_route_by_session_and_role(
    server: LiveServer, people: dict[Role, httpx.Client]
) -> None:
    routes = console_routes(server.settings)
    assert {r.template for r in routes} >= {"/console", "/console/sign-out", "/console/{rest:path}"}
    refused = 0
    with httpx.Client(base_url=server.base_url, timeout=60) as anonymous:
        for route in routes:
            if route.roles is None:
                continue
            nobody = anonymous.request(route.method, route.path)
            assert nobody.status_code == 303, route
            assert nobody.headers["location"].startswith("/console/sign-in?next=/console"), route
            if route.method == "GET":
                assert nobody.headers["location"] == f"/console/sign-in?next={quote(route.path, safe='/')}"
            for role, client in people.items():
                if route.method == "POST" and role in route.roles:
                    forged = client.post(route.path, data={"purpose": "x"})
                    assert forged.status_code == 403, route
                    assert "did not come from the console" in forged.text
                    assert_console_page(forged)
                    if route.template == "/console/sign-out":
                        continue  # with its token: tested in test_console_sign_in.py
                data = {"csrf_token": _csrf(client)} if route.method == "POST" else None
                answer = client.request(route.method, route.path, data=data)
                assert answer.status_code < 500, (route, role, answer.text[:500])
                if role not in route.roles:
                    assert answer.status_code == 403, (route, role)
                    assert "problem+json" not in answer.headers["content-type"]
                    refused += 1
                if answer.headers.get("content-type", "").startswith("text/html"):
                    assert_console_page(answer)
    denied = [
        r
        for r in audit_records(server.base_url, server.keys[Role.AUDITOR], action="access.denied")
        if r["actor_key_id"].startswith("console:")
    ]
    wrong_role = [r for r in denied if r["details"].get("reason") == "wrong_role"]
    assert len(wrong_role) == refused
    assert {r["actor_name"] for r in wrong_role} <= set(PEOPLE.values())


@SQLITE
def test_public_pages_and_unknown_paths(server: LiveServer, people: dict[Role, httpx.Client]) -> None:
    unknown = (
        "/console/no-such-page",
        "/console/sign-in/a/b",
        "/console/sign-in/oidc/callback/x",
        "/console/reports/x/y/z/w",
        "/console/static/no-such-asset.css",
        "/console/%2e%2e/api/v1/whoami",
    )
    with httpx.Client(base_url=server.base_url, timeout=60) as anonymous:
        clients = [anonymous, *people.values()]
        for client in clients:
            for path in unknown:
                answer = client.get(path)
                assert answer.status_code == 404, (path, answer.status_code)
                assert_console_page(answer)
            sign_in = client.get("/console/sign-in")
            assert sign_in.status_code == 200
            assert_console_page(sign_in)
            no_oidc = client.get("/console/sign-in/oidc")
            assert no_oidc.status_code == 404
            assert_console_page(no_oidc)
        wrong_method = anonymous.post("/console/no-such-page")
        assert wrong_method.status_code == 405
        assert_console_page(wrong_method)


@pytest.mark.parametrize(
    "raw",
    [
        "//evil.example",
        "//evil.example/console/",
        "https://evil.example",
        "https://evil.example/console/",
        "/console/../api",
        "/console/..%2fapi",
        "/console/%2e%2e/api",
        "/console/\\evil.example",
        "/\\evil.example",
        "/console/x?next=//evil",
        "/console/x#//evil",
        "/console/\r\nLocation: //evil",
        "javascript:alert(1)",
        "/console/" + "a" * 200,
        "/console/sign-in/" + "A" * 43,  # someone else's sign-in link: a swapped session
        "/console/sign-in/oidc",
        "/console/sign-out",
    ],
)
def test_no_return_path_leaves_the_console(raw: str) -> None:
    assert safe_return_path(raw) == "/console/"


def test_plain_console_paths_are_kept() -> None:
    for path in ("/console/", "/console/reports", "/console/reports/rpt_1/", "/console/audit/verify"):
        assert safe_return_path(path) == path


@SQLITE
def test_a_return_path_made_to_backtrack_is_answered_at_once(server: LiveServer) -> None:
    """``/console/aaaa...!`` used to make the return-path pattern backtrack exponentially: one request
    held the event loop (and every other request) for ever."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for length in (40, 190):
            answer = client.get("/console/sign-in", params={"next": "/console/" + "a" * length + "!"})
            assert answer.status_code == 200
            assert_console_page(answer)
        assert client.get("/health/live").status_code == 200


def test_roles_of_people_are_the_console_roles() -> None:
    assert set(PEOPLE) == set(ALL_ROLES)
