"""The browser-test infrastructure works against real components on loopback.

- axe-core (``tests/support/axe.py``) runs in a page served with the console's strict CSP
  (``script-src 'self'``): 0 violations on a good page, the missing label and alt text on a bad one;
  the same CSP blocks the page's inline script and a script element added by Playwright, which is why axe
  is evaluated through the DevTools protocol instead.
- The OpenID provider (``tests/support/oidc.py``): a whole authorization-code flow with PKCE in Chromium,
  the code exchanged at the token endpoint and the ID token checked against the provider's JWKS, with the
  ``groups`` claim; an unknown login name is refused; a request without PKCE is refused; the provider is
  gone when its block ends.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from tests.support.axe import axe_violations, describe_violations
from tests.support.oidc import (
    DEFAULT_ACCOUNTS,
    SCOPES,
    RunningOidcProvider,
    run_oidc_provider,
    sign_in_at_provider,
    submit_login,
)

STRICT_CSP = "default-src 'self'; script-src 'self'"

GOOD_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Request a report</title></head>
<body>
<main>
<h1>Request a report</h1>
<form method="post" action="/requested">
  <label for="month">Month</label>
  <input id="month" name="month" type="month">
  <button type="submit">Request</button>
</form>
</main>
</body>
</html>
"""

# an unlabelled field and an image without a text alternative
BAD_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Request a report</title></head>
<body>
<main>
<h1>Request a report</h1>
<img src="/chart.png">
<form method="post" action="/requested">
  <input name="month" type="text">
  <button type="submit">Request</button>
</form>
</main>
</body>
</html>
"""

# the inline script must not run; the same-origin one must
SCRIPTED_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Scripts</title>
<script src="/allowed.js" defer></script>
<script>document.documentElement.dataset.inline = 'ran';</script>
</head>
<body><main><h1>Scripts</h1></main></body>
</html>
"""
ALLOWED_SCRIPT = "document.documentElement.dataset.external = 'ran';\n"

CALLBACK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Signed in</title></head>
<body><main><h1>Back at the relying party</h1></main></body></html>
"""

# Before any of the page's own scripts: record the CSP violations the page reports.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.cspViolations.push({directive: event.effectiveDirective, blocked: event.blockedURI});
});
"""


@dataclass
class Site:
    """A loopback HTTP server with a few pages, each sent with the strict CSP, and a redirect URI."""

    base_url: str
    callbacks: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"


def _handler_for(site_holder: list[Site]) -> type[BaseHTTPRequestHandler]:
    pages = {
        "/good": ("text/html; charset=utf-8", GOOD_PAGE),
        "/bad": ("text/html; charset=utf-8", BAD_PAGE),
        "/scripted": ("text/html; charset=utf-8", SCRIPTED_PAGE),
        "/allowed.js": ("text/javascript; charset=utf-8", ALLOWED_SCRIPT),
        "/callback": ("text/html; charset=utf-8", CALLBACK_PAGE),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/callback":
                site_holder[0].callbacks.append(parse_qs(url.query))
            if url.path not in pages:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            content_type, text = pages[url.path]
            body = text.encode("utf-8")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", STRICT_CSP)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            """Quiet: the query strings hold codes."""

    return Handler


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    holder: list[Site] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(holder))
    holder.append(Site(base_url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def provider(site: Site) -> Iterator[RunningOidcProvider]:
    with run_oidc_provider(redirect_uris=[site.redirect_uri]) as running:
        yield running


# --- axe-core and the CSP ---------------------------------------------------------------------------


async def test_axe_finds_no_violation_on_a_good_page_served_with_the_strict_csp(
    page: Page, site: Site
) -> None:
    response = await page.goto(f"{site.base_url}/good")
    assert response is not None
    assert response.headers["content-security-policy"] == STRICT_CSP

    violations = await axe_violations(page)

    assert violations == [], describe_violations(violations)


async def test_axe_reports_the_unlabelled_field_and_the_image_without_alt(page: Page, site: Site) -> None:
    await page.goto(f"{site.base_url}/bad")

    violations = await axe_violations(page)

    rules = {violation["id"] for violation in violations}
    assert {"label", "image-alt"} <= rules, describe_violations(violations)
    image = next(v for v in violations if v["id"] == "image-alt")
    assert [node["target"] for node in image["nodes"]] == [["img"]]


async def test_the_csp_blocks_inline_scripts_and_added_script_elements(page: Page, site: Site) -> None:
    await page.add_init_script(RECORD_CSP_VIOLATIONS)
    await page.goto(f"{site.base_url}/scripted")
    await page.wait_for_function("() => document.documentElement.dataset.external === 'ran'")

    assert await page.evaluate("() => document.documentElement.dataset.inline") is None
    # what add_script_tag would do: an inline <script> element, refused like the page's own
    with pytest.raises(PlaywrightError, match="Content Security Policy"):
        await page.add_script_tag(content="document.documentElement.dataset.added = 'ran';")
    assert await page.evaluate("() => document.documentElement.dataset.added") is None
    violations = await page.evaluate("() => window.cspViolations")
    assert {"directive": "script-src-elem", "blocked": "inline"} in violations


# --- the OpenID provider --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization_request(metadata: dict[str, Any], provider: RunningOidcProvider) -> AuthorizationRequest:
    """An authorization-code request with PKCE S256, as the console will send it."""
    state, nonce, code_verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
    query = urlencode(
        {
            "client_id": provider.client_id,
            "redirect_uri": provider.redirect_uris[0],
            "response_type": "code",
            "scope": SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    return AuthorizationRequest(f"{metadata['authorization_endpoint']}?{query}", state, nonce, code_verifier)


async def discover(provider: RunningOidcProvider) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(provider.discovery_url)
    response.raise_for_status()
    metadata: dict[str, Any] = response.json()
    return metadata


async def test_authorization_code_flow_with_pkce_yields_a_valid_id_token_with_groups(
    page: Page, site: Site, provider: RunningOidcProvider
) -> None:
    metadata = await discover(provider)
    request = authorization_request(metadata, provider)

    await page.goto(request.url)
    await sign_in_at_provider(page, provider, "officer", screenshot_as="oidc-provider-login")

    assert page.url.startswith(f"{site.redirect_uri}?")
    returned = parse_qs(urlsplit(page.url).query)
    assert returned["state"] == [request.state]
    assert returned["iss"] == [provider.issuer]
    async with httpx.AsyncClient() as client:
        token_response = await client.post(
            metadata["token_endpoint"],
            auth=(provider.client_id, provider.client_secret),  # client_secret_basic
            data={
                "grant_type": "authorization_code",
                "code": returned["code"][0],
                "redirect_uri": site.redirect_uri,
                "code_verifier": request.code_verifier,
            },
        )
    assert token_response.status_code == 200, token_response.text
    id_token = token_response.json()["id_token"]

    signing_key = await asyncio.to_thread(
        jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt, id_token
    )
    claims = jwt.decode(
        id_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=provider.client_id,
        issuer=provider.issuer,
        options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
    )
    officer = DEFAULT_ACCOUNTS["officer"]
    assert claims["nonce"] == request.nonce
    assert claims["sub"] == officer.sub
    assert claims["groups"] == list(officer.groups)
    assert (claims["name"], claims["email"]) == (officer.name, officer.email)


async def test_an_unknown_login_name_is_refused(
    page: Page, site: Site, provider: RunningOidcProvider
) -> None:
    request = authorization_request(await discover(provider), provider)

    await page.goto(request.url)
    async with page.expect_response(lambda r: r.request.method == "POST") as submitted:
        await submit_login(page, "mallory")

    assert (await submitted.value).status == 401
    assert await page.get_by_role("alert").inner_text() == "Unknown login name."
    assert not any(callback.get("state") == [request.state] for callback in site.callbacks)


async def test_an_authorization_request_without_pkce_is_refused(
    site: Site, provider: RunningOidcProvider
) -> None:
    metadata = await discover(provider)
    query = urlencode(
        {
            "client_id": provider.client_id,
            "redirect_uri": site.redirect_uri,
            "response_type": "code",
            "scope": SCOPES,
            "state": "no-pkce",
            "nonce": "no-pkce",
        }
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{metadata['authorization_endpoint']}?{query}")

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(site.redirect_uri)
    returned = parse_qs(urlsplit(location).query)
    assert returned["error"] == ["invalid_request"]
    assert "PKCE" in returned["error_description"][0]


def test_the_provider_is_gone_when_its_block_ends() -> None:
    with run_oidc_provider(redirect_uris=["http://127.0.0.1:9/callback"]) as running:
        assert httpx.get(running.discovery_url).json()["issuer"] == running.issuer

    with pytest.raises(httpx.ConnectError):
        httpx.get(running.discovery_url)
