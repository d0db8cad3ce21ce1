"""``odeus-compliance report ...``: run one report now, cancel a job, verify a report PDF offline, list the
archive."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from odeus_compliance.commands._common import checked_purpose, ensure_schema_at_head, load_settings, run_async
from odeus_compliance.commands._output import Progress, print_listing, print_verdict, ticking
from odeus_compliance.core.files import write_atomically
from odeus_compliance.settings import Settings

if TYPE_CHECKING:
    from odeus_compliance.core.periods import ReportPeriod
    from odeus_compliance.reports.jobs import ReportJobs, ReportRecord
    from odeus_compliance.reports.runtime import ReportRuntime

__all__ = ["report"]

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
DEFAULT_PURPOSE = "compliance report requested on the command line"


@click.group()
def report() -> None:
    """Signed PDF usage reports: run one now, cancel a job, verify a report file, list the archive."""


def _month(value: str) -> tuple[int, int]:
    match = _MONTH.match(value)
    if match is None:
        raise click.BadParameter("expected YYYY-MM, e.g. 2026-10", param_hint="--month")
    return int(match[1]), int(match[2])


def _keep_log_records_off_stderr() -> None:
    """With no logging configured, Python's last-resort handler would print the service's warning records
    (``report.failed``) as bare lines on stderr; the command reports the outcome itself, in one line."""
    logger = logging.getLogger("odeus_compliance")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _check_policy(settings: Settings, name: str) -> None:
    """Bad usage (exit 2) before anything is recorded or queued: the policy must be a valid file of the
    policy folder, as ``POST /api/v1/reports`` requires (a 400 there)."""
    from odeus_compliance.policy.service import find_policy  # noqa: PLC0415

    entry = find_policy(policy_dir=settings.policy_dir, name=name)
    if entry is None:
        raise click.BadParameter(
            f"there is no policy named {json.dumps(name)} in {settings.policy_dir}", param_hint="--policy"
        )
    if entry.policy is None:
        raise click.BadParameter(
            f"the policy {name} is not valid; see 'odeus-compliance policy check {entry.path}'",
            param_hint="--policy",
        )


async def _show_progress(jobs: ReportJobs, report_id: str, progress: Progress) -> None:
    """Keep the progress line at the job's stage and share of work (only drawn on a terminal)."""
    while True:
        record = await jobs.get(report_id)
        if record is not None:
            progress.show(f"{record.stage} {int(record.progress * 100)}%")
        await asyncio.sleep(1.0)


async def _run_with_progress(runtime: ReportRuntime, report_id: str) -> ReportRecord | None:
    with ticking(f"report {report_id}") as progress:
        watcher = None
        if progress.enabled:
            watcher = asyncio.create_task(_show_progress(runtime.jobs, report_id, progress))
        try:
            return await runtime.run_job(report_id)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


async def _run(
    settings: Settings, *, period: ReportPeriod, policy: str, purpose: str, out: Path | None
) -> dict[str, Any]:
    from odeus_compliance.audit.appender import SYSTEM_CLI  # noqa: PLC0415 - heavy imports on use only
    from odeus_compliance.audit.recorder import Recorder  # noqa: PLC0415
    from odeus_compliance.reports import actions, service  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportStatus  # noqa: PLC0415
    from odeus_compliance.reports.runtime import standalone_runtime  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    wanted = service.resolve_request(
        period=period,
        policy=policy,
        purpose=purpose,
        policy_dir=settings.policy_dir,
    )
    async with standalone_runtime(settings, actor=SYSTEM_CLI) as runtime:
        recorder = Recorder(runtime.flow.appender, SYSTEM_CLI)
        record = await actions.request_report(recorder, jobs=runtime.jobs, wanted=wanted, requested_by="cli")
        click.echo(f"report {record.id} queued (version {record.version}); running it now ...", err=True)
        final = await _run_with_progress(runtime, record.id) or record
        outcome: dict[str, Any] = {"record": final, "out": None}
        if final.status is ReportStatus.SUCCEEDED and out is not None:
            pdf = await actions.hand_out_bytes(
                recorder, store=runtime.store, record=final, name=service.PDF_FILE, purpose=wanted.purpose
            )
            try:
                write_atomically(out, pdf)
            except OSError as exc:  # not a database failure, which is all run_async would call it
                msg = (
                    f"report {final.id} succeeded and is archived, but the signed PDF could not be written "
                    f"to {out} ({type(exc).__name__})"
                )
                raise click.ClickException(msg) from None
            outcome["out"] = out
        return outcome


@report.command("run", short_help="Make one report now (as a job) and wait for it.")
@click.option("--month", "month", required=True, help="The calendar month to report on, YYYY-MM.")
@click.option(
    "--timezone", default="Europe/Berlin", show_default=True, help="IANA zone whose calendar month it is."
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy name (a file NAME.toml in the policy folder).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the signed PDF here (it is always kept, encrypted, in the archive).",
)
@click.option(
    "--purpose",
    default=DEFAULT_PURPOSE,
    show_default=True,
    help="Why the report is made; recorded in the audit log with every access.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Allow the current month, which has not ended: the report covers the data up to now and says "
    "'Partial period' on its cover.",
)
def run(month: str, timezone: str, policy: str, out: Path | None, purpose: str, partial: bool) -> None:  # noqa: PLR0917
    """Make one report now, as a job, and wait for it: pull the month's users export from Odeus, apply the
    policy, render, sign and verify the PDF, and keep it in the archive. Prints the report id; exit 1 (with
    the reason) if the job failed; exit 2, with nothing queued, if the month, zone, purpose or policy is
    not usable (the policy must be a valid file of the policy folder), or if the month has not ended and
    --partial is not given. On a terminal, the job's stage is shown on stderr while it runs."""
    from odeus_compliance.core.periods import ReportPeriod, zone  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportStatus  # noqa: PLC0415
    from odeus_compliance.reports.service import period_has_ended  # noqa: PLC0415

    year, number = _month(month)
    try:
        today = datetime.now(zone(timezone)).date()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from None
    if (year, number) > (today.year, today.month):
        # as POST /api/v1/reports (400): a month that has not begun has no usage to report
        raise click.BadParameter("must not be in the future", param_hint="--month")
    period = ReportPeriod.month(year, number, timezone)
    if not partial and not period_has_ended(period, datetime.now(UTC)):
        raise click.BadParameter(
            "the month has not ended yet; add --partial for a report of the data so far", param_hint="--month"
        )
    purpose = checked_purpose(purpose, doing="request a report")
    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"the folder does not exist: {out.parent}", param_hint="--out")
    settings = load_settings(upstream=True)
    _check_policy(settings, policy)
    _keep_log_records_off_stderr()
    outcome = run_async(_run(settings, period=period, policy=policy, purpose=purpose, out=out))
    record = outcome["record"]
    if record.status is not ReportStatus.SUCCEEDED:
        raise click.ClickException(f"report {record.id} {record.status.value}: {record.error}")
    click.echo(f"report {record.id} succeeded (version {record.version}, sha256 {record.pdf_sha256})")
    if record.data_until is not None:
        click.echo(f"partial period: data up to {record.data_until.isoformat(timespec='seconds')}")
    if outcome["out"] is not None:
        click.echo(f"signed PDF written to {outcome['out']}")


class _CannotVerify(click.ClickException):
    """The file was not judged (unreadable, or the trust anchors cannot be loaded): exit 2, never 1, so a
    script does not take a configuration problem for an invalid report."""

    exit_code = 2


@report.command("verify", short_help="Verify a report PDF offline; exit 0 valid, 1 invalid, 2 usage.")
@click.argument("pdf_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(pdf_file: Path, as_json: bool) -> None:
    """Verify a report PDF offline: the signature covers the whole file, the certificate chains to a trust
    anchor, and the embedded manifest matches every attachment. The file is parsed in a process of its own
    with the service's limits (ODEUS_COMPLIANCE_VERIFY_WORKER_MEMORY_MB, ..._TIMEOUT_SECONDS; objects and
    nesting). Exit 0 if valid, 1 if not (a file refused by a limit is not a valid report either); 2 if the
    file could not be judged (missing or unreadable, or the configuration or trust anchors cannot be
    loaded)."""
    from odeus_compliance.errors import AppError, OdeusComplianceError  # noqa: PLC0415
    from odeus_compliance.reports.actions import verify_report  # noqa: PLC0415
    from odeus_compliance.reports.verifier import PdfVerifier, file_chunks  # noqa: PLC0415
    from odeus_compliance.reports.verify import trust_anchors  # noqa: PLC0415

    try:
        settings = load_settings(demo=True)  # needs no secret: only the trust anchors
    except click.ClickException as exc:  # a configuration problem is not a verdict on the file
        raise _CannotVerify(exc.message) from None
    try:
        data = pdf_file.read_bytes()
    except OSError as exc:
        raise _CannotVerify(f"cannot read {pdf_file} ({type(exc).__name__})") from None
    try:
        trust_anchors(settings)
    except OdeusComplianceError as exc:
        raise _CannotVerify(f"cannot verify: {exc}") from None
    # offline: no installation, so no audit log to record in (the one verification flow, without a recorder)
    verifier = PdfVerifier.from_settings(settings)
    try:
        result = asyncio.run(verify_report(None, verifier=verifier, upload=file_chunks(data)))
    except AppError as exc:  # refused by a limit: a verdict, not a usage error
        click.echo(f"report verification: REFUSED: {exc.detail}", err=True)
        raise SystemExit(1) from None
    print_verdict(result.to_json(), result.render_text(), as_json=as_json)
    if not result.valid:
        raise SystemExit(1)


async def _cancel(settings: Settings, report_id: str, purpose: str) -> Any:
    from odeus_compliance.audit.appender import SYSTEM_CLI  # noqa: PLC0415 - heavy imports on use only
    from odeus_compliance.audit.standalone import standalone_recorder  # noqa: PLC0415
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.reports import actions, service  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportJobs  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        jobs = ReportJobs(session_factory(engine))
        record = await service.get_report(jobs=jobs, report_id=report_id)
        async with standalone_recorder(settings, engine, SYSTEM_CLI) as recorder:
            # the process running the job (the service, another replica) stops it at its next lease renewal
            return await actions.cancel_report(recorder, jobs=jobs, record=record, purpose=purpose)
    finally:
        await engine.dispose()


@report.command("cancel", short_help="Cancel a queued or running report job.")
@click.argument("report_id")
@click.option(
    "--purpose", required=True, help="Why the job is cancelled; recorded in the audit log (report.cancelled)."
)
def cancel(report_id: str, purpose: str) -> None:
    """Cancel the queued or running report job REPORT_ID (from 'report list'): recorded as report.cancelled
    with the purpose, the job ends as failed at stage 'cancelled' and nothing of it is kept. The process
    running it (the service, another replica) stops it at its next lease renewal. Exit 1 if there is no such
    job or it has already ended."""
    from odeus_compliance.errors import ValidationFailed  # noqa: PLC0415
    from odeus_compliance.reports.service import check_purpose  # noqa: PLC0415

    try:
        why = check_purpose(purpose, required_for="cancel a report", source="option")
    except ValidationFailed as exc:
        raise click.BadParameter(exc.detail, param_hint="--purpose") from None
    record = run_async(_cancel(load_settings(), report_id, why))
    click.echo(f"report {record.id} cancelled", err=True)


async def _list(settings: Settings, limit: int) -> tuple[list[Any], set[str]]:
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportJobs  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        jobs = ReportJobs(session_factory(engine))
        records = await jobs.list(limit=limit)
        return records, await jobs.current_ids(records)
    finally:
        await engine.dispose()


_LIST_COLUMNS = ("id", "from", "to", "policy", "version", "status", "current", "partial")


@report.command("list", short_help="The archive of reports, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of reports.")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Show at most N reports."
)
def list_(as_json: bool, limit: int) -> None:
    """The archive, newest first: id, period (from/to as RFC 3339 with the offset of the report's zone;
    'to' is exclusive: the next month's first instant), policy, version, status, whether it is the current
    version of its period (the newest succeeded one of the same period, zone and policy), and whether it is
    partial (made before its period ended)."""
    records, current = run_async(_list(load_settings(), limit))
    rows = [
        {
            "id": record.id,
            "from": record.period.local_start.isoformat(),
            "to": record.period.local_end.isoformat(),
            "timezone": record.period.timezone,
            "policy": record.policy_name,
            "policy_hash": record.policy_hash,
            "version": record.version,
            "status": record.status.value,
            "stage": record.stage,
            "requested_at": record.requested_at.isoformat(),
            "error": record.error,
            "current": record.id in current,
            "partial": record.partial,
            "data_until": None if record.data_until is None else record.data_until.isoformat(),
        }
        for record in records
    ]
    print_listing(rows, columns=_LIST_COLUMNS, as_json=as_json)
