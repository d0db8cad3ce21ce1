"""Shared fixtures. Keep this small and general; feature-specific fixtures belong next to their tests.

- ``database_url``: parametrized over SQLite (a file in ``tmp_path``) and PostgreSQL (a fresh scratch
  database per test, marked ``postgres``); every test that touches storage should use it, so it runs on both.
- ``settings``: test settings on that database (random master key); ``migrated_settings``: the same after
  ``db upgrade``.
- ``live_server``: the real app on uvicorn over loopback, with one API key per role.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from odeus_compliance.app import create_app
from odeus_compliance.db.migrate import upgrade
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.settings import Settings
from tests.support.postgres import scratch_database
from tests.support.server import LiveServer, issue_keys, run_server


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what a test's ``configure_logging`` did to the process-wide loggers, so tests stay independent."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    saved = [(lg, lg.level, lg.propagate, lg.disabled, list(lg.handlers)) for lg in loggers]
    yield
    for logger, level, propagate, disabled, handlers in saved:
        logger.setLevel(level)
        logger.propagate, logger.disabled, logger.handlers = propagate, disabled, handlers


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite in ``tmp_path``, or a scratch PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
        return
    with scratch_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on ``database_url`` with a fresh random master key and data dir ``tmp_path/data``."""
    return Settings.for_tests(tmp_path / "data", database_url=database_url)


@pytest.fixture
def migrated_settings(settings: Settings) -> Settings:
    """``settings`` with the schema upgraded to head."""
    asyncio.run(upgrade(settings))
    return settings


@pytest.fixture
def live_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The app served by uvicorn on loopback, with one API key per role in ``.keys``, ready (it can sign:
    the test settings allow the demo certificate)."""
    ensure_demo_certificate(migrated_settings.data_dir, migrated_settings.require_master_key())
    keys = issue_keys(migrated_settings)
    with run_server(create_app(migrated_settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=migrated_settings, keys=keys)
