"""A live server for the auditor console's tests, on a database that already holds what the auditor pages
show: a retention run's signed deletion receipts (a far-future run over one report, as
``tests/integration/test_retention.py`` does) and a legal hold; then people signed in by one-time link."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from odeus_compliance.app import create_app
from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.core.clock import utcnow
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.retention.holds import place_hold
from odeus_compliance.retention_rules import DataClass
from odeus_compliance.settings import Settings
from tests.support.retention import FAR, World, run
from tests.support.server import LiveServer, issue_keys, run_server

__all__ = ["HOLD_REASON", "csrf_token", "prepare_retention", "serve_with_receipts", "sign_in_links"]

HOLD_REASON: Final = "case 4711"
_CSRF: Final = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def prepare_retention(settings: Settings) -> int:
    """One report, a hold on the datasets class, and a far-future retention run; the receipt count."""

    async def body(w: World) -> int:
        await w.report(8)
        now = utcnow()
        async with w.sessions() as session:
            await place_hold(
                session=session, data_class=DataClass.DATASETS, reason=HOLD_REASON, created_by="cli", now=now
            )
        result = await w.purge().run(now=now + FAR)
        return len(result.receipts)

    return run(body, settings)


@contextmanager
def serve_with_receipts(settings: Settings) -> Iterator[LiveServer]:
    """The app on loopback (one API key per role) over a database with receipts and a hold."""
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    prepare_retention(settings)
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


def sign_in_links(server: LiveServer, people: list[tuple[str, str]]) -> list[str]:
    """One-time sign-in links for ``(name, role)`` pairs."""
    return asyncio.run(
        issue_sign_in_links(server.settings, people=people, minutes=15, base_url=server.base_url)
    )


def csrf_token(response: httpx.Response) -> str:
    """The CSRF token of a console page."""
    match = _CSRF.search(response.text)
    assert match is not None, "no csrf_token on the page"
    return match.group(1)
