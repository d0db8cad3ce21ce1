"""The Prometheus text exposition written by ``core.metrics`` and ``core.service_metrics``, read back by a
strict parser written from the format's documentation."""

from __future__ import annotations

import math

import pytest

from odeus_compliance.core.metrics import Counter, Gauge, Histogram, Registry
from odeus_compliance.core.service_metrics import ServiceMetrics
from tests.support.prometheus import ParseError, parse_exposition


def test_counters_gauges_and_histograms_round_trip() -> None:
    registry = Registry()
    jobs = registry.add(Counter("jobs_total", "Jobs.\nSecond line \\ too.", ["outcome"]))
    depth = registry.add(Gauge("queue_depth", "Queued jobs."))
    seconds = registry.add(Histogram("stage_seconds", "Stage time.", ["stage"], buckets=(0.5, 1, 5)))
    jobs.inc(outcome="succeeded")
    jobs.inc(2, outcome="failed")
    depth.set(7)
    for value in (0.2, 0.5, 0.7, 3, 60):
        seconds.observe(value, stage="fetch")
    parsed = parse_exposition(registry.render())
    assert parsed.types == {"jobs_total": "counter", "queue_depth": "gauge", "stage_seconds": "histogram"}
    assert parsed.helps["jobs_total"] == "Jobs.\\nSecond line \\\\ too."  # escaped as the format says
    assert parsed.value("jobs_total", outcome="succeeded") == 1
    assert parsed.value("jobs_total", outcome="failed") == 2
    assert parsed.value("queue_depth") == 7
    buckets = {
        le: parsed.value("stage_seconds_bucket", stage="fetch", le=le) for le in ("0.5", "1", "5", "+Inf")
    }
    assert buckets == {"0.5": 2, "1": 3, "5": 4, "+Inf": 5}  # cumulative, the boundary inclusive
    assert parsed.value("stage_seconds_count", stage="fetch") == 5
    assert math.isclose(parsed.value("stage_seconds_sum", stage="fetch"), 64.4)


def test_label_values_are_escaped() -> None:
    registry = Registry()
    errors = registry.add(Counter("errors_total", "Errors.", ["error"]))
    hostile = 'a\\b"c\nd}e,f="g'
    errors.inc(error=hostile)
    text = registry.render()
    assert text.count("\n") == 3  # HELP, TYPE, one sample: the line feed in the value is escaped
    assert parse_exposition(text).value("errors_total", error=hostile) == 1


def test_wrong_labels_and_names_are_refused() -> None:
    counter = Counter("c_total", "C.", ["outcome"])
    with pytest.raises(ValueError, match="takes the labels outcome"):
        counter.inc(stage="x")
    with pytest.raises(ValueError, match="cannot go down"):
        counter.inc(-1, outcome="x")
    with pytest.raises(ValueError, match="invalid metric or label name"):
        Counter("bad-name", "x")
    with pytest.raises(ValueError, match="label named le"):
        Histogram("h", "x", ["le"], buckets=(1,))
    registry = Registry()
    registry.add(Gauge("g", "x"))
    with pytest.raises(ValueError, match="twice"):
        registry.add(Gauge("g", "y"))


def test_the_parser_is_strict() -> None:
    for text in (
        "x 1\n",  # no TYPE
        "# TYPE x gauge\nx 1\nx 2\n",  # a series twice
        '# TYPE x gauge\nx{a="\\q"} 1\n',  # a bad escape
        "# TYPE x gauge\nx one\n",  # a bad value
        "# TYPE x gauge\n\nx 1\n",  # a blank line
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ):
        with pytest.raises(ParseError):
            parse_exposition(text)


def test_the_service_metrics_render_before_and_after_counting() -> None:
    service = ServiceMetrics()
    empty = parse_exposition(service.render())
    assert "odeus_compliance_report_jobs_total" in empty.types
    assert not empty.samples  # nothing counted yet, nothing invented
    service.report_stage("fetch", "ok", 1.5)
    service.report_job("succeeded", 4.0)
    service.upstream_error("UpstreamUnavailable")
    service.upstream_retry("UpstreamUnavailable")
    service.audit_append(0.003, ok=True)
    service.access_denied(401, "no_key")
    service.retention_run("failed")
    service.notification("retention.failed", "webhook", sent=True)
    parsed = parse_exposition(service.render())
    assert parsed.value("odeus_compliance_report_jobs_total", outcome="succeeded") == 1
    assert (
        parsed.value("odeus_compliance_report_stage_duration_seconds_count", stage="fetch", outcome="ok") == 1
    )
    assert parsed.value("odeus_compliance_upstream_retries_total", error="UpstreamUnavailable") == 1
    assert parsed.value("odeus_compliance_access_denied_total", status="401", reason="no_key") == 1
    assert parsed.value("odeus_compliance_retention_runs_total", outcome="failed") == 1
    assert (
        parsed.value(
            "odeus_compliance_notifications_total",
            event="retention.failed",
            channel="webhook",
            outcome="sent",
        )
        == 1
    )
