"""``odeus-compliance init``: the one step that makes a fresh data dir (or database) an installation.

Migrations, the key ring, and a trial signature, in that order; every part is idempotent, so running it again
(after an upgrade of odeus-compliance, or by every replica of a deployment) changes nothing that exists. It
is explicit rather than part of ``serve``'s start: a schema change deserves an operator's decision, and
``serve`` refuses an uninitialised database with a one-line hint instead of racing other replicas.
"""

from __future__ import annotations

import click

from odeus_compliance.commands._common import load_settings, run_async
from odeus_compliance.commands.keys import demo_certificate_line, init_key_ring
from odeus_compliance.db.migrate import upgrade as upgrade_schema

__all__ = ["init"]


@click.command()
def init() -> None:
    """Initialise the installation, or check it (idempotent; safe to run again, and by several replicas).

    \b
    1. applies every pending database migration (as 'db upgrade');
    2. creates whatever the key ring lacks (as 'keys init'), and prints the audit log's origin and its
       verifier key (vkey) on stdout: publish the vkey to your auditors;
    3. checks report signing with a trial signature verified against the trust anchors: the configured
       key and certificate (ODEUS_COMPLIANCE_SIGNING_KEY_FILE and _CERT_FILE, or _PKCS12_FILE) and
       ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE; with none configured, the self-signed demo certificate, made
       here only where ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true (trials; not for production).

    Exit 1 when reports cannot be signed (after steps 1 and 2 are done), with the reason on stderr.
    """
    from odeus_compliance.reports.signing_check import check_signing  # noqa: PLC0415 - keep --help fast

    settings = load_settings()
    run_async(upgrade_schema(settings))
    click.echo("database schema is up to date", err=True)
    status = run_async(init_key_ring(settings))
    click.echo(f"origin: {status.origin}")
    click.echo(f"vkey: {status.vkey}")
    made = [k for k in status.created if k != "installation"]
    click.echo(
        f"created {len(made)} key(s)" if made else "the key ring was complete; nothing created", err=True
    )
    if not settings.signing_key_configured and settings.demo_certificate_allowed:
        click.echo(demo_certificate_line(settings), err=True)
    signing = check_signing(settings)
    if not signing.ok:
        raise click.ClickException(f"reports cannot be signed: {signing.detail}")
    click.echo(f"report signing: ok; {signing.detail}", err=True)
