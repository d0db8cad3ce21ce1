"""The demo flow: the whole main job on the embedded default, with the built-in Odeus simulator.

:func:`run_demo_report` takes a running simulator and a data dir and does what a monthly run does in
production: migrate the database, complete the key ring, make the self-signed demo signing certificate,
record the request, pull last month's users export, apply ``policies/default.toml``, render, sign, verify
and archive the PDF (the report flow, :mod:`odeus_compliance.reports.flow`, in a worker process), then hand
out a copy of the signed PDF (recorded as a download) and verify that copy as a reader would.

Only the signed PDF and the report's figures (group counts and totals after the policy's minimum group size)
leave the archive; no row is printed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from odeus_compliance.core.files import write_atomically
from odeus_compliance.core.periods import zone
from odeus_compliance.settings import (
    MASTER_KEY_BYTES,
    Secret,
    Settings,
    default_sqlite_url,
    read_master_key_file,
)

__all__ = [
    "DEMO_PURPOSE",
    "MASTER_KEY_FILE_NAME",
    "DemoOutcome",
    "demo_master_key",
    "demo_settings",
    "last_month",
    "run_demo_report",
]

MASTER_KEY_FILE_NAME = "demo-master.key"
DEMO_PURPOSE = "demo: monthly AI usage report of the simulated workspace"


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """What the demo made: the job as stored, the PDF copy and its verification, the figures."""

    report_id: str
    status: str
    error: str | None
    pdf_path: Path | None
    sha256: str | None
    valid: bool
    verification_text: str
    figures: dict[str, Any]
    ca_certificate: Path | None


def last_month(timezone: str, *, now: datetime | None = None) -> tuple[int, int]:
    """``(year, month)`` of the calendar month before the current one, in ``timezone``."""
    today = (now or datetime.now(zone(timezone))).astimezone(zone(timezone)).date()
    first = date(today.year, today.month, 1)
    return (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)


def demo_master_key(data_dir: Path) -> bytes:
    """The demo's own master key, made once and kept (mode 0600) in its data dir so a restart finds its
    data again. Only the demo does this: the service proper refuses to start without a configured key."""
    path = data_dir / MASTER_KEY_FILE_NAME
    if path.exists():
        content = path.read_bytes()
        if len(content) == MASTER_KEY_BYTES:  # written raw by earlier versions
            return content
        # base64 text, so that ODEUS_COMPLIANCE_MASTER_KEY_FILE can name this file for the other commands
        return read_master_key_file(path).reveal()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    return key


def demo_settings(
    base: Settings, *, data_dir: Path, base_url: str, api_key: str, storage_url: str | None = None
) -> Settings:
    """``base`` pointed at the demo's own data dir (SQLite, its own master key) and at the simulator.

    The download allow-list names exactly the simulator's storage address and port (``storage_url``).
    """
    data_dir = data_dir.resolve()
    return dataclasses.replace(
        base,
        data_dir=data_dir,
        database_url=default_sqlite_url(data_dir),
        master_key=Secret(demo_master_key(data_dir)),
        odeus_base_url=base_url,
        odeus_api_key=Secret(api_key),
        download_hosts=frozenset({urlsplit(storage_url).netloc}) if storage_url else frozenset(),
    )


async def run_demo_report(
    settings: Settings, *, year: int, month: int, timezone: str, out_dir: Path
) -> DemoOutcome:
    """Run one report of ``year-month`` as a job and write the signed PDF to ``out_dir/report.pdf``."""
    # imported here: the demo's --help must stay fast (see odeus_compliance.commands)
    from odeus_compliance.audit.appender import SYSTEM_CLI  # noqa: PLC0415
    from odeus_compliance.audit.recorder import Recorder  # noqa: PLC0415
    from odeus_compliance.db.migrate import upgrade  # noqa: PLC0415
    from odeus_compliance.keys.certificates import demo_paths, ensure_demo_certificate  # noqa: PLC0415
    from odeus_compliance.reports import actions, service  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportPeriod, ReportStatus  # noqa: PLC0415
    from odeus_compliance.reports.runtime import standalone_runtime  # noqa: PLC0415
    from odeus_compliance.reports.verifier import PdfVerifier, file_chunks  # noqa: PLC0415

    await upgrade(settings)
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    wanted = service.resolve_request(
        period=ReportPeriod.month(year, month, timezone),
        policy="default",
        purpose=DEMO_PURPOSE,
        policy_dir=settings.policy_dir,
    )
    async with standalone_runtime(settings, actor=SYSTEM_CLI) as runtime:
        recorder = Recorder(runtime.flow.appender, SYSTEM_CLI)
        queued = await actions.request_report(recorder, jobs=runtime.jobs, wanted=wanted, requested_by="demo")
        record = await runtime.run_job(queued.id) or queued
        if record.status is not ReportStatus.SUCCEEDED:
            return DemoOutcome(record.id, record.status.value, record.error, None, None, False, "", {}, None)
        figures = json.loads(await runtime.store.read(record.id, "figures.json"))
        pdf = await actions.hand_out_bytes(
            recorder, store=runtime.store, record=record, name=service.PDF_FILE, purpose=DEMO_PURPOSE
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "report.pdf"
        write_atomically(target, pdf)
        result = await actions.verify_report(
            recorder, verifier=PdfVerifier.from_settings(settings), upload=file_chunks(target.read_bytes())
        )
    ca = demo_paths(settings.data_dir).ca_cert
    return DemoOutcome(
        report_id=record.id,
        status=record.status.value,
        error=None,
        pdf_path=target,
        sha256=record.pdf_sha256,
        valid=result.valid,
        verification_text=result.render_text(),
        figures=figures,
        ca_certificate=ca if ca.is_file() else None,
    )
