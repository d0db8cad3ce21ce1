"""``odeus-compliance console ...``: the web console's one-time sign-in links."""

from __future__ import annotations

import click

from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, run_async
from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.console.identity import clean_person_name
from odeus_compliance.settings import CONSOLE_ROLES, Settings

__all__ = ["console"]

_MAX_MINUTES = 7 * 24 * 60


@click.group()
def console() -> None:
    """The web console at /console/ (sign-in by your identity provider, or by one-time links)."""


async def _link(settings: Settings, name: str, role: str, minutes: int, base_url: str) -> str:
    await ensure_schema_at_head(settings)
    (url,) = await issue_sign_in_links(settings, people=[(name, role)], minutes=minutes, base_url=base_url)
    return url


@console.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice(sorted(CONSOLE_ROLES)),
    help="officer: reports; auditor: the audit log and verification; admin: schedules, keys, policies.",
)
@click.option("--name", required=True, help="The person's name (shown in the console and in audit records).")
@click.option(
    "--minutes",
    default=15,
    show_default=True,
    type=click.IntRange(1, _MAX_MINUTES),
    help="How long the link works (it works once).",
)
@click.option(
    "--base-url",
    default=None,
    help="The service's address as the person reaches it [default: ODEUS_COMPLIANCE_PUBLIC_URL, "
    "else http://127.0.0.1:8000].",
)
def link(role: str, name: str, minutes: int, base_url: str | None) -> None:
    """Print a one-time sign-in link for a person: it signs them in once, within --minutes.

    Only a keyed hash of the link's token is stored, and making it is recorded in the audit log
    (console.link_created, without the name). Hand the link to the person over a channel you trust.
    """
    cleaned = clean_person_name(name)
    if cleaned is None or cleaned != " ".join(name.split()):
        raise click.BadParameter(
            "must be 1 to 128 printable characters (no control or invisible characters)", param_hint="--name"
        )
    if base_url is not None and not base_url.startswith(("https://", "http://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--base-url")
    settings = load_settings()
    address = base_url or settings.public_url or "http://127.0.0.1:8000"
    click.echo(run_async(_link(settings, cleaned, role, minutes, address)))
    click.echo(
        f"warning: this link signs in as {role} once, within {minutes} minutes; it is shown only now",
        err=True,
    )
