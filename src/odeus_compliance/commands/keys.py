"""``odeus-compliance keys ...``: the key ring (data keys by epoch, the audit log's checkpoint signer) and the
demo report-signing certificate."""

from __future__ import annotations

import click

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.key_actions import rotate_epoch
from odeus_compliance.audit.standalone import standalone_recorder
from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, run_async
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.keys.ring import (
    ROTATABLE_KINDS,
    KeyEncryptionKey,
    KeyKind,
    KeyRingStatus,
    ensure_key_ring,
)
from odeus_compliance.settings import Settings

__all__ = ["demo_certificate_line", "init_key_ring", "keys"]


@click.group()
def keys() -> None:
    """Manage the key ring: data keys by kind and epoch, wrapped by the master key, and the audit log's
    checkpoint signer."""


async def init_key_ring(settings: Settings) -> KeyRingStatus:
    """Create what the key ring lacks, recording each created key in the audit log (``keys init``)."""
    await ensure_schema_at_head(settings)
    kek = KeyEncryptionKey(settings.require_master_key())
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            status = await ensure_key_ring(session=session, kek=kek)
    finally:
        await engine.dispose()
    if status.created:
        async with AuditAppender.open(settings) as appender:
            await appender.record_created_keys(status.created, SYSTEM_CLI)
    return status


def demo_certificate_line(settings: Settings) -> str:
    """Make the demo report-signing certificate where no signing key is configured; one line for stderr."""
    if settings.signing_key_configured:
        return "report signing: the configured key and certificate are used; no demo certificate made"
    try:
        cert = ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    except OSError as exc:
        raise click.ClickException(
            f"the demo signing certificate cannot be written in {settings.data_dir} ({type(exc).__name__})"
        ) from None
    except OdeusComplianceError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "created" if cert.created else "kept the existing"
    line = (
        f"report signing: {verb} self-signed demo certificate {cert.signer_cert} (not for production; "
        f"its CA for verifiers: {cert.ca_cert}; SHA-256 {cert.fingerprint})"
    )
    if not settings.demo_certificate_allowed:
        line += "; the service signs with it only with ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true"
    return line


@keys.command()
def init() -> None:
    """Create whatever the key ring lacks (idempotent): the installation id that names the audit log, and
    epoch 1 of each kind of key (audit-data, pseudonymisation, checkpoint-signing, report-data).

    Where no report-signing key is configured (ODEUS_COMPLIANCE_SIGNING_KEY_FILE/_CERT_FILE or a PKCS#12
    file), also makes a self-signed demo CA and an RSA-3072 signing certificate labelled "not for
    production" in the data dir (the key encrypted under the master key); existing ones are kept. The service
    signs with it only in the demo or with ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true. For a new
    installation, 'odeus-compliance init' does this and the migrations in one step.

    Prints the audit log's origin and its verifier key (vkey) on stdout: publish the vkey to your auditors.
    What was created, and where the demo certificate is, goes to stderr.
    """
    settings = load_settings()
    status = run_async(init_key_ring(settings))
    certificate_line = demo_certificate_line(settings)
    click.echo(f"origin: {status.origin}")
    click.echo(f"vkey: {status.vkey}")
    made = [k for k in status.created if k != "installation"]
    click.echo(
        f"created {len(made)} key(s)" if made else "the key ring was complete; nothing created", err=True
    )
    click.echo(certificate_line, err=True)


async def _rotate(settings: Settings, kind: KeyKind) -> str:
    await ensure_schema_at_head(settings)
    kek = KeyEncryptionKey(settings.require_master_key())
    engine = create_engine_for(settings)
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            return await rotate_epoch(recorder, session=session, kek=kek, kind=kind)
    finally:
        await engine.dispose()


@keys.command()
@click.argument("kind", type=click.Choice(sorted(k.value for k in ROTATABLE_KINDS)))
def rotate(kind: str) -> None:
    """Start a new epoch of KIND: new data is encrypted under the new key; old keys stay and keep opening
    what they encrypted (history is never rewritten). The checkpoint-signing key cannot be rotated yet."""
    key_id = run_async(_rotate(load_settings(), KeyKind(kind)))
    click.echo(key_id)
