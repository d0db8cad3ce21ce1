"""``odeus-compliance serve``: run the HTTP service from configuration."""

from __future__ import annotations

import click

from odeus_compliance.commands._common import ensure_schema_at_head, load_settings, run_async
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.logging_setup import configure_logging

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port to listen on."
)
def serve(host: str, port: int) -> None:
    """Run the HTTP service (Litestar on uvicorn) from the environment's configuration.

    Refuses to start without ODEUS_COMPLIANCE_MASTER_KEY (or ..._MASTER_KEY_FILE) and ODEUS_API_KEY, or when
    the database is not initialised or its schema not current ('odeus-compliance init'). When reports cannot
    be signed it says why in one line on stderr and starts anyway, not ready (/health/ready answers 503)
    until that is fixed; when they are signed with the demo certificate it warns. Logs are JSON lines on
    stderr.
    """
    from odeus_compliance.app import create_app  # noqa: PLC0415 - keep --help fast
    from odeus_compliance.commands._server import serve_app  # noqa: PLC0415
    from odeus_compliance.reports.signing_check import check_signing  # noqa: PLC0415

    settings = load_settings(upstream=True)
    run_async(ensure_schema_at_head(settings))
    signing = check_signing(settings)
    if not signing.ok:
        click.echo(
            f"warning: reports cannot be signed, so this service is not ready: {signing.detail}", err=True
        )
    elif signing.demo:
        click.echo(f"warning: {signing.detail}", err=True)
    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
    except OdeusComplianceError as exc:
        raise click.ClickException(f"cannot build the app: {exc}") from None
    serve_app(app, host=host, port=port)
