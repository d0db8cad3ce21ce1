"""The failure paths of the audited actions: nothing usable is left without its record, and a request
whose job cannot be queued leaves a failure record instead of a dangling one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from odeus_compliance.apikeys.actions import issue_api_key
from odeus_compliance.apikeys.service import authenticate
from odeus_compliance.audit.recorder import AuditUnavailable, Recorder
from odeus_compliance.audit.records import Action, Outcome
from odeus_compliance.core.periods import ReportPeriod
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.errors import ServiceUnavailable
from odeus_compliance.policy.service import find_policy
from odeus_compliance.reports.actions import request_report
from odeus_compliance.reports.jobs import JobsBusy, ReportJobs
from odeus_compliance.reports.service import RequestedReport
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings


class _Recorder:
    """Keeps what it is asked to record; fails from the given call on."""

    def __init__(self, *, fail_from: int | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail_from = fail_from

    async def record(self, **fields: Any) -> None:
        if self.fail_from is not None and len(self.records) >= self.fail_from:
            raise AuditUnavailable
        self.records.append(fields)


async def test_a_key_whose_record_cannot_be_written_is_revoked_at_once(migrated_settings: Settings) -> None:
    pepper = ApiKeyPepper.from_master_key(migrated_settings.require_master_key())
    engine = create_engine_for(migrated_settings)
    try:
        async with session_factory(engine)() as session:
            with pytest.raises(AuditUnavailable):
                await issue_api_key(
                    cast("Recorder", _Recorder(fail_from=0)),
                    session=session,
                    pepper=pepper,
                    name="no record",
                    role=Role.ADMIN,
                )
            recorder = _Recorder()
            _row, plaintext = await issue_api_key(
                cast("Recorder", recorder), session=session, pepper=pepper, name="recorded", role=Role.ADMIN
            )
            assert await authenticate(session=session, pepper=pepper, presented=plaintext) is not None
            (record,) = recorder.records
            assert record["action"] is Action.APIKEY_CREATED
            assert "recorded" not in repr(record)  # the key's name is not in the record
    finally:
        await engine.dispose()


class _BrokenJobs:
    async def request(self, **_: object) -> None:
        raise RuntimeError("the job table is gone")


async def test_a_request_whose_job_cannot_be_queued_leaves_a_failure_record(settings: Settings) -> None:
    entry = find_policy(policy_dir=settings.policy_dir, name="default")
    assert entry is not None
    wanted = RequestedReport(period=ReportPeriod.month(2026, 10, "UTC"), policy=entry, purpose="test")
    recorder = _Recorder()
    with pytest.raises(RuntimeError):
        await request_report(
            cast("Recorder", recorder),
            jobs=cast("ReportJobs", _BrokenJobs()),
            wanted=wanted,
            requested_by="t",
        )
    requested, failed = recorder.records
    assert (requested["action"], requested.get("outcome", Outcome.SUCCESS)) == (
        Action.REPORT_REQUESTED,
        Outcome.SUCCESS,
    )
    assert (failed["action"], failed["outcome"]) == (Action.REPORT_REQUESTED, Outcome.FAILURE)
    details: Mapping[str, Any] = failed["details"]
    assert details["error_code"] == "job_not_queued"
    assert details["report_id"] == requested["details"]["report_id"]


class _BusyJobs:
    async def request(self, *, report_id: str | None = None, **_: object) -> None:
        raise JobsBusy(report_id or "")


async def test_a_request_the_busy_database_cannot_queue_is_a_503_with_retry_after(settings: Settings) -> None:
    entry = find_policy(policy_dir=settings.policy_dir, name="default")
    assert entry is not None
    wanted = RequestedReport(period=ReportPeriod.month(2026, 10, "UTC"), policy=entry, purpose="test")
    recorder = _Recorder()
    with pytest.raises(ServiceUnavailable) as raised:
        await request_report(
            cast("Recorder", recorder), jobs=cast("ReportJobs", _BusyJobs()), wanted=wanted, requested_by="t"
        )
    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) > 0
    requested, failed = recorder.records
    assert failed["outcome"] is Outcome.FAILURE
    assert failed["details"]["report_id"] == requested["details"]["report_id"]
