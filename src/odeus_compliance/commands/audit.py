"""``odeus-compliance audit ...``: verify the stored log or a bundle offline; export bundles."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.audit.verdict import VerificationReport
from odeus_compliance.commands._common import checked_purpose, ensure_schema_at_head, load_settings, run_async
from odeus_compliance.commands._output import print_verdict, ticking
from odeus_compliance.core.files import write_atomically
from odeus_compliance.settings import Settings

__all__ = ["audit"]

_MAX_BUNDLE: int = 1 << 30


@click.group()
def audit() -> None:
    """The audit log: verify it (stored, or an exported bundle offline) and export verification bundles."""


def _read_text(path: Path, what: str, limit: int) -> str:
    try:
        if path.stat().st_size > limit:
            raise click.ClickException(f"{what} is too large")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {what} ({type(exc).__name__})") from None


def _text(report: VerificationReport) -> str:
    return ("valid\n" if report.valid else "") + report.summary()


def _json(report: VerificationReport) -> dict[str, Any]:
    """The verdict as one JSON object (the shape of ``GET /api/v1/audit/verify``, with the seq range)."""
    checkpoint = report.checkpoint
    return {
        "valid": report.valid,
        "entries": report.entries,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "checkpoint_size": checkpoint.size if checkpoint is not None else None,
        "problems": [
            {"kind": p.kind.value, "message": p.message, "seqs": list(p.seqs)} for p in report.problems
        ],
        "pruned": len(report.pruned),
        "notices": list(report.notices),
    }


async def _verify_stored(settings: Settings, previous: str | None) -> VerificationReport:
    from odeus_compliance.audit import actions  # noqa: PLC0415 - keep --help fast
    from odeus_compliance.audit.recorder import Recorder  # noqa: PLC0415
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    async with AuditAppender.open(settings) as appender:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                return await actions.verify_log(
                    Recorder(appender, SYSTEM_CLI), session=session, previous_checkpoint=previous
                )
        finally:
            await engine.dispose()


@audit.command()
@click.option(
    "--bundle",
    "bundle_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify this exported bundle offline: no configuration, no secret, only the public key.",
)
@click.option("--vkey", help="The verifier key you trust (from the operator); a bundle naming another fails.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint you kept earlier: detects a truncated tail or a forked history.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def verify(bundle_file: Path | None, vkey: str | None, checkpoint_file: Path | None, as_json: bool) -> None:
    """Verify the audit log: print 'valid', or each problem with its sequence numbers; exit 0 or 1.

    Without --bundle, the whole stored log (needs the configuration and the master key: every record is
    decrypted). With --bundle FILE, an exported bundle, offline. Problems are named: modified, missing,
    reordered, duplicate, truncated, forked, malformed, untrusted-key, bad-signature, wrong-log, unproven;
    entries whose payload retention shredded are listed as pruned by policy.
    """
    previous = _read_text(checkpoint_file, "the checkpoint file", 1 << 16) if checkpoint_file else None
    if bundle_file is not None:
        data = _read_text(bundle_file, "the bundle", _MAX_BUNDLE)
        with ticking("verifying the bundle"):
            report = verify_bundle(data, trusted_vkey=vkey, previous_checkpoint=previous)
    else:
        settings = load_settings()
        with ticking("verifying the audit log"):
            report = run_async(_verify_stored(settings, previous))
        if vkey is not None:
            click.echo(
                "note: --vkey applies to bundles; the stored log is checked with the key ring's key", err=True
            )
    print_verdict(_json(report), _text(report), as_json=as_json)
    if not report.valid:
        raise SystemExit(1)


def _date(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an RFC 3339 date-time or a date (YYYY-MM-DD)", param_hint=name) from None
    if parsed.tzinfo is None:
        if len(value) == 10 and name == "--to":
            parsed = parsed + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


async def _export(
    settings: Settings, start: dt.datetime, end: dt.datetime, since: str | None, purpose: str
) -> tuple[bytes, int]:
    from odeus_compliance.audit import actions  # noqa: PLC0415
    from odeus_compliance.audit.recorder import Recorder  # noqa: PLC0415
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    async with AuditAppender.open(settings) as appender:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                return await actions.export_log(
                    Recorder(appender, SYSTEM_CLI),
                    session=session,
                    start=start,
                    end=end,
                    purpose=purpose,
                    since_checkpoint=since,
                )
        finally:
            await engine.dispose()


@audit.command()
@click.option("--from", "start", required=True, help="Start: RFC 3339 date-time, or a date (UTC).")
@click.option("--to", "end", required=True, help="End (inclusive): RFC 3339 date-time, or a date (UTC).")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle file to write."
)
@click.option(
    "--since-checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint the auditor holds: adds a consistency proof from it.",
)
@click.option("--purpose", default="audit log export", show_default=True, help="Why (recorded in the log).")
def export(start: str, end: str, out: Path, since_checkpoint: Path | None, purpose: str) -> None:
    """Export the entries of a time range with inclusion proofs against a fresh signed checkpoint, as a
    verification bundle (docs/audit-bundle.md). The export itself is recorded (audit.exported)."""
    purpose = checked_purpose(purpose, doing="export the audit log")
    since = _read_text(since_checkpoint, "the checkpoint file", 1 << 16) if since_checkpoint else None
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:  # the service's rule, said before anything is read or recorded
        raise click.BadParameter("must not be before --from", param_hint="--to")
    settings = load_settings()
    with ticking("exporting the audit log"):
        data, count = run_async(_export(settings, first, last, since, purpose))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out, data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out} ({type(exc).__name__})") from None
    vkey = json.loads(data)["vkey"]
    click.echo(
        f"wrote {out}: {count} entries; verify with: "
        f"odeus-compliance audit verify --bundle {out} --vkey '{vkey}'",
        err=True,
    )
