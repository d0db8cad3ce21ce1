"""``odeus-compliance retention ...``: apply the retention rules now, read the deletion receipts, and manage
legal holds. See docs/retention.md."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.records import Action
from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, parse_instant, run_async
from odeus_compliance.commands._output import print_listing, ticking
from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.ring import KeyEncryptionKey, ensure_key_ring
from odeus_compliance.retention.holds import Hold, HoldError, list_holds, place_hold, release_hold
from odeus_compliance.retention.purge import Purge, RunResult
from odeus_compliance.retention.receipts import ReceiptError, list_receipts, verify_receipt
from odeus_compliance.retention_rules import HOLDABLE, DataClass
from odeus_compliance.settings import Settings

__all__ = ["retention"]


@click.group()
def retention() -> None:
    """Retention: delete what is past its retention period (unless a legal hold keeps it), with signed
    deletion receipts logged in the audit log."""


async def _run(settings: Settings, now: dt.datetime, dry_run: bool) -> RunResult:
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        if dry_run:  # writes nothing: no key ring completion, no audit record
            return await Purge(settings=settings, engine=engine, appender=None).run(now=now, dry_run=True)
        async with session_factory(engine)() as session:
            kek = KeyEncryptionKey(settings.require_master_key())
            created = (await ensure_key_ring(session=session, kek=kek)).created
        async with AuditAppender.open(settings) as appender:
            await appender.record_created_keys(created, SYSTEM_CLI)
            return await Purge(settings=settings, engine=engine, appender=appender).run(now=now)
    finally:
        await engine.dispose()


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete and write nothing.")
@click.option(
    "--now",
    "now_text",
    help="Apply the rules as of this ISO 8601 time with offset instead of now (for tests and drills).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(dry_run: bool, now_text: str | None, as_json: bool) -> None:
    """Apply the retention rules now: finish receipts a crash left pending (one a legal hold placed since
    covers waits), rotate due key epochs, delete what is past retention and not held, one signed receipt
    per data class. Exit 1 if plaintext export-like files are found in the data dir (they are reported,
    never deleted)."""
    now = parse_instant(now_text, "--now") or utcnow()
    settings = load_settings()
    with ticking("applying the retention rules"):
        result = run_async(_run(settings, now, dry_run))
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.render_text())
    if result.findings:
        raise SystemExit(1)


async def _receipts(settings: Settings, limit: int) -> tuple[list[dict[str, Any]], str]:
    from odeus_compliance.keys.ring import load_identity  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            identity = await load_identity(
                executor=session, kek=KeyEncryptionKey(settings.require_master_key())
            )
            receipts = await list_receipts(session=session, limit=limit)
    finally:
        await engine.dispose()
    out = []
    for receipt in receipts:
        row = receipt.to_json()
        try:
            verify_receipt(receipt.note, vkey=identity.vkey, items=receipt.items)
            row["signature_valid"] = True
        except ReceiptError:
            row["signature_valid"] = False
        row["vkey"] = identity.vkey
        out.append(row)
    return out, identity.vkey


_RECEIPT_COLUMNS = (
    "id",
    "status",
    "data_class",
    "count",
    "method",
    "as_of",
    "completed_at",
    "items_sha256",
    "signature_valid",
)


@retention.command("receipts")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON array of receipts (with identifiers, note, and the vkey each was checked with).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def receipts(as_json: bool, limit: int) -> None:
    """The deletion receipts, newest first, each checked against the audit log's verifier key (vkey, printed
    on stderr) and its identifiers' hash. Exit 1 if one does not verify."""
    rows, vkey = run_async(_receipts(load_settings(), limit))
    if not as_json:
        click.echo(f"vkey: {vkey}", err=True)
    print_listing(rows, columns=_RECEIPT_COLUMNS, as_json=as_json)
    if not all(row["signature_valid"] for row in rows):
        raise SystemExit(1)


@retention.group()
def hold() -> None:
    """Legal holds: pause the deletions of a data class (optionally one report or a period) until expiry."""


def _hold_json(h: Hold) -> dict[str, Any]:
    def iso(moment: dt.datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "id": h.id,
        "data_class": h.data_class.value,
        "report_id": h.report_id,
        "period_from": iso(h.period_from),
        "period_to": iso(h.period_to),
        "reason": h.reason,
        "created_by": h.created_by,
        "created_at": iso(h.created_at),
        "expires_at": iso(h.expires_at),
        "released_at": iso(h.released_at),
    }


async def _change_hold(settings: Settings, action: str, **fields: Any) -> Hold | bool:
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with AuditAppender.open(settings) as appender, session_factory(engine)() as session:
            now = utcnow()
            if action == "place":
                placed: Hold | bool = await place_hold(session=session, created_by="cli", now=now, **fields)
                assert isinstance(placed, Hold)
                hold_id, details = (
                    placed.id,
                    {"status": "hold-placed", "retention_rule": placed.data_class.value},
                )
            else:
                placed = await release_hold(session=session, hold_id=fields["hold_id"], now=now)
                hold_id, details = fields["hold_id"], {"status": "hold-released"}
            if placed:  # a legal hold changes which retention rules apply: recorded as a policy change
                await appender.append(
                    actor=SYSTEM_CLI,
                    action=Action.POLICY_CHANGED,
                    resource=f"hold:{hold_id}",
                    details=details,
                )
            return placed
    except HoldError as exc:  # a scope that makes no sense: bad usage, nothing stored
        raise click.UsageError(str(exc)) from None
    finally:
        await engine.dispose()


@hold.command("add")
@click.option(
    "--class",
    "data_class",
    type=click.Choice(sorted(c.value for c in HOLDABLE)),
    required=True,
    help="The data class whose deletions the hold pauses.",
)
@click.option("--report-id", help="Only this report (reports, datasets, and audit records about it).")
@click.option("--from", "period_from", help="Only data of/at or after this ISO time with offset.")
@click.option("--to", "period_to", help="Only data before this ISO time with offset.")
@click.option("--reason", required=True, help="Why, e.g. a case reference (stored, never logged).")
@click.option("--expires", help="When the hold ends (ISO time with offset); omitted: until released.")
def hold_add(  # noqa: PLR0917 - click passes options as arguments
    data_class: str,
    report_id: str | None,
    period_from: str | None,
    period_to: str | None,
    reason: str,
    expires: str | None,
) -> None:
    """Place a legal hold; prints its id."""
    placed = run_async(
        _change_hold(
            load_settings(),
            "place",
            data_class=DataClass(data_class),
            reason=reason,
            report_id=report_id,
            period_from=parse_instant(period_from, "--from"),
            period_to=parse_instant(period_to, "--to"),
            expires_at=parse_instant(expires, "--expires"),
        )
    )
    assert isinstance(placed, Hold)
    click.echo(placed.id)


@hold.command("release")
@click.argument("hold_id")
def hold_release(hold_id: str) -> None:
    """Release a hold early (it stays listed)."""
    if not run_async(_change_hold(load_settings(), "release", hold_id=hold_id)):
        raise click.ClickException("there is no unreleased hold with that id")
    click.echo(f"released {hold_id}")


async def _holds(settings: Settings) -> list[Hold]:
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            return await list_holds(session=session)
    finally:
        await engine.dispose()


@hold.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of holds.")
def hold_list(as_json: bool) -> None:
    """Every hold, newest first (with released and expired ones): a header, then one tab-separated line
    each."""
    rows = [_hold_json(h) for h in run_async(_holds(load_settings()))]
    columns = ("id", "data_class", "report_id", "period_from", "period_to", "expires_at", "released_at")
    print_listing(rows, columns=columns, as_json=as_json)
