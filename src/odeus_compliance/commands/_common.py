"""Helpers shared by the CLI commands: settings with a clean error, async bodies, one-line failures.

Every failure leaves as one line on stderr and exit code 1 (click itself uses 2 for bad usage); never a
traceback, because a traceback can quote data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from odeus_compliance.errors import OdeusComplianceError, ValidationFailed
from odeus_compliance.purpose import check_purpose
from odeus_compliance.settings import Settings, load_environment
from odeus_compliance.settings_check import settings_with_warnings

__all__ = ["checked_purpose", "ensure_schema_at_head", "load_settings", "run_async"]

T = TypeVar("T")


def load_settings(*, demo: bool = False, upstream: bool = False) -> Settings:
    """Settings from the environment and ``./.env``; a configuration problem becomes a one-line exit 1.

    ``upstream=True`` for commands that call Odeus (they need ``ODEUS_API_KEY``); the others do not.
    """
    try:
        settings, warnings = settings_with_warnings(load_environment(), demo=demo, upstream=upstream)
    except OdeusComplianceError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        click.echo(warning, err=True)
    return settings


def checked_purpose(value: str, *, doing: str) -> str:
    """``--purpose`` under the rule every route applies (:mod:`odeus_compliance.purpose`); bad usage (exit 2)
    otherwise, naming the rule, never the text."""
    try:
        return check_purpose(value, required_for=doing, source="option")
    except ValidationFailed as exc:
        raise click.BadParameter(exc.detail, param_hint="--purpose") from None


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion; known failures become one-line ``ClickException``s (exit 1)."""
    try:
        return asyncio.run(coro)
    except click.ClickException:
        raise
    except OdeusComplianceError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the CLI's promise: no traceback, ever
        if isinstance(exc, (OSError, *_database_errors())):
            # driver messages can repeat statement parameters: name only the kind of failure
            raise click.ClickException(
                f"the database is not reachable or refused the operation ({type(exc).__name__})"
            ) from None
        raise click.ClickException(
            f"unexpected failure ({type(exc).__name__}); run again with care"
        ) from None


def _database_errors() -> tuple[type[Exception], ...]:
    # imported on failure only: commands that never touch the database need not load the driver stack
    from sqlalchemy.exc import DBAPIError, OperationalError  # noqa: PLC0415

    return (OperationalError, DBAPIError)


def _sqlite_file_exists(database_url: str, path_of: Callable[[str], Path]) -> bool:
    try:
        return path_of(database_url).exists()
    except ValueError:
        return True  # in memory: nothing to create on disk


async def ensure_schema_at_head(settings: Settings) -> None:
    """Fail with a hint to run ``init`` unless the database schema is at the code's head revision."""
    from odeus_compliance.db.engine import (  # noqa: PLC0415 - see _database_errors
        create_engine_for,
        sqlite_database_path,
    )
    from odeus_compliance.db.migrate import schema_status  # noqa: PLC0415

    if settings.is_sqlite and not _sqlite_file_exists(settings.database_url, sqlite_database_path):
        # a read-only command never creates an installation (a mistyped data dir would get a second one)
        msg = (
            f"there is no installation at {settings.data_dir} (no database file there); check "
            "ODEUS_COMPLIANCE_DATA_DIR, or create one with 'odeus-compliance init'"
        )
        raise click.ClickException(msg)
    engine = create_engine_for(settings)
    try:
        status = await schema_status(engine)
    finally:
        await engine.dispose()
    if not status.at_head:
        current = status.current or "empty"
        msg = (
            f"the database schema is at revision {current}, this version needs {status.head}; "
            "run 'odeus-compliance init' (or 'db upgrade') first"
        )
        raise click.ClickException(msg)


def parse_instant(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time with a UTC offset from a command-line option (``None`` stays ``None``), in UTC."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "expected an ISO 8601 time with offset, e.g. 2026-12-01T06:00:00+01:00", param_hint=option
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter("the time needs a UTC offset (e.g. Z or +01:00)", param_hint=option)
    return moment.astimezone(dt.UTC)
