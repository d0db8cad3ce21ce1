"""``odeus-compliance demo``: the whole main job on the embedded default, with no configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from odeus_compliance.commands._common import load_settings, run_async
from odeus_compliance.commands.simulator import workspace_options
from odeus_compliance.core.periods import zone
from odeus_compliance.demo import (
    MASTER_KEY_FILE_NAME,
    DemoOutcome,
    demo_settings,
    last_month,
    run_demo_report,
)
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import run_simulator


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the demo's output: report.pdf, and data/ (database, key ring, encrypted archive).",
)
@workspace_options
@click.option(
    "--timezone",
    "timezone",
    default="Europe/Berlin",
    show_default=True,
    help="IANA zone whose calendar month is reported on.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Afterwards keep the HTTP service running on 127.0.0.1:8000 "
    "against the simulator, and print a one-time web-console sign-in link and a demo API key per role.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port for --serve."
)
def demo(out_dir: Path, users: int, seed: int, timezone: str, serve: bool, port: int) -> None:  # noqa: PLR0917
    """Run the main job end to end on the embedded default, with no configuration.

    Starts the built-in Odeus simulator, pulls last month's users export over HTTP, applies
    policies/default.toml (keyed pseudonyms, no names or e-mails, groups under 5 suppressed), writes the
    audit records, renders the PDF/A-3b report in a worker process, signs it (PAdES, with a self-signed demo
    certificate made on the spot), verifies it, and archives it encrypted. Prints the report's headline
    figures, where the signed PDF is (OUT/report.pdf) and the verification result. Exit 1 if the report
    failed or does not verify.
    """
    try:
        zone(timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from None
    year, month = last_month(timezone)
    started = time.perf_counter()
    with run_simulator(SimulatorConfig(users=users, seed=seed)) as simulator:
        click.echo(f"Odeus simulator: {simulator.base_url} ({users} users, seed {seed})")
        settings = demo_settings(
            load_settings(demo=True),
            data_dir=out_dir / "data",
            base_url=simulator.base_url,
            api_key=simulator.api_key,
            storage_url=simulator.storage_url,
        )
        click.echo(
            f"Report on {year}-{month:02d} ({timezone}) with policy 'default': "
            "pull, pseudonymise, audit, render, sign, verify ..."
        )
        outcome = run_async(
            run_demo_report(settings, year=year, month=month, timezone=timezone, out_dir=out_dir)
        )
        _print_outcome(outcome, settings, time.perf_counter() - started)
        if outcome.status != "succeeded" or not outcome.valid:
            raise click.ClickException(
                f"the report {outcome.report_id} {outcome.status}"
                + (f": {outcome.error}" if outcome.error else "; its verification failed")
            )
        if serve:
            _serve(settings, port)


def _print_outcome(outcome: DemoOutcome, settings: Settings, seconds: float) -> None:
    click.echo(f"Report {outcome.report_id}: {outcome.status} in {seconds:.1f} s")
    if outcome.status != "succeeded":
        return
    figures: dict[str, Any] = outcome.figures

    def shown(value: object) -> str:  # a figure the policy or the release audit withholds
        return "not published" if value is None else str(value)

    click.echo(f"  people in the report    {shown(figures.get('people'))}")
    click.echo(f"  active users            {shown(figures.get('active_users'))}")
    click.echo(f"  messages                {shown(figures.get('messages_total'))}")
    for channel, count in (figures.get("messages") or {}).items():
        click.echo(f"    {channel:<21} {count}")
    click.echo(f"  agents used             {shown(figures.get('agents_used'))}")
    click.echo(f"  projects used           {shown(figures.get('projects_used'))}")
    for model, count in (figures.get("model_messages") or [])[:5]:
        click.echo(f"  model {model:<17} {count} messages")
    click.echo(f"\nSigned PDF: {outcome.pdf_path}  (sha256 {outcome.sha256})")
    click.echo("Verification of that file:")
    for line in outcome.verification_text.splitlines():
        click.echo(f"  {line}")
    click.echo(f"\nArchive, audit log and keys: {settings.data_dir}")
    if outcome.ca_certificate is not None:
        click.echo(
            f"Demo CA certificate (self-signed, not for production): {outcome.ca_certificate}\n"
            f"Verify again: ODEUS_COMPLIANCE_DATA_DIR={settings.data_dir} "
            f"odeus-compliance report verify {outcome.pdf_path}"
        )
    click.echo(
        "Other commands on this data (report list, audit verify, ...): "
        f"ODEUS_COMPLIANCE_DATA_DIR={settings.data_dir} "
        f"ODEUS_COMPLIANCE_MASTER_KEY_FILE={settings.data_dir / MASTER_KEY_FILE_NAME} odeus-compliance ..."
    )


_LINK_MINUTES = 60


def _serve(settings: Settings, port: int) -> None:
    """Run the HTTP service against the simulator on the demo's data dir with demo keys, until Ctrl-C."""
    from odeus_compliance.apikeys.bootstrap import issue_role_keys  # noqa: PLC0415 - only --serve needs them
    from odeus_compliance.app import create_app  # noqa: PLC0415
    from odeus_compliance.commands._server import serve_app  # noqa: PLC0415
    from odeus_compliance.console.bootstrap import issue_sign_in_links  # noqa: PLC0415
    from odeus_compliance.logging_setup import configure_logging  # noqa: PLC0415

    keys = run_async(issue_role_keys(settings, label="demo"))
    base_url = f"http://127.0.0.1:{port}"
    people = [(f"Demo {role.title()}", role) for role in ("officer", "auditor", "admin")]
    links = run_async(issue_sign_in_links(settings, people=people, minutes=_LINK_MINUTES, base_url=base_url))
    click.echo(f"\nService: {base_url}  (OpenAPI at /schema/openapi.json; Ctrl-C stops)")
    click.echo(
        f"Web console: {base_url}/console/  one-time sign-in links (each works once, {_LINK_MINUTES} min):"
    )
    for (_name, role), url in zip(people, links, strict=True):
        click.echo(f"  {role:<8} {url}")
    click.echo("Demo API keys (shown once; send as 'Authorization: Bearer KEY'):")
    for role, key in keys.items():
        click.echo(f"  {role.value:<8} {key}")
    configure_logging(settings.log_level)
    serve_app(create_app(settings), host="127.0.0.1", port=port)  # the options 'serve' uses
