"""The console as a newcomer meets it: ``demo --serve`` prints a sign-in link per role; each opened in
Chromium signs in, every page that role's navigation offers loads with the console's CSP, no inline script
or style and no axe-core violation; another role's pages answer 403 with a page; a link works only once."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import new_context, screenshot

ROLES = ("officer", "auditor", "admin")
OTHER_ROLE_PAGE = {
    "officer": "/console/audit",
    "auditor": "/console/apikeys",
    "admin": "/console/reports/new",
}


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS")} | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "odeus_compliance", "demo", "--out", str(out), "--users", "60"]
    process = subprocess.Popen(
        [*command, "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        links: dict[str, str] = {}
        for line in process.stdout:
            fields = line.split()
            if len(fields) == 2 and fields[0] in ROLES and fields[1].startswith("http"):
                links[fields[0]] = fields[1]
            if len(links) == len(ROLES):
                break
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base + "/health/live", timeout=1)
                break
            time.sleep(0.1)
        yield base, links
    finally:
        process.terminate()
        process.wait(20)
        if process.stdout is not None:
            process.stdout.close()


async def _check_page(page: Page, name: str) -> None:
    inline = await page.evaluate(
        """() => ({
            scripts: document.querySelectorAll('script:not([src])').length,
            styled: document.querySelectorAll('[style]').length,
            handlers: [...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
        })"""
    )
    assert inline == {"scripts": 0, "styled": 0, "handlers": 0}, (name, inline)
    violations = await axe_violations(page)
    assert not violations, f"{name}: {describe_violations(violations)}"
    await screenshot(page, f"walk-{name}")


@pytest.mark.parametrize("role", ROLES)
async def test_each_printed_link_opens_that_roles_console_and_every_page_holds(
    demo_service: tuple[str, dict[str, str]], browser: Browser, role: str
) -> None:
    base, links = demo_service
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(links[role])
    await page.wait_for_url(f"{base}/console/**")
    await page.wait_for_selector("nav.site-nav")
    assert (await page.locator(".role-badge").inner_text()).strip() == role
    paths = [
        "/console/",
        *await page.eval_on_selector_all("nav.site-nav a", "els => els.map(e => e.pathname)"),
    ]
    assert len(paths) > 1
    for path in paths:
        answer = await page.goto(base + path)
        assert answer is not None
        assert answer.status == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        await _check_page(page, f"{role}{path.replace('/', '-').rstrip('-')}")
    refused = await page.goto(base + OTHER_ROLE_PAGE[role])
    assert refused is not None
    assert refused.status == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Traceback" not in await page.content()
    await _check_page(page, f"{role}-refused")
    await context.close()

    again = await new_context(browser)
    replay = await again.new_page()
    answer = await replay.goto(links[role])
    assert answer is not None
    assert answer.status == 403
    assert await replay.locator("nav.site-nav").count() == 0
    await again.close()
