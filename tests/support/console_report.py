"""A finished report for the console's report-page tests, and reading its page back.

- ``finished_report(settings)``: the service pulling from the built-in Odeus simulator, one report of last
  month under the ``example`` policy (grouped figures and per-person rows) requested through the API and
  run to the end; yields the server, the report's API form and the simulator's people (their names, e-mail
  addresses and upstream ids).
- ``sign_in(server, name, role)``: an ``httpx.Client`` signed in to the console through a one-time link
  (``sign_in_link``: just the link, for a browser).
- ``html_tables(html)``: every ``<table id=...>`` of a page as rows of cell texts.
- ``pdf_text(pdf)``: ``pdftotext -layout`` of a PDF, white space collapsed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.workspace import Users
from tests.support.server import LiveServer, last_month, simulator_server

__all__ = ["FinishedReport", "finished_report", "html_tables", "pdf_text", "sign_in", "sign_in_link"]


@dataclasses.dataclass(frozen=True)
class FinishedReport:
    """A running server with one succeeded report."""

    server: LiveServer
    report: dict[str, Any]
    people: Users

    @property
    def page(self) -> str:
        """The report's console page."""
        return f"/console/reports/{self.report['id']}"


@contextmanager
def finished_report(settings: Settings) -> Iterator[FinishedReport]:
    """The server with one report of last month (``example`` policy, Europe/Berlin) that has succeeded."""
    with simulator_server(settings, users=60, seed=11) as (server, sim):
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            requested = client.post(
                "/api/v1/reports",
                json={
                    "month": last_month(),
                    "timezone": "Europe/Berlin",
                    "policy": "example",
                    "purpose": "console report page test",
                },
                headers=server.auth(Role.OFFICER),
            )
            assert requested.status_code == 202, requested.text
            deadline = time.monotonic() + 240  # only so that a broken job cannot hang the run
            while True:
                report = client.get(requested.headers["location"], headers=server.auth(Role.OFFICER)).json()
                if report["status"] in {"succeeded", "failed"}:
                    break
                assert time.monotonic() < deadline, report
                time.sleep(0.2)
        assert report["status"] == "succeeded", report
        yield FinishedReport(server=server, report=report, people=sim.workspace.users)


def sign_in_link(server: LiveServer, name: str, role: str) -> str:
    """A one-time sign-in link for ``name`` with ``role``."""
    (link,) = asyncio.run(
        issue_sign_in_links(server.settings, people=[(name, role)], minutes=15, base_url=server.base_url)
    )
    return link


@contextmanager
def sign_in(server: LiveServer, name: str, role: str) -> Iterator[httpx.Client]:
    """A client signed in to the console as ``name`` with ``role`` (it keeps the session cookie)."""
    link = sign_in_link(server, name, role)
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        signed_in = client.get(link)
        assert signed_in.status_code in {200, 303}, signed_in.text
        yield client


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in {"td", "th"} and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> dict[str, list[list[str]]]:
    """Every table of ``html`` by its id: rows of cell texts (white space collapsed; header rows too)."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def pdf_text(pdf: bytes) -> str:
    """The PDF's text as ``pdftotext -layout`` reads it, white space collapsed to single spaces."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.pdf"
        path.write_bytes(pdf)
        text = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], check=True, timeout=60, capture_output=True, text=True
        ).stdout
    return " ".join(text.split())
