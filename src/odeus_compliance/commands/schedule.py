"""``odeus-compliance schedule ...``: define report schedules, list them and their runs, run what is due."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, parse_instant, run_async
from odeus_compliance.commands._output import print_listing, ticking
from odeus_compliance.core.clock import utcnow
from odeus_compliance.settings import Settings

__all__ = ["schedule"]

_CATCH_UP = {"run-once": "run-missed-once", "skip": "skip-and-record"}


@click.group()
def schedule() -> None:
    """Report schedules: one report per calendar month (or quarter, or week) in a timezone, exactly once
    across restarts and replicas."""


async def _set(
    settings: Settings, fields: dict[str, Any], active_from: dt.datetime | None
) -> tuple[str, bool, bool]:
    from odeus_compliance.audit.appender import SYSTEM_CLI  # noqa: PLC0415 - on use only
    from odeus_compliance.audit.standalone import standalone_recorder  # noqa: PLC0415
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.scheduling.changes import change_schedule  # noqa: PLC0415
    from odeus_compliance.scheduling.model import ScheduleError, ScheduleSpec  # noqa: PLC0415
    from odeus_compliance.scheduling.recipients import RecipientHasher  # noqa: PLC0415

    try:
        spec = ScheduleSpec.build(**fields)
    except ScheduleError as exc:  # a field breaks a rule: bad usage, nothing stored
        raise click.UsageError(str(exc)) from None
    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            try:
                saved = await change_schedule(
                    recorder,
                    session=session,
                    spec=spec,
                    policy_dir=settings.policy_dir,
                    now=utcnow(),
                    allowed_recipients=settings.mail_recipients,
                    hasher=RecipientHasher(settings.require_master_key()),
                    active_from=active_from,
                )
            except ScheduleError as exc:  # an unknown policy, a recipient not allowed: bad usage
                raise click.UsageError(str(exc)) from None
            return str(saved.schedule.id), saved.created, saved.changed
    finally:
        await engine.dispose()


@schedule.command("set")
@click.argument("name")
@click.option(
    "--every",
    type=click.Choice(["month", "quarter", "week"]),
    default="month",
    show_default=True,
    help="One report per calendar month, quarter or ISO week.",
)
@click.option(
    "--day",
    type=int,
    required=True,
    help="Due day after the period: 1-28 of the next month (month, quarter), "
    "or ISO weekday 1-7 (week, 1 = Monday).",
)
@click.option("--time", "time_", required=True, help="Due time HH:MM (24-hour) in --timezone.")
@click.option(
    "--timezone",
    required=True,
    help="IANA zone of the calendar periods and the due time, e.g. Europe/Berlin.",
)
@click.option("--policy", required=True, help="Policy name (a file NAME.toml in the policy folder).")
@click.option(
    "--catch-up",
    type=click.Choice(sorted([*_CATCH_UP, *_CATCH_UP.values()])),
    default="run-once",
    show_default=True,
    help="Periods missed while no replica ran: run each once, "
    "or skip them (recorded as skipped) and run only the latest.",
)
@click.option(
    "--active-from",
    default=None,
    help="ISO time with offset: periods due before it are not run (default: now, for a new schedule, a new "
    "--every or --timezone, or enabling it again; else unchanged).",
)
@click.option("--disabled", is_flag=True, help="Keep the schedule but do not run it.")
@click.option(
    "--webhook-url",
    default=None,
    help="https:// URL notified (signed with HMAC-SHA-256) when a report is ready.",
)
@click.option(
    "--webhook-secret-env",
    default=None,
    help="Name of the environment variable holding the webhook's HMAC key (ODEUS_COMPLIANCE_WEBHOOK_<NAME>).",
)
@click.option(
    "--email",
    "emails",
    multiple=True,
    help="E-mail recipient told when a report is ready (repeatable; needs ODEUS_COMPLIANCE_SMTP_URL).",
)
@click.option(
    "--email-attach-pdf", is_flag=True, help="Attach the signed PDF to the e-mail instead of sending a link."
)
def set_(  # noqa: PLR0917 - click passes options as arguments
    name: str,
    every: str,
    day: int,
    time_: str,
    timezone: str,
    policy: str,
    catch_up: str,
    active_from: str | None,
    disabled: bool,
    webhook_url: str | None,
    webhook_secret_env: str | None,
    emails: tuple[str, ...],
    email_attach_pdf: bool,
) -> None:
    """Create the schedule NAME, or change it (its run history is kept). Refuses unknown timezones and
    policies, days out of range and bad times with a one-line reason (exit 2, nothing stored)."""
    delivery: dict[str, Any] = {"email_to": list(emails), "email_attach_pdf": email_attach_pdf}
    if webhook_url is not None or webhook_secret_env is not None:
        delivery |= {"webhook_url": webhook_url, "webhook_secret_env": webhook_secret_env}
    fields = {
        "name": name,
        "every": every,
        "day": day,
        "time": time_,
        "timezone": timezone,
        "policy": policy,
        "catch_up": _CATCH_UP.get(catch_up, catch_up),
        "delivery": delivery,
        "enabled": not disabled,
    }
    schedule_id, created, changed = run_async(
        _set(load_settings(), fields, parse_instant(active_from, "--active-from"))
    )
    click.echo(schedule_id)
    click.echo(
        f"schedule {name} " + ("created" if created else "changed" if changed else "unchanged"), err=True
    )


async def _list(settings: Settings) -> list[dict[str, Any]]:
    import msgspec  # noqa: PLC0415

    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.scheduling.schemas import schedule_out  # noqa: PLC0415
    from odeus_compliance.scheduling.service import list_schedules  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            now = utcnow()
            rows = await list_schedules(session=session)
            return [msgspec.to_builtins(schedule_out(row, now=now)) for row in rows]
    finally:
        await engine.dispose()


_LIST_COLUMNS = (
    "id",
    "name",
    "every",
    "day",
    "time",
    "timezone",
    "policy",
    "catch_up",
    "enabled",
    "next_period",
    "next_due_at",
)


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of schedules.")
def list_(as_json: bool) -> None:
    """List schedules: id, name, every, day, time, timezone, policy, catch-up, enabled, next period and
    when it falls due (a header, then one tab-separated line each)."""
    print_listing(run_async(_list(load_settings())), columns=_LIST_COLUMNS, as_json=as_json)


async def _runs(settings: Settings, name: str) -> list[dict[str, Any]]:
    import msgspec  # noqa: PLC0415

    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.scheduling.schemas import run_out  # noqa: PLC0415
    from odeus_compliance.scheduling.service import find_schedule, list_runs  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            row = await find_schedule(session=session, name=name)
            if row is None:
                raise click.ClickException("there is no schedule of that name (see 'schedule list')")
            return [
                msgspec.to_builtins(run_out(run))
                for run in await list_runs(session=session, schedule_id=row.id)
            ]
    finally:
        await engine.dispose()


@schedule.command("runs")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of runs.")
def runs(name: str, as_json: bool) -> None:
    """The run history of schedule NAME, newest period first: period, version, status, attempts, report id,
    next retry, error (a header, then one tab-separated line each)."""
    print_listing(
        run_async(_runs(load_settings(), name)),
        columns=("period", "version", "status", "attempts", "report_id", "next_retry_at", "error"),
        as_json=as_json,
    )


def _run_settings(lease: float, attempts: int, backoff: float, retry_after: float) -> Any:
    from odeus_compliance.scheduling.runner import RunSettings  # noqa: PLC0415

    return RunSettings(
        lease_seconds=lease,
        attempts_per_tick=attempts,
        backoff_seconds=backoff,
        retry_after_seconds=retry_after,
    )


async def _run_due(settings: Settings, now: dt.datetime, run_settings: Any) -> list[Any]:
    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415
    from odeus_compliance.scheduling.queries import has_due_work  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    engine = create_engine_for(settings)
    try:
        if not await has_due_work(session_factory(engine), now):
            return []  # most ticks: no need to start the report runtime
    finally:
        await engine.dispose()
    from odeus_compliance.scheduling.runtime import standalone_scheduler  # noqa: PLC0415

    async with standalone_scheduler(settings, run_settings=run_settings) as scheduler:
        return list(await scheduler.run_due(now))


def _print_outcomes(outcomes: list[Any]) -> bool:
    failed = False
    for outcome in outcomes:
        click.echo(
            "\t".join(
                [
                    outcome.schedule,
                    outcome.period,
                    str(outcome.version),
                    outcome.status,
                    outcome.report_id or "-",
                    outcome.error or "-",
                ]
            )
        )
        failed = failed or outcome.status == "failed"
    return failed


_tuning = [
    click.option(
        "--lease-seconds",
        type=click.FloatRange(min=1),
        default=120.0,
        show_default=True,
        help="A claim lapses this long after its last renewal (then another process may take the run over).",
    ),
    click.option(
        "--attempts",
        type=click.IntRange(min=1, max=20),
        default=3,
        show_default=True,
        help="Report requests per run in this tick before it is recorded as failed.",
    ),
    click.option(
        "--backoff-seconds",
        type=click.FloatRange(min=0),
        default=10.0,
        show_default=True,
        help="Wait before the second attempt; doubled before each further one.",
    ),
    click.option(
        "--retry-after-seconds",
        type=click.FloatRange(min=0),
        default=3600.0,
        show_default=True,
        help=(
            "The longest wait before a failed run or delivery is tried again: the next tick retries it, "
            "then the wait doubles from one minute up to this."
        ),
    ),
]


def _with_tuning(command: Any) -> Any:
    for option in reversed(_tuning):
        command = option(command)
    return command


@schedule.command("run-due")
@click.option(
    "--now",
    "now_text",
    default=None,
    help="Act as if it were this ISO time with offset (default: the real time).",
)
@_with_tuning
def run_due(
    now_text: str | None,
    lease_seconds: float,
    attempts: int,
    backoff_seconds: float,
    retry_after_seconds: float,
) -> None:
    """Run every period that is due: claim it (exactly once across processes), make its report, wait for it.
    One line per run: schedule, period, version, status, report id, error. Exit 1 if a run failed (it is
    retried by a later tick)."""
    now = parse_instant(now_text, "--now") or utcnow()
    settings = load_settings(upstream=True)
    with ticking("running what is due"):
        outcomes = run_async(
            _run_due(
                settings, now, _run_settings(lease_seconds, attempts, backoff_seconds, retry_after_seconds)
            )
        )
    if _print_outcomes(outcomes):
        raise SystemExit(1)


async def _rerun(
    settings: Settings, name: str, moment: dt.datetime, now: dt.datetime, run_settings: Any
) -> Any:
    from odeus_compliance.scheduling.model import ScheduleError  # noqa: PLC0415
    from odeus_compliance.scheduling.runtime import standalone_scheduler  # noqa: PLC0415
    from odeus_compliance.scheduling.service import find_schedule  # noqa: PLC0415

    await ensure_schema_at_head(settings)
    async with standalone_scheduler(settings, run_settings=run_settings) as scheduler:
        async with scheduler.sessions() as session:
            row = await find_schedule(session=session, name=name)
        if row is None:
            raise click.ClickException("there is no schedule of that name (see 'schedule list')")
        try:
            return await scheduler.rerun(schedule=row, moment=moment, now=now, requested_by="cli")
        except ScheduleError as exc:
            raise click.ClickException(str(exc)) from None


@schedule.command("rerun")
@click.argument("name")
@click.option(
    "--period",
    "period_text",
    required=True,
    help="Any ISO time with offset inside the closed period to run again.",
)
@click.option(
    "--now",
    "now_text",
    default=None,
    help="Act as if it were this ISO time with offset (default: the real time).",
)
@_with_tuning
def rerun(  # noqa: PLR0917 - click passes options as arguments
    name: str,
    period_text: str,
    now_text: str | None,
    lease_seconds: float,
    attempts: int,
    backoff_seconds: float,
    retry_after_seconds: float,
) -> None:
    """Run a closed period of schedule NAME again: a new version that supersedes the previous one (both are
    kept). Exit 1 if the run failed."""
    moment = parse_instant(period_text, "--period")
    assert moment is not None
    now = parse_instant(now_text, "--now") or utcnow()
    settings = load_settings(upstream=True)
    with ticking(f"running {name} again"):
        outcome = run_async(
            _rerun(
                settings,
                name,
                moment,
                now,
                _run_settings(lease_seconds, attempts, backoff_seconds, retry_after_seconds),
            )
        )
    if _print_outcomes([outcome]):
        raise SystemExit(1)
