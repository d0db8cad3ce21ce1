"""Names of the values the app's lifespan puts into ``app.state`` (one place, so no typo goes unnoticed)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUDIT_APPENDER_KEY",
    "CONSOLE_KEY",
    "DENIAL_LIMITER_KEY",
    "DENIAL_RECORDER_KEY",
    "ENGINE_KEY",
    "METRICS_KEY",
    "REPORT_RUNTIME",
    "REPORT_VERIFIER",
    "SESSIONS_KEY",
    "SETTINGS_KEY",
    "SIGNING_PROBE_KEY",
]

SETTINGS_KEY: Final = "settings"
"""The :class:`~odeus_compliance.settings.Settings` the app was built with."""
ENGINE_KEY: Final = "db_engine"
"""The app's :class:`~sqlalchemy.ext.asyncio.AsyncEngine` (lifespan-owned)."""
SESSIONS_KEY: Final = "db_sessions"
"""The app's ``async_sessionmaker`` (lifespan-owned)."""
AUDIT_APPENDER_KEY: Final = "audit_appender"
"""The app's :class:`~odeus_compliance.audit.appender.AuditAppender` (lifespan-owned)."""
DENIAL_RECORDER_KEY: Final = "denial_recorder"
"""The coroutine function that records a 401/403 (see :mod:`~odeus_compliance.security`)."""
DENIAL_LIMITER_KEY: Final = "denial_limiter"
"""The app's :class:`~odeus_compliance.audit.denials.DenialLimiter` (lifespan-owned): counts refusals."""
REPORT_RUNTIME: Final = "report_runtime"
"""The app's :class:`~odeus_compliance.reports.runtime.ReportRuntime` (lifespan-owned)."""
REPORT_VERIFIER: Final = "report_verifier"
"""The app's :class:`~odeus_compliance.reports.verifier.PdfVerifier` (lifespan-owned)."""
SIGNING_PROBE_KEY: Final = "signing_probe"
"""The app's :class:`~odeus_compliance.health.signing.SigningProbe`: whether a report can be signed."""
METRICS_KEY: Final = "metrics"
"""The app's :class:`~odeus_compliance.core.service_metrics.ServiceMetrics` (built by ``create_app``)."""
CONSOLE_KEY: Final = "console"
"""The app's :class:`~odeus_compliance.console.runtime.ConsoleRuntime`: templates, keys, sessions, OIDC."""
