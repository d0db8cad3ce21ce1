"""``odeus-compliance demo``: the main job on the embedded default, as far as it is built today."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from odeus_compliance.commands._common import load_settings, run_async
from odeus_compliance.commands.simulator import workspace_options
from odeus_compliance.demo import (
    LOOPBACK_HOSTS,
    PullOutcome,
    demo_master_key,
    last_month,
    pull_users_export,
    summary_document,
    write_summary,
)
from odeus_compliance.upstream.errors import UpstreamError
from odeus_compliance.upstream.request import zone
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the demo's output (summary.json; with --serve also the service's data).",
)
@workspace_options
@click.option(
    "--timezone",
    "timezone",
    default="Europe/Berlin",
    show_default=True,
    help="IANA zone whose calendar month is pulled.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Afterwards keep the HTTP service running on 127.0.0.1:8000 "
    "against the simulator, and print one demo API key per role.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port for --serve."
)
def demo(out_dir: Path, users: int, seed: int, timezone: str, serve: bool, port: int) -> None:  # noqa: PLR0917
    """Run the main job end to end on the embedded default, with no configuration.

    Starts the built-in Odeus simulator, pulls last month's users export over HTTP (streamed, typed and
    checked complete), and prints company-wide totals: rows, active users, messages by channel, model
    shares, and which columns Odeus had anonymised. The totals go to OUT/summary.json.

    Not built yet, and so not done here: policies, the audit log and the signed PDF report.
    """
    try:
        zone(timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from None
    year, month = last_month(timezone)
    with run_simulator(SimulatorConfig(users=users, seed=seed)) as simulator:
        click.echo(f"Odeus simulator: {simulator.base_url} ({users} users, seed {seed})")
        click.echo(f"Pulling the users export for {year}-{month:02d} ({timezone}) ...")
        try:
            outcome = run_async(pull_users_export(simulator, year=year, month=month, timezone=timezone))
        except UpstreamError as exc:
            raise click.ClickException(f"the pull failed: {exc.message}") from None
        _print_summary(outcome)
        path = write_summary(outcome, out_dir)
        click.echo(f"\nTotals written to {path}")
        click.echo("Not built yet: policies, the audit log and the signed PDF report; this demo stops here.")
        if serve:
            _serve(simulator, out_dir, port)


def _print_summary(outcome: PullOutcome) -> None:
    document = summary_document(outcome)
    export, messages = document["export"], document["messages"]
    click.echo(f"  period               {export['from']}  to  {export['to']}")
    click.echo(f"  rows                 {export['rows_read']} (Odeus said {export['record_count']})")
    click.echo(f"  active users         {document['users']['active']} of {document['users']['rows']}")
    for channel, count in messages.items():
        click.echo(f"  {channel:<20} {count}")
    click.echo(f"  agents used          {document['agents_used']}")
    click.echo(f"  projects used        {document['projects_used']}")
    for model in document["models"][:5]:
        click.echo(f"  model {model['model']:<14} {model['share']:.1%} of model messages")
    click.echo(f"  pay-as-you-go        {document['payg_consumption']}")
    anonymised = ", ".join(f"{a['column']} ({a['how']})" for a in export["anonymised_upstream"]) or "none"
    click.echo(f"  anonymised by Odeus: {anonymised}")
    click.echo(f"  columns unknown to this client: {', '.join(export['unknown_columns']) or 'none'}")


def _serve(simulator: RunningSimulator, out_dir: Path, port: int) -> None:
    """Run the HTTP service against the simulator with its own data dir and demo keys, until Ctrl-C."""
    import uvicorn  # noqa: PLC0415 - only --serve needs the server

    from odeus_compliance.apikeys.bootstrap import issue_role_keys  # noqa: PLC0415
    from odeus_compliance.app import create_app  # noqa: PLC0415
    from odeus_compliance.db.migrate import upgrade  # noqa: PLC0415
    from odeus_compliance.logging_setup import configure_logging  # noqa: PLC0415
    from odeus_compliance.settings import Secret, default_sqlite_url  # noqa: PLC0415

    data_dir = (out_dir / "data").resolve()
    settings = dataclasses.replace(
        load_settings(demo=True),
        data_dir=data_dir,
        database_url=default_sqlite_url(data_dir),
        master_key=Secret(demo_master_key(data_dir)),
        odeus_base_url=simulator.base_url,
        odeus_api_key=Secret(simulator.api_key),
        download_hosts=LOOPBACK_HOSTS,
    )
    run_async(upgrade(settings))
    keys = run_async(issue_role_keys(settings, label="demo"))
    click.echo(f"\nService: http://127.0.0.1:{port}  (OpenAPI at /schema; Ctrl-C stops)")
    click.echo("Demo API keys (shown once; send as 'Authorization: Bearer KEY'):")
    for role, key in keys.items():
        click.echo(f"  {role.value:<8} {key}")
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False)
