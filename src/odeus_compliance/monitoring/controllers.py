"""``GET /metrics``: the Prometheus text exposition of this replica's metrics.

Guarded like every route: an API key with the ``metrics`` role (for the scraper: it may read nothing else)
or ``admin``. Counters and histograms are this process's since its start; the gauges read at scrape (queue
depth, audit log size) are the database's, so every replica shows the same value for them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.store import read_head
from odeus_compliance.core.metrics import CONTENT_TYPE
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.logging_setup import log_event
from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.reports.jobs import ReportStatus
from odeus_compliance.reports.runtime import ReportRuntime
from odeus_compliance.security import Role, requires_role
from odeus_compliance.state_keys import ENGINE_KEY, METRICS_KEY, REPORT_RUNTIME

__all__ = ["get_metrics"]

_READ_TIMEOUT_SECONDS: Final = 5.0
_MEDIA_TYPE: Final = CONTENT_TYPE.removesuffix("; charset=utf-8")  # Litestar appends the charset itself
_log = logging.getLogger(__name__)


async def _read_gauges(service: ServiceMetrics, runtime: ReportRuntime, engine: AsyncEngine) -> None:
    for status in (ReportStatus.QUEUED, ReportStatus.RUNNING):
        service.report_queue.set(await runtime.jobs.count(status), status=status.value)
    async with engine.connect() as connection:
        service.audit_entries.set((await read_head(connection)).size)


@get(
    "/metrics",
    operation_id="metrics",
    tags=["monitoring"],
    opt=requires_role(Role.METRICS, Role.ADMIN),
    responses=problem_responses(requires_role(Role.METRICS, Role.ADMIN)),
    media_type=_MEDIA_TYPE,
    include_in_schema=True,
)
async def get_metrics(state: State) -> Response[str]:
    """This replica's metrics in the Prometheus text format (0.0.4): report jobs and stage durations by
    outcome, the job queue's depth, upstream retries and errors, audit append latency and the log's size,
    retention runs, scheduled runs, notifications, and refused requests (401/403). Needs an API key with
    the `metrics` role (`odeus-compliance apikey create --role metrics --name prometheus`; such a key may
    read nothing else) or `admin`. A gauge the database cannot give now keeps its last value."""
    service: ServiceMetrics = state[METRICS_KEY]
    try:
        await asyncio.wait_for(
            _read_gauges(service, state[REPORT_RUNTIME], state[ENGINE_KEY]), timeout=_READ_TIMEOUT_SECONDS
        )
    except (SQLAlchemyError, OSError, LookupError, TimeoutError) as exc:
        log_event(_log, logging.WARNING, "metrics.gauges_unavailable", error_type=type(exc).__name__)
    return Response(service.render(), media_type=_MEDIA_TYPE)
