"""The service's metrics: what ``GET /metrics`` shows (see docs/monitoring.md).

One :class:`ServiceMetrics` per app, built by ``create_app`` and handed to the parts that count (the report
flow, the upstream client, the audit appender, the scheduler, the retention ticker, the authentication
middleware). A part built without one (a command, a test) gets ``None`` and counts nothing. Every label value
is from a fixed vocabulary of the code (a stage, an outcome, an error class), never from data.
"""

from __future__ import annotations

from typing import Final

from odeus_compliance.core.metrics import Counter, Gauge, Histogram, Registry

__all__ = ["PREFIX", "ServiceMetrics"]

PREFIX: Final = "odeus_compliance_"
_STAGE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_JOB_BUCKETS: Final = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
_APPEND_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ServiceMetrics:
    """The families, and one method per event the service reports."""

    def __init__(self) -> None:
        self.registry = Registry()
        add = self.registry.add
        self.report_jobs = add(
            Counter(
                PREFIX + "report_jobs_total",
                "Report jobs this process ran to an end, by outcome (succeeded, failed, interrupted: "
                "cancelled, taken over or stopped at shutdown).",
                ["outcome"],
            )
        )
        self.report_job_seconds = add(
            Histogram(
                PREFIX + "report_job_duration_seconds",
                "Duration of the report jobs this process ran, by outcome.",
                ["outcome"],
                buckets=_JOB_BUCKETS,
            )
        )
        self.report_stage_seconds = add(
            Histogram(
                PREFIX + "report_stage_duration_seconds",
                "Duration of each stage of a report job (policy, audit, fetch, render, store), by how the "
                "stage ended (ok: the job went on; else the job's outcome).",
                ["stage", "outcome"],
                buckets=_STAGE_BUCKETS,
            )
        )
        self.report_queue = add(
            Gauge(
                PREFIX + "report_jobs",
                "Report jobs in the database by status (queued: the queue depth; running), read at scrape.",
                ["status"],
            )
        )
        self.upstream_retries = add(
            Counter(
                PREFIX + "upstream_retries_total",
                "Calls to the Odeus API tried again after a retryable error, by error class.",
                ["error"],
            )
        )
        self.upstream_errors = add(
            Counter(
                PREFIX + "upstream_errors_total",
                "Failed attempts of calls to the Odeus API (retried or not), by error class.",
                ["error"],
            )
        )
        self.audit_append_seconds = add(
            Histogram(
                PREFIX + "audit_append_duration_seconds",
                "Time from handing an audit record to the appender until it is durable (ok) or refused "
                "(error).",
                ["outcome"],
                buckets=_APPEND_BUCKETS,
            )
        )
        self.audit_entries = add(
            Gauge(PREFIX + "audit_log_entries", "Entries (leaves) in the audit log, read at scrape.")
        )
        self.retention_runs = add(
            Counter(
                PREFIX + "retention_runs_total",
                "Daily retention runs of this process, by outcome (succeeded, failed, skipped: another "
                "replica ran the day).",
                ["outcome"],
            )
        )
        self.denied = add(
            Counter(
                PREFIX + "access_denied_total",
                "Refused requests (sign-in failures), by status (401: no or bad key; 403: wrong role) and "
                "reason.",
                ["status", "reason"],
            )
        )
        self.schedule_runs = add(
            Counter(
                PREFIX + "schedule_runs_total",
                "Scheduled runs this process finished, by status (succeeded, failed, skipped).",
                ["status"],
            )
        )
        self.notifications = add(
            Counter(
                PREFIX + "notifications_total",
                "Notifications sent (webhook, e-mail), by event type, channel and outcome (sent, failed).",
                ["event", "channel", "outcome"],
            )
        )

    # --- events --------------------------------------------------------------------------------------------

    def report_stage(self, stage: str, outcome: str, seconds: float) -> None:
        """A report job's stage ended."""
        self.report_stage_seconds.observe(max(0.0, seconds), stage=stage, outcome=outcome)

    def report_job(self, outcome: str, seconds: float) -> None:
        """A report job ended."""
        self.report_jobs.inc(outcome=outcome)
        self.report_job_seconds.observe(max(0.0, seconds), outcome=outcome)

    def upstream_retry(self, error: str) -> None:
        """An Odeus call is tried again after ``error`` (an error class name)."""
        self.upstream_retries.inc(error=error)

    def upstream_error(self, error: str) -> None:
        """An attempt of an Odeus call failed with ``error`` (an error class name)."""
        self.upstream_errors.inc(error=error)

    def audit_append(self, seconds: float, *, ok: bool) -> None:
        """An audit record was appended (or refused) after ``seconds``."""
        self.audit_append_seconds.observe(max(0.0, seconds), outcome="ok" if ok else "error")

    def access_denied(self, status: int, reason: str) -> None:
        """A request was refused with ``status`` (401, 403)."""
        self.denied.inc(status=str(status), reason=reason)

    def retention_run(self, outcome: str) -> None:
        """A daily retention run ended."""
        self.retention_runs.inc(outcome=outcome)

    def schedule_run(self, status: str) -> None:
        """A scheduled run ended with ``status``."""
        self.schedule_runs.inc(status=status)

    def notification(self, event: str, channel: str, *, sent: bool) -> None:
        """A notification was sent (or failed) on ``channel``."""
        self.notifications.inc(event=event, channel=channel, outcome="sent" if sent else "failed")

    def render(self) -> str:
        """The exposition text."""
        return self.registry.render()
