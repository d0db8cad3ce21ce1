"""``odeus-compliance apikey ...``: issue, list and revoke API keys for the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

import click

from odeus_compliance.apikeys.actions import issue_api_key, withdraw_api_key
from odeus_compliance.apikeys.service import list_api_keys
from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.standalone import standalone_recorder
from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, run_async
from odeus_compliance.commands._output import print_listing
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings

__all__ = ["apikey"]


@click.group()
def apikey() -> None:
    """Manage API keys for the HTTP API (each key has one role: officer, auditor, admin or metrics)."""


async def _create(settings: Settings, role: Role, name: str) -> tuple[str, str]:
    await ensure_schema_at_head(settings)
    pepper = ApiKeyPepper.from_master_key(settings.require_master_key())
    engine = create_engine_for(settings)
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            record, plaintext = await issue_api_key(
                recorder, session=session, pepper=pepper, name=name, role=role
            )
            return str(record.id), plaintext
    finally:
        await engine.dispose()


@apikey.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="officer: request and download reports; auditor: review the audit log; "
    "admin: keys, schedules, policies; metrics: a Prometheus scraper (GET /metrics only).",
)
@click.option(
    "--name", required=True, help="Who or what the key is for (shown in key lists and audit records)."
)
def create(role: str, name: str) -> None:
    """Issue a new API key and print it ONCE on stdout (its id and a warning go to stderr).

    Only a keyed hash is stored: the key cannot be shown again. Use it as 'Authorization: Bearer <key>'.
    """
    stripped = name.strip()
    if not stripped or len(stripped) > 200 or not stripped.isprintable():
        # a tab or line break would forge rows in 'apikey list' (tab-separated, one key a line)
        raise click.BadParameter(
            "must be 1 to 200 printable characters (no tabs or line breaks)", param_hint="--name"
        )
    settings = load_settings()
    key_id, plaintext = run_async(_create(settings, Role(role), name))
    click.echo(plaintext)
    click.echo(f"key id: {key_id} (role {role})", err=True)
    click.echo("warning: store this key now; it is not stored and will not be shown again", err=True)


async def _list(settings: Settings) -> list[dict[str, Any]]:
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            records = await list_api_keys(session=session)
    finally:
        await engine.dispose()
    return [
        {
            "id": str(r.id),
            "role": r.role,
            "created_at": r.created_at.isoformat(timespec="seconds"),
            "status": "revoked" if r.revoked_at else "active",
            "revoked_at": r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else None,
            "name": r.name,
        }
        for r in records
    ]


@apikey.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of keys.")
def list_(as_json: bool) -> None:
    """List keys: id, role, created, status, revoked, name (a header, then one tab-separated line each;
    never the keys themselves)."""
    rows = run_async(_list(load_settings()))
    print_listing(rows, columns=("id", "role", "created_at", "status", "revoked_at", "name"), as_json=as_json)


async def _revoke(settings: Settings, key_id: uuid.UUID) -> None:
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            await withdraw_api_key(recorder, session=session, key_id=key_id)
    finally:
        await engine.dispose()


@apikey.command()
@click.argument("key_id", type=click.UUID)
def revoke(key_id: uuid.UUID) -> None:
    """Revoke the key with id KEY_ID (from 'apikey list'); it is refused from the next request on."""
    run_async(_revoke(load_settings(), key_id))
    click.echo(f"revoked {key_id}", err=True)
