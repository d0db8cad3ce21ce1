"""The audited actions on the audit log itself, one function each, called by the API, the command line
and the console: verifying the whole log records ``audit.verified`` with the verdict; exporting a
verification bundle records ``audit.exported`` with its range and purpose."""

from __future__ import annotations

import datetime as dt

from odeus_compliance.audit import service
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action
from odeus_compliance.audit.store import Executor
from odeus_compliance.audit.verdict import VerificationReport

__all__ = ["export_log", "verify_log"]


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def verify_log(
    recorder: Recorder, *, session: Executor, previous_checkpoint: str | None = None
) -> VerificationReport:
    """Verify the whole stored log (every leaf decrypted) and record the verdict before returning it."""
    appender = recorder.appender
    report = await service.verify_stored_log(
        session=session,
        kek=appender.kek,
        identity=await appender.identity(),
        previous_checkpoint=previous_checkpoint,
    )
    await recorder.record(
        action=Action.AUDIT_VERIFIED,
        resource="audit:log",
        details={"valid": report.valid, "problem_count": len(report.problems), "entry_count": report.entries},
    )
    return report


async def export_log(
    recorder: Recorder,
    *,
    session: Executor,
    start: dt.datetime,
    end: dt.datetime,
    purpose: str,
    since_checkpoint: str | None = None,
) -> tuple[bytes, int]:
    """A verification bundle of ``[start, end]`` and its entry count; the export is recorded before the
    bundle is returned (so before it is handed out)."""
    bundle, count = await service.export_bundle(
        session=session, appender=recorder.appender, start=start, end=end, since_checkpoint=since_checkpoint
    )
    await recorder.record(
        action=Action.AUDIT_EXPORTED,
        resource="audit:export",
        purpose=purpose,
        details={"entry_count": count, "from_time": _stamp(start), "to_time": _stamp(end)},
    )
    return bundle, count
