"""``odeus-compliance db ...``: database maintenance."""

from __future__ import annotations

import click

from odeus_compliance.commands._common import load_settings, run_async
from odeus_compliance.db.migrate import upgrade as upgrade_schema

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database maintenance (SQLite in the data dir, or ODEUS_COMPLIANCE_DATABASE_URL)."""


@db.command()
def upgrade() -> None:
    """Apply every pending migration (safe to run again; run it after each upgrade of odeus-compliance).

    The service never migrates by itself: 'serve' refuses to start until this has been run.
    """
    settings = load_settings()
    run_async(upgrade_schema(settings))
    click.echo("database schema is up to date", err=True)
