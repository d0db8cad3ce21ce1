"""The report flow with real parts: the simulator over loopback, the policy engine, the worker process
(WeasyPrint, pyHanko), the audit log and the artifact store, on SQLite and PostgreSQL.

Good path: the PDF verifies, the audit log holds ``export.fetched`` (with the purpose) before
``report.generated``, nothing identifying reaches the stored files, the work folder is gone. Bad paths: an
upstream that fails, a download cut short, an unknown policy, a worker killed mid-render, a report that fails
its own verification: each gives a failed job with a clear reason, no artifact, no work files.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from odeus_compliance.audit import service as audit_service
from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.store import EntryFilter
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyKind, load_identity
from odeus_compliance.reports.flow import WORK_DIR, export_request_for
from odeus_compliance.reports.jobs import ReportPeriod, ReportRecord, ReportStatus
from odeus_compliance.reports.runtime import ReportRuntime, standalone_runtime
from odeus_compliance.reports.verify import trust_anchors, verify_pdf
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.policies import policy_folder

USERS, SEED = 60, 11
PERIOD = ReportPeriod.month(2026, 10, "Europe/Berlin")
PURPOSE = "quarterly works-council review"


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=USERS, seed=SEED)) as running:
        yield running


@pytest.fixture
def flow_settings(migrated_settings: Settings, simulator: RunningSimulator) -> Settings:
    settings = dataclasses.replace(
        migrated_settings,
        odeus_base_url=simulator.base_url,
        odeus_api_key=Secret(simulator.api_key),
        download_hosts=frozenset({simulator.download_host}),
        policy_dir=policy_folder(migrated_settings.data_dir.parent / "policies"),
    )
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    return settings


@pytest.fixture
async def runtime(flow_settings: Settings) -> AsyncIterator[ReportRuntime]:
    async with standalone_runtime(flow_settings, actor=SYSTEM_CLI) as running:
        yield running


async def _run(runtime: ReportRuntime, policy: str = "default") -> ReportRecord:
    queued = await runtime.jobs.request(period=PERIOD, policy=policy, purpose=PURPOSE, requested_by="cli")
    record = await runtime.run_job(queued.id)
    assert record is not None
    return record


async def _audit(settings: Settings) -> list[dict[str, Any]]:
    engine = create_engine_for(settings)
    kek = KeyEncryptionKey(settings.require_master_key())
    try:
        async with session_factory(engine)() as session:
            origin = (await load_identity(executor=session, kek=kek)).origin
            entries, _ = await audit_service.list_entries(
                session=session, kek=kek, origin=origin, filters=EntryFilter(), limit=1000
            )
    finally:
        await engine.dispose()
    return [e.record for e in entries if e.record is not None]


async def _assert_nothing_left(runtime: ReportRuntime, settings: Settings, report_id: str) -> None:
    for name in ("report.pdf", "data.csv", "figures.json"):
        assert not await runtime.store.exists(report_id, name)
    work = settings.data_dir / WORK_DIR
    assert not work.exists() or list(work.iterdir()) == []


async def test_a_report_is_pulled_pseudonymised_signed_verified_stored_and_audited(
    runtime: ReportRuntime, flow_settings: Settings, simulator: RunningSimulator
) -> None:
    record = await _run(runtime, policy="rows")  # a policy that releases per-person rows

    assert record.status is ReportStatus.SUCCEEDED, record.error
    assert (record.stage, record.progress, record.has_dataset) == ("done", 1.0, True)
    assert record.policy_hash is not None
    pdf = await runtime.store.read(record.id, "report.pdf")
    result = verify_pdf(pdf, anchors=trust_anchors(flow_settings))
    assert result.valid, result.render_text()
    assert result.report_id == record.id
    assert hashlib.sha256(pdf).hexdigest() == record.pdf_sha256
    dataset_bytes = await runtime.store.read(record.id, "data.csv")
    # the figures-only PDF (every reader's) holds no per-person rows; the full one (officers') embeds the
    # deflated copy the engine's sink made, which poppler inflates to the stored dataset
    assert "data.csv" not in _attachment_names(pdf, flow_settings.data_dir)
    full = await runtime.store.read(record.id, "report-full.pdf")
    assert verify_pdf(full, anchors=trust_anchors(flow_settings)).valid
    assert _embedded_file(full, flow_settings.data_dir, "data.csv") == dataset_bytes
    dataset = dataset_bytes.decode("utf-8")
    stored = pdf.decode("latin-1") + full.decode("latin-1") + dataset
    users = simulator.workspace.users
    leaked = [v for v in (*users.names, *users.emails, *users.ids) if v and v.lower() in stored.lower()]
    assert leaked == []
    await _assert_nothing_left_of_work(flow_settings)

    records = await _audit(flow_settings)
    actions = [(r["action"], r["outcome"]) for r in records if r["resource"] == f"report:{record.id}"]
    assert actions == [("export.fetched", "success"), ("report.generated", "success")]
    fetched = next(r for r in records if r["action"] == "export.fetched")
    assert fetched["purpose"] == PURPOSE
    assert fetched["details"]["policy_hash"] == record.policy_hash
    generated = next(r for r in records if r["action"] == "report.generated")
    assert generated["details"]["sha256"] == record.pdf_sha256

    manifest = _embedded_manifest(pdf, flow_settings.data_dir)
    raw = await _raw_export(simulator)
    assert manifest["upstream_export"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["upstream_export"]["bytes"] == len(raw)
    assert manifest["upstream_export"]["rows"] == raw.count(b"\n") - 1  # header + one line per user

    second = await _run(runtime, policy="rows")  # a second version of the same month
    assert (second.status, second.version, second.supersedes) == (ReportStatus.SUCCEEDED, 2, record.id)


async def test_a_report_of_an_overlapping_period_is_compared_like_a_version(runtime: ReportRuntime) -> None:
    first = await _run(runtime)
    figures = json.loads(await runtime.store.read(first.id, "figures.json"))
    # as if the first report had been published two people larger (another export, people left since)
    figures["people"] += 2
    await runtime.store.put(first.id, "figures.json", json.dumps(figures).encode())
    # the same month in another zone is not a version of the first, but covers nearly the same people
    other_zone = ReportPeriod.month(PERIOD.start.year, 10, "UTC")
    queued = await runtime.jobs.request(
        period=other_zone, policy="default", purpose=PURPOSE, requested_by="cli"
    )
    second = await runtime.run_job(queued.id)
    assert second is not None
    assert (second.status, second.version) == (ReportStatus.FAILED, 1)
    assert "overlapping period by fewer than 5 people" in (second.error or "")
    for name in ("report.pdf", "figures.json"):
        assert not await runtime.store.exists(second.id, name)


def _subject_tokens(dataset: str) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(dataset)))
    assert rows
    return {row["user_id"] for row in rows}


async def test_pseudonyms_come_from_the_key_rings_current_epoch_and_change_when_it_is_rotated(
    runtime: ReportRuntime,
) -> None:
    first = await _run(runtime, policy="gated_rows")
    before = _subject_tokens((await runtime.store.read(first.id, "data.csv")).decode("utf-8"))
    assert all(token.startswith("u1_") for token in before)

    await runtime.store.ring.rotate(KeyKind.PSEUDONYMISATION)
    second = await _run(runtime, policy="gated_rows")
    after = _subject_tokens((await runtime.store.read(second.id, "data.csv")).decode("utf-8"))
    assert all(token.startswith("u2_") for token in after)
    assert len(after) == len(before)
    assert {t.removeprefix("u2_") for t in after}.isdisjoint({t.removeprefix("u1_") for t in before})


def _embedded_file(pdf: bytes, folder: Path, name: str) -> bytes:
    """An attachment as poppler's pdfdetach extracts it (not our own reader)."""
    source, target = folder / "check.pdf", folder / f"check-{name}"
    source.write_bytes(pdf)
    subprocess.run(["pdfdetach", "-savefile", name, "-o", str(target), str(source)], check=True, timeout=60)
    return target.read_bytes()


def _attachment_names(pdf: bytes, folder: Path) -> set[str]:
    source = folder / "list.pdf"
    source.write_bytes(pdf)
    listed = subprocess.run(
        ["pdfdetach", "-list", str(source)], check=True, timeout=60, capture_output=True, text=True
    ).stdout
    return {line.split(": ", 1)[1] for line in listed.splitlines() if ": " in line}


def _embedded_manifest(pdf: bytes, folder: Path) -> dict[str, Any]:
    """manifest.json as poppler's pdfdetach extracts it."""
    document: dict[str, Any] = json.loads(_embedded_file(pdf, folder, "manifest.json").decode("utf-8"))
    return document


async def _raw_export(simulator: RunningSimulator) -> bytes:
    """The period's users export file exactly as the simulator serves it."""
    request = export_request_for(PERIOD)
    async with httpx.AsyncClient() as http:
        envelope = await http.post(
            simulator.base_url + request.path,
            json=request.body(),
            headers={"Authorization": f"Bearer {simulator.api_key}"},
        )
        download = await http.get(envelope.json()["data"]["downloadUrl"])
    return download.content


async def _assert_nothing_left_of_work(settings: Settings) -> None:
    work = settings.data_dir / WORK_DIR
    assert not work.exists() or list(work.iterdir()) == []


async def test_an_upstream_that_keeps_failing_fails_the_job_with_a_clear_reason(
    runtime: ReportRuntime, flow_settings: Settings, simulator: RunningSimulator
) -> None:
    runtime.flow.retry = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1)
    simulator.faults.fail_next(3, status=503)
    try:
        record = await _run(runtime)
    finally:
        simulator.faults.clear()

    assert record.status is ReportStatus.FAILED
    assert record.error is not None
    assert record.error.startswith("the Odeus export could not be fetched:")
    assert "503" in record.error
    assert "gave up after 3" in record.error
    await _assert_nothing_left(runtime, flow_settings, record.id)
    outcomes = [
        (r["action"], r["outcome"])
        for r in await _audit(flow_settings)
        if r["resource"] == f"report:{record.id}"
    ]
    assert outcomes == [("export.fetched", "success"), ("export.fetched", "failure")]


async def test_a_download_cut_short_fails_the_job_and_stores_nothing(
    runtime: ReportRuntime, flow_settings: Settings, simulator: RunningSimulator
) -> None:
    runtime.flow.retry = RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1)
    simulator.faults.truncate_next_download(2, keep_fraction=0.5, content_length=False)
    try:
        record = await _run(runtime)
    finally:
        simulator.faults.clear()

    assert record.status is ReportStatus.FAILED
    assert record.error is not None
    assert "recordCount" in record.error
    await _assert_nothing_left(runtime, flow_settings, record.id)


async def test_an_unknown_policy_fails_before_anything_is_fetched(
    runtime: ReportRuntime, flow_settings: Settings
) -> None:
    record = await _run(runtime, policy="no-such-policy")

    assert record.status is ReportStatus.FAILED
    assert record.error == "there is no policy named 'no-such-policy' in the policy folder"
    assert not [r for r in await _audit(flow_settings) if r["action"] == "export.fetched"]


async def test_a_worker_killed_mid_render_fails_the_job_and_the_next_report_works(
    runtime: ReportRuntime, flow_settings: Settings
) -> None:
    queued = await runtime.jobs.request(period=PERIOD, policy="default", purpose=PURPOSE, requested_by="cli")
    running = asyncio.create_task(runtime.run_job(queued.id))
    for _ in range(600):
        current = await runtime.jobs.get(queued.id)
        assert current is not None
        if current.stage == "render" and runtime.worker.pids():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    for pid in runtime.worker.pids():
        os.kill(pid, signal.SIGKILL)
    record = await running

    assert record is not None
    assert record.status is ReportStatus.FAILED
    assert record.error is not None
    assert "renderer stopped unexpectedly" in record.error
    await _assert_nothing_left(runtime, flow_settings, record.id)
    again = await _run(runtime)  # the crashed pool was replaced
    assert again.status is ReportStatus.SUCCEEDED, again.error


def _foreign_ca(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


async def test_a_report_that_fails_its_own_verification_is_failed_and_not_stored(
    flow_settings: Settings, tmp_path: Path
) -> None:
    untrusting = dataclasses.replace(flow_settings, trust_anchors_file=_foreign_ca(tmp_path / "other.pem"))
    async with standalone_runtime(untrusting, actor=SYSTEM_CLI) as runtime:
        record = await _run(runtime)
        assert record.status is ReportStatus.FAILED
        assert record.error is not None
        assert record.error.startswith("the signed report failed its own verification (certificate")
        await _assert_nothing_left(runtime, untrusting, record.id)
    assert not [r for r in await _audit(untrusting) if r["action"] == "report.generated"]


async def test_the_worker_memory_cap_turns_a_report_too_large_for_it_into_a_failed_job(
    flow_settings: Settings,
) -> None:
    capped = dataclasses.replace(flow_settings, report_worker_memory_mb=200)  # below what a render needs
    async with standalone_runtime(capped, actor=SYSTEM_CLI) as runtime:
        record = await _run(runtime)
        assert record.status is ReportStatus.FAILED
        assert record.error in {
            (
                "the report needed more memory than the renderer may use "
                "(200 MiB, ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB)"
            ),
            (
                "the report renderer stopped unexpectedly (the worker process was killed or crashed, for "
                "example out of memory); nothing was stored"
            ),
        }
        await _assert_nothing_left(runtime, capped, record.id)


async def test_a_render_that_takes_too_long_is_stopped_and_its_job_failed(flow_settings: Settings) -> None:
    hurried = dataclasses.replace(flow_settings, report_timeout_seconds=0.05)  # far below one render
    async with standalone_runtime(hurried, actor=SYSTEM_CLI) as runtime:
        record = await _run(runtime)
        assert record.status is ReportStatus.FAILED
        assert record.error == (
            "the report took longer than 0.05 s to produce (ODEUS_COMPLIANCE_REPORT_TIMEOUT_SECONDS)"
        )
        assert runtime.worker.pids() == []  # the process was stopped, not left rendering
        await _assert_nothing_left(runtime, hurried, record.id)
        runtime.worker.timeout_seconds = 600.0
        again = await _run(runtime)  # a new worker process takes the next report
        assert again.status is ReportStatus.SUCCEEDED, again.error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_background_loop_runs_queued_jobs_and_gives_a_job_back_on_stop(
    flow_settings: Settings,
) -> None:
    async with standalone_runtime(flow_settings, actor=SYSTEM_CLI) as runtime:
        runtime.poll_seconds = 0.1
        queued = await runtime.jobs.request(
            period=PERIOD, policy="default", purpose=PURPOSE, requested_by="k"
        )
        await runtime.start()
        done: ReportRecord | None = None
        for _ in range(1200):
            done = await runtime.jobs.get(queued.id)
            if done is not None and done.status in {ReportStatus.SUCCEEDED, ReportStatus.FAILED}:
                break
            await asyncio.sleep(0.05)
        assert done is not None
        assert done.status is ReportStatus.SUCCEEDED, done.error

        second = await runtime.jobs.request(
            period=PERIOD, policy="default", purpose=PURPOSE, requested_by="k"
        )
        runtime.wake()
        for _ in range(1200):  # stop while the worker renders: the render is abandoned, the job given back
            current = await runtime.jobs.get(second.id)
            assert current is not None
            if current.stage == "render":
                break
            await asyncio.sleep(0.05)
        rendering = runtime.worker.pids()
        await runtime.stop()
        assert rendering
        assert all(not _alive(pid) for pid in rendering)
        given_back = await runtime.jobs.get(second.id)
        assert given_back is not None
        assert (given_back.status, given_back.stage) == (ReportStatus.QUEUED, "requeued after shutdown")
        await _assert_nothing_left(runtime, flow_settings, second.id)


async def test_a_later_report_shows_the_trend_from_the_figures_kept_with_earlier_ones(
    runtime: ReportRuntime, flow_settings: Settings
) -> None:
    september = ReportPeriod.month(2026, 9, "Europe/Berlin")
    earlier = await runtime.jobs.request(
        period=september, policy="default", purpose=PURPOSE, requested_by="cli"
    )
    first = await runtime.run_job(earlier.id)
    assert first is not None
    assert first.status is ReportStatus.SUCCEEDED, first.error
    kept = json.loads(await runtime.store.read(first.id, "figures.json"))

    october = await _run(runtime)
    assert october.status is ReportStatus.SUCCEEDED, october.error
    pdf = flow_settings.data_dir / "october.pdf"
    pdf.write_bytes(await runtime.store.read(october.id, "report.pdf"))
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "2026-09" in text  # the trend names the earlier month (nothing else in October's report does)
    assert f"{kept['messages_total']:,}" in text or str(kept["messages_total"]) in text
