"""The demo flow: start the built-in Odeus simulator, pull last month's users export, total it up.

This is the main job as far as it is built: reports, policies and the audit log are later steps, and the
demo says so rather than pretending. Only company-wide totals are printed or written; no row leaves memory.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.request import ExportRequest, zone
from odeus_compliance.upstream.result import ExportInfo, ExportReport
from odeus_compliance.upstream.simulator.server import RunningSimulator
from odeus_compliance.upstream.summary import UsageSummary

MASTER_KEY_FILE_NAME = "demo-master.key"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class PullOutcome:
    """What the demo pulled: the request, Odeus's facts about the export, what the client noticed, totals."""

    request: ExportRequest
    info: ExportInfo
    report: ExportReport
    summary: UsageSummary


def last_month(timezone: str, *, now: datetime | None = None) -> tuple[int, int]:
    """``(year, month)`` of the calendar month before the current one, in ``timezone``."""
    today = (now or datetime.now(zone(timezone))).astimezone(zone(timezone)).date()
    first = date(today.year, today.month, 1)
    return (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)


def client_config_for(simulator: RunningSimulator) -> OdeusClientConfig:
    """A client configuration for the simulator on loopback (plain http downloads allowed from it only)."""
    return OdeusClientConfig(
        api_key=simulator.api_key, base_url=simulator.base_url, download_hosts=LOOPBACK_HOSTS
    )


async def pull_users_export(
    simulator: RunningSimulator, *, year: int, month: int, timezone: str
) -> PullOutcome:
    """Stream one month's users export from the simulator and total it; the totals are used only once the
    stream ended complete (a cut-short download raises before they are returned)."""
    request = ExportRequest.for_month(ExportType.USERS, year, month, timezone)
    summary = UsageSummary()
    async with OdeusClient(client_config_for(simulator)) as client, client.open_export(request) as export:
        async for batch in export.batches():
            summary.add(batch)
        report = export.report
        info = export.info
    return PullOutcome(request=request, info=info, report=report, summary=summary)


def summary_document(outcome: PullOutcome) -> dict[str, Any]:
    """The totals as a JSON-ready document (no personal data: sums and counts only)."""
    summary, info, report = outcome.summary, outcome.info, outcome.report
    document: dict[str, Any] = {
        "export": {
            "type": info.export_type.value,
            "from": outcome.request.start.instant.astimezone(zone(outcome.request.start.timezone)).isoformat(
                timespec="milliseconds"
            ),
            "to": outcome.request.end.instant.astimezone(zone(outcome.request.end.timezone)).isoformat(
                timespec="milliseconds"
            ),
            "timezone": outcome.request.start.timezone,
            "record_count": info.record_count,
            "rows_read": report.rows,
            "parts": info.parts,
            "unknown_columns": list(report.unknown_columns),
            "anonymised_upstream": [
                {"column": a.column, "how": a.how.value, "cells": a.cells, "complete": a.complete}
                for a in report.anonymised
            ],
        },
        "users": {"rows": summary.rows, "active": summary.active_users},
        "messages": dict(summary.messages),
        "agents_used": len(summary.agents_used),
        "projects_used": len(summary.projects_used),
        "models": [
            {"model": model, "messages": count, "share": round(share, 4)}
            for model, count, share in summary.model_shares()
        ],
        "payg_consumption": str(summary.payg_consumption.quantize(CENT)),
    }
    if summary.tokens or summary.cost_usd is not None:
        document["byok"] = {
            **dict(summary.tokens),
            "total_cost_usd": str((summary.cost_usd or Decimal(0)).quantize(CENT)),
        }
    return document


def demo_master_key(data_dir: Path) -> bytes:
    """The demo's own master key, made once and kept (mode 0600) in its data dir so a restart finds its
    data again. Only the demo does this: the service proper refuses to start without a configured key."""
    path = data_dir / MASTER_KEY_FILE_NAME
    if path.exists():
        return path.read_bytes()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def write_summary(outcome: PullOutcome, out_dir: Path) -> Path:
    """Write the totals to ``out_dir/summary.json`` (atomically: a crash leaves the old file or none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "summary.json"
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(summary_document(outcome), indent=2, ensure_ascii=False) + "\n", "utf-8")
    partial.replace(target)
    return target
