"""Console sign-in in Chromium: through a real OpenID provider (``tests/support/oidc.py``) and with a
one-time link. A person of a mapped group lands signed in with the role of the group and the name of the ID
token; a person of no mapped group is refused with a page that says so; a callback without the browser that
started the sign-in, or a second time, is refused; the link works once. axe-core finds nothing on the
sign-in page, the overview and the error pages (screenshots in ``test-artifacts/screenshots/console-*``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page

from odeus_compliance.app import create_app
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import Role
from odeus_compliance.settings import OidcSettings, Secret, Settings
from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import new_context, screenshot
from tests.support.console_session import audit_records, sign_in_link
from tests.support.oidc import RunningOidcProvider, run_oidc_provider, sign_in_at_provider
from tests.support.server import LiveServer, issue_keys, run_server

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

CALLBACK = "/console/sign-in/oidc/callback"
ROLE_MAP = {"compliance-officers": "officer", "auditors": "auditor", "compliance-admins": "admin"}


@dataclasses.dataclass(frozen=True)
class Setup:
    server: LiveServer
    provider: RunningOidcProvider


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def setup(migrated_settings: Settings) -> Iterator[Setup]:
    """The provider (told our callback) and our server configured for it."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with run_oidc_provider(redirect_uris=[base_url + CALLBACK]) as provider:
        settings = dataclasses.replace(
            migrated_settings,
            oidc=OidcSettings(
                issuer=provider.issuer,
                client_id=provider.client_id,
                client_secret=Secret(provider.client_secret),
                role_map=ROLE_MAP,
            ),
        )
        ensure_demo_certificate(settings.data_dir, settings.require_master_key())
        keys = issue_keys(settings)
        with run_server(create_app(settings), port=port) as served:
            assert served == base_url
            yield Setup(LiveServer(base_url=base_url, settings=settings, keys=keys), provider)


async def _assert_accessible(page: Page, name: str) -> None:
    await screenshot(page, name)
    violations = await axe_violations(page)
    assert violations == [], describe_violations(violations)


def _sign_ins(setup: Setup) -> list[dict[str, object]]:
    server = setup.server
    return audit_records(server.base_url, server.keys[Role.AUDITOR], action="console.sign_in")


async def test_sign_in_through_the_identity_provider(setup: Setup, page: Page, browser: Browser) -> None:
    base = setup.server.base_url
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if CALLBACK in r.url else None)

    await page.goto(f"{base}/console/")
    assert page.url.startswith(f"{base}/console/sign-in?next=")
    await _assert_accessible(page, "console-sign-in")
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.wait_for_url(lambda url: url.startswith(setup.provider.issuer))
    await sign_in_at_provider(page, setup.provider, "officer")
    await page.wait_for_url(lambda url: CALLBACK not in url and "/sign-in" not in url)
    assert page.url.startswith(f"{base}/console/")
    await page.goto(f"{base}/console/")
    await page.get_by_role("heading", name="Overview").wait_for()
    text = await page.inner_text("main")
    assert "Olive Officer" in text
    assert "officer" in text
    await _assert_accessible(page, "console-overview-oidc")
    (success,) = [r for r in _sign_ins(setup) if r["outcome"] == "success"]
    assert success["details"]["sign_in"] == "oidc"  # type: ignore[index]
    assert success["actor_name"] == "Olive Officer"
    assert success["role"] == "officer"
    assert str(success["actor_key_id"]).startswith("console:oidc:")

    # the provider's answer once more: in this browser (its sign-in was used) and in another one
    (callback,) = callbacks
    answer = await page.goto(callback)
    assert answer is not None
    assert answer.status == 403
    stranger_context = await new_context(browser)
    stranger = await stranger_context.new_page()
    answer = await stranger.goto(callback)
    assert answer is not None
    assert answer.status == 403
    await stranger.get_by_role("heading", name="Sign-in refused").wait_for()
    await _assert_accessible(stranger, "console-sign-in-refused")
    await stranger_context.close()
    assert not [r for r in _sign_ins(setup) if r["outcome"] == "failure"]  # nobody named: no sign-in record
    server = setup.server
    denied = audit_records(server.base_url, server.keys[Role.AUDITOR], action="access.denied")
    assert [r["details"]["reason"] for r in denied] == ["sign_in_not_started"] * 2


async def test_a_person_without_a_console_role_is_refused(setup: Setup, page: Page) -> None:
    base = setup.server.base_url
    await page.goto(f"{base}/console/sign-in")
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.wait_for_url(lambda url: url.startswith(setup.provider.issuer))
    await sign_in_at_provider(page, setup.provider, "nobody")
    await page.get_by_role("heading", name="Sign-in refused").wait_for()
    assert "no role in this console" in await page.inner_text("main")
    await _assert_accessible(page, "console-no-role")
    (refused,) = _sign_ins(setup)
    assert refused["outcome"] == "failure"
    assert refused["details"]["error_code"] == "no_console_role"  # type: ignore[index]
    assert refused["role"] == "anonymous"
    # no session: the console still sends this browser to sign in
    await page.goto(f"{base}/console/")
    assert "/console/sign-in" in page.url


def test_forged_callbacks_are_refused_without_a_server_error(setup: Setup) -> None:
    base = setup.server.base_url
    with httpx.Client(base_url=base, timeout=30) as client:
        forged = client.get(CALLBACK, params={"code": "x", "state": "y"})
        assert forged.status_code == 403
        assert forged.headers["content-type"].startswith("text/html")
        started = client.get("/console/sign-in/oidc", params={"next": "//evil.example"})
        assert started.status_code == 303
        assert started.headers["location"].startswith(setup.provider.issuer)
        for state in ("\u00e9" * 43, "y", ""):  # with this browser's sign-in cookie, the wrong state
            answer = client.get(CALLBACK, params={"code": "x", "state": state})
            assert answer.status_code == 403, state
            client.get("/console/sign-in/oidc")  # a fresh sign-in for the next try
        denied = client.get(CALLBACK, params={"error": "access_denied", "state": "y"})
        assert denied.status_code == 403


def test_the_sign_in_cookie_is_secure_prefixed_over_https(setup: Setup) -> None:
    settings = dataclasses.replace(setup.server.settings, public_url="https://console.example.test")
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as client:
        started = client.get("/console/sign-in/oidc")
    assert started.status_code == 303
    (cookie,) = [v for k, v in started.headers.multi_items() if k == "set-cookie"]
    assert cookie.startswith("__Secure-odeus_console_sign_in=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/console/sign-in/oidc", "samesite=lax"} <= attributes


async def test_a_one_time_link_in_the_browser(setup: Setup, page: Page, browser: Browser) -> None:
    server = setup.server
    link = await asyncio.to_thread(sign_in_link, server.settings, server.base_url, "Ada Admin", "admin")
    await page.goto(link)
    await page.wait_for_url(lambda url: "/sign-in" not in url)  # the signed-in page moves on by itself
    await page.goto(f"{server.base_url}/console/")
    assert "Ada Admin" in await page.inner_text("header")
    await _assert_accessible(page, "console-overview-link")
    missing = await page.goto(f"{server.base_url}/console/no-such-page")
    assert missing is not None
    assert missing.status == 404
    await _assert_accessible(page, "console-not-found")
    other_context = await new_context(browser)
    other = await other_context.new_page()
    answer = await other.goto(link)
    assert answer is not None
    assert answer.status == 403
    assert "not valid" in await other.inner_text("main")
    await _assert_accessible(other, "console-link-used")
    await other_context.close()
