"""The app factory: ``create_app(settings)`` builds the whole Litestar app; there are no module globals.

Engines and sessions live in the lifespan (created on start-up, disposed on shutdown), so each app (a test,
a replica, the demo) owns its own. Logging is configured by the caller (``serve``), not here, so building an
app in a test leaves the test runner's logging alone.

To add a route: write it in ``<domain>/controllers.py`` with ``opt=requires_role(...)`` (or ``opt=public()``),
add it to :data:`ROUTE_HANDLERS`, and add a row to the table in ``tests/integration/test_role_matrix.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Response, Router
from litestar.config.app import ExperimentalFeatures
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_404_NOT_FOUND
from litestar.types import ControllerRouterHandler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance import __version__
from odeus_compliance.apikeys.controllers import whoami
from odeus_compliance.apikeys.service import SessionAuthenticator
from odeus_compliance.audit.appender import SYSTEM_SERVICE, AuditAppender
from odeus_compliance.audit.controllers import (
    audit_checkpoint,
    audit_consistency,
    audit_entries,
    audit_export,
    audit_proof,
    audit_verify,
)
from odeus_compliance.audit.denials import DenialLimiter
from odeus_compliance.audit.recording import record_denial
from odeus_compliance.console.auth import authenticate_session
from odeus_compliance.console.error_pages import app_exception_handlers
from odeus_compliance.console.router import console_routers
from odeus_compliance.console.runtime import console_lifespan
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.health.controllers import HealthController
from odeus_compliance.health.signing import SigningProbe
from odeus_compliance.keys.ring import KeyEncryptionKey, ensure_key_ring
from odeus_compliance.logging_setup import log_event
from odeus_compliance.monitoring.controllers import get_metrics
from odeus_compliance.policy.controllers import get_policy, list_policies
from odeus_compliance.problem_schema import ProblemDocuments
from odeus_compliance.problems import problem_response
from odeus_compliance.reports.controllers import (
    cancel_report,
    download_report_dataset,
    download_report_pdf,
    get_report,
    list_reports,
    request_report,
    verify_report,
)
from odeus_compliance.reports.runtime import ReportRuntime
from odeus_compliance.reports.verifier import PdfVerifier
from odeus_compliance.request_bounds import MAX_BODY_BYTES, bound_json_body
from odeus_compliance.request_log import install_request_log
from odeus_compliance.retention.ticker import RetentionTicker
from odeus_compliance.scheduling.controllers import (
    list_schedule_runs,
    list_schedules,
    put_schedule,
    put_schedule_delivery,
)
from odeus_compliance.scheduling.ticker import ScheduleTicker
from odeus_compliance.security import (
    AUTH_STATE_KEY,
    OPENAPI_PATH,
    PUBLIC_OPT,
    SESSION_AUTH_STATE_KEY,
    ApiKeyAuthenticationMiddleware,
    ApiKeyPepper,
    check_routes_declare_access,
    public,
    role_guard,
)
from odeus_compliance.security_headers import install_security_headers
from odeus_compliance.settings import Settings
from odeus_compliance.state_keys import (
    AUDIT_APPENDER_KEY,
    DENIAL_LIMITER_KEY,
    DENIAL_RECORDER_KEY,
    ENGINE_KEY,
    METRICS_KEY,
    REPORT_RUNTIME,
    REPORT_VERIFIER,
    SESSIONS_KEY,
    SETTINGS_KEY,
    SIGNING_PROBE_KEY,
)

__all__ = ["ROUTE_HANDLERS", "create_app", "provide_db_session"]

ROUTE_HANDLERS: Sequence[ControllerRouterHandler] = (
    HealthController,
    whoami,
    list_policies,
    get_policy,
    audit_entries,
    audit_checkpoint,
    audit_proof,
    audit_consistency,
    audit_verify,
    audit_export,
    request_report,
    cancel_report,
    list_reports,
    verify_report,
    get_report,
    download_report_pdf,
    download_report_dataset,
    list_schedules,
    put_schedule,
    put_schedule_delivery,
    list_schedule_runs,
    get_metrics,
)
"""Every controller and route of the service. Each must declare its roles (see ``security``)."""

BEARER_SCHEME = "ApiKey"
_log = logging.getLogger(__name__)
_DESCRIPTION = (
    "Privacy-compliance reporting for the Odeus AI workspace. Authenticate with an API key "
    "(`Authorization: Bearer oc_...`; issue one with `odeus-compliance apikey create`). Each key has one "
    "role: officer, auditor or admin (people), or metrics (a Prometheus scraper: `GET /metrics` only). "
    "Errors are RFC 9457 problem documents (`application/problem+json`). "
    "A client whose requests were refused (401, 403) too often in a window gets 429 with `Retry-After` "
    "instead until the window ends; requests with a valid key are still served."
)


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """A session for one request, closed afterwards. Controllers pass it to service functions, which own the
    transaction (commit or roll back); a controller never runs a query itself."""
    async with state[SESSIONS_KEY]() as session:
        yield session


def _openapi_not_found_as_problem(response: Response[Any]) -> Response[Any]:
    """Litestar answers an unknown ``/schema/...`` path with an HTML page; our errors are problem+json."""
    if response.status_code == HTTP_404_NOT_FOUND:
        return problem_response(status=404, code=None, title="Not Found", detail="Not Found")
    return response


def _openapi_router() -> Router:
    """The router Litestar adds the OpenAPI routes to: public by its ``opt`` (not by a path exemption, which
    would also open any other route under ``/schema``)."""
    return Router(
        OPENAPI_PATH,
        route_handlers=[],
        include_in_schema=False,
        opt=public(),
        after_request=_openapi_not_found_as_problem,
    )


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="odeus-compliance",
        version=__version__,
        description=_DESCRIPTION,
        path=OPENAPI_PATH,
        openapi_router=_openapi_router(),
        use_handler_docstrings=True,  # each route's docstring is its OpenAPI description
        # the document only: the browser UIs load unpinned script from CDNs (and would see a key typed into
        # them); use any OpenAPI tool on /schema/openapi.json instead
        render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        security=[{BEARER_SCHEME: []}],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http", scheme="bearer", description="An odeus-compliance API key (`oc_<role>_...`)."
                )
            }
        ),
    )


def _automatic_options_name_every_method(app: Litestar) -> None:
    """Litestar 2 builds a path's automatic ``OPTIONS`` handler for the first handler registered on that
    path, and its ``Allow`` header keeps reading that first route's methods when more handlers join the path
    (``GET`` and ``POST /api/v1/reports``): point each such handler at the route it now belongs to."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fn = getattr(handler, "fn", None)
            if not getattr(fn, "__qualname__", "").startswith("HTTPRoute.create_options_handler"):
                continue
            for cell in getattr(fn, "__closure__", None) or ():
                if isinstance(cell.cell_contents, HTTPRoute) and cell.cell_contents is not route:
                    cell.cell_contents = route


def create_app(
    settings: Settings, *, extra_route_handlers: Sequence[ControllerRouterHandler] = ()
) -> Litestar:
    """Build the app for ``settings``. Raises ``ConfigurationError`` without a master key or when a route
    declares neither roles nor ``public`` (``extra_route_handlers`` lets tests add routes)."""
    pepper = ApiKeyPepper.from_master_key(settings.require_master_key())

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine_for(settings)
        sessions = session_factory(engine)
        app.state[ENGINE_KEY] = engine
        app.state[SESSIONS_KEY] = sessions
        app.state[AUTH_STATE_KEY] = SessionAuthenticator(sessions=sessions, pepper=pepper)
        # the key ring: created on first start if missing (like 'keys init'; safe with several replicas). A
        # ring this master key does not open stops the start; an unreachable or unmigrated database does not
        # (health/ready says so, and every audited request fails closed with a 503 until it is fixed)
        created: tuple[str, ...] = ()
        try:
            async with sessions() as session:
                kek = KeyEncryptionKey(settings.require_master_key())
                created = (await ensure_key_ring(session=session, kek=kek)).created
        except (SQLAlchemyError, OSError) as exc:
            log_event(_log, logging.WARNING, "key_ring_unavailable", error_type=type(exc).__name__)
        # the audit log's writer: its own engine (SQLite: synchronous=FULL), group commit, checkpoint ticker;
        # it and the parts below count in this app's metrics (state[METRICS_KEY], shown at GET /metrics)
        appender = AuditAppender.for_settings(settings, metrics=app.state[METRICS_KEY])
        await appender.start()
        await appender.record_created_keys(created, SYSTEM_SERVICE)
        app.state[AUDIT_APPENDER_KEY] = appender
        app.state[DENIAL_RECORDER_KEY] = record_denial
        # refused requests: counted per client and window, recorded in bounded number, 429 past a limit
        denials = DenialLimiter.for_settings(settings, engine=engine, appender=appender)
        await denials.start()
        app.state[DENIAL_LIMITER_KEY] = denials
        # report jobs: recovered and run in the background (rendering in a worker process)
        runtime = ReportRuntime.from_settings(
            settings, engine=engine, appender=appender, metrics=app.state[METRICS_KEY]
        )
        await runtime.start()
        app.state[REPORT_RUNTIME] = runtime
        # uploaded PDFs: verified in capped processes, a bounded number at a time
        verifier = PdfVerifier.from_settings(settings)
        app.state[REPORT_VERIFIER] = verifier
        # scheduled reports: every replica ticks, the database lets one run each period
        ticker = ScheduleTicker(
            settings=settings,
            sessions=sessions,
            runtime=runtime,
            appender=appender,
            metrics=app.state[METRICS_KEY],
        )
        await ticker.start()
        # retention: a daily run (the database lets one replica do each day's)
        retention = RetentionTicker(
            settings=settings, engine=engine, appender=appender, metrics=app.state[METRICS_KEY]
        )
        await retention.start()
        try:
            yield
        finally:
            await retention.stop()
            await ticker.stop()
            await runtime.stop()
            await verifier.close()
            await denials.stop()  # writes the open windows' summaries while the log is still open
            await appender.close()
            await engine.dispose()

    def provide_settings() -> Settings:
        return settings

    dependencies: dict[str, Any] = {
        "settings": Provide(provide_settings, sync_to_thread=False, use_cache=True),
        "db_session": Provide(provide_db_session),
    }
    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, *console_routers(), *extra_route_handlers],
        lifespan=[database, console_lifespan(settings)],  # the console reads the database's sessions
        middleware=[
            # no path exemptions: public routes say so in their opt (see odeus_compliance.security)
            DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude_from_auth_key=PUBLIC_OPT)
        ],
        guards=[role_guard],
        dependencies=dependencies,
        exception_handlers=app_exception_handlers(),  # problem documents; pages under /console/
        # bodies: bounded in size (routes may set their own) and, where decoded, in JSON nesting
        request_max_body_size=MAX_BODY_BYTES,
        before_request=bound_json_body,
        openapi_config=_openapi_config(),
        plugins=[ProblemDocuments()],  # errors in the OpenAPI document: the routes' problem documents
        state=State(
            {
                SETTINGS_KEY: settings,
                SIGNING_PROBE_KEY: SigningProbe(settings),
                METRICS_KEY: ServiceMetrics(),
                SESSION_AUTH_STATE_KEY: authenticate_session,
            }
        ),
        logging_config=None,
        debug=False,
        experimental_features=list[ExperimentalFeatures](),
    )
    check_routes_declare_access(app)
    _automatic_options_name_every_method(app)
    install_request_log(app)
    install_security_headers(app)
    return app
