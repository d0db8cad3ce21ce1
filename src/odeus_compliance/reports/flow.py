"""The flow of "generate a report": one claimed job from the upstream pull to the stored, signed PDF.

Steps (each renews the job's lease and says where it is):

1. ``policy``: load the requested policy file (its text is kept: the PDF embeds exactly what was applied).
2. ``audit``: write ``export.fetched`` (with the requester's purpose) *before* the pull; if the record
   cannot be written, nothing is fetched (fail closed). A pull that then fails is recorded as a second
   ``export.fetched`` with outcome ``failure``, so the log shows the attempt and how it ended.
3. ``fetch``: stream the users export of the period from Odeus (:class:`OdeusClient`) straight into the
   policy engine (:func:`apply_policy_async`); raw rows stay in memory one batch at a time and are never
   written. The engine's pseudonymised output goes to a work folder in the data dir, sealed under a key
   of this job's that exists only in memory (:mod:`~odeus_compliance.policy.sealed`: a ``kill -9`` leaves
   ciphertext, never per-person rows in clear), and is removed at the end, whatever happens. The raw
   export's SHA-256 is taken as it arrives (:mod:`.rawdigest`).
4. ``render``: content, PDF/A-3b with attachments, PAdES signature and verification run in the worker
   process (:mod:`.worker`); a report that fails its own verification fails the job.
5. ``store``: the signed PDF, the dataset (when the policy gives per-person rows) and the figures are
   encrypted into the artifact store.
6. ``report.generated`` is recorded, and only then is the job marked succeeded (which makes it
   downloadable). A failure at any step removes what was stored and fails the job with a reason safe to
   show; nothing half-made stays behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.exceptions import InvalidTag

from odeus_compliance import __version__
from odeus_compliance.audit.appender import Actor, AuditAppender, AuditWriteError
from odeus_compliance.audit.records import Action, Outcome
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.models import utcnow
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.ring import KeyKind, KeyRingError, epoch_of
from odeus_compliance.logging_setup import log_event
from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.columnar import CellRejected
from odeus_compliance.policy.crypto import CryptoError
from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.engine import apply_policy_async
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.leakscan import LeakFound
from odeus_compliance.policy.loader import parse_policy
from odeus_compliance.policy.model import Policy
from odeus_compliance.policy.operations import OperationError
from odeus_compliance.policy.problems import PolicyError
from odeus_compliance.policy.rows import UnknownColumnError
from odeus_compliance.policy.sealed import SealedFileError, new_work_key, read_sealed
from odeus_compliance.policy.service import POLICY_NAME
from odeus_compliance.reports.content import ReportMeta
from odeus_compliance.reports.jobs import LeaseLost, ReportJobs, ReportPeriod, ReportRecord, ReportStatus
from odeus_compliance.reports.overlaps import overlapping_report_ids
from odeus_compliance.reports.pacing import FetchLimits, ThroughputTransport, fetch_deadline
from odeus_compliance.reports.purposes import open_purpose
from odeus_compliance.reports.rawdigest import DigestingTransport
from odeus_compliance.reports.store import ArtifactStore, ArtifactStoreError
from odeus_compliance.reports.versions import small_changes
from odeus_compliance.reports.worker import DeflatedDataset, RenderTask, ReportWorker, WorkerFailed
from odeus_compliance.retention_rules import retention_dates
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.errors import UpstreamError
from odeus_compliance.upstream.request import ExportRequest, PeriodEnd

__all__ = [
    "WORK_DIR",
    "ReportFailed",
    "ReportFlow",
    "export_request_for",
    "sweep_work_dirs",
    "template_facts",
]

_log = logging.getLogger(__name__)
WORK_DIR: Final = "report-work"
DEFLATED_SUFFIX: Final = ".deflate"  # the dataset's zlib stream beside it in the work folder
_ENGINE_FAILURES: Final = (
    LeakFound,
    DisclosureError,
    CellRejected,
    OperationError,
    UnknownColumnError,
    CryptoError,
)


class ReportFailed(OdeusComplianceError):
    """The job failed; the message is the reason stored with it (safe to show)."""


def export_request_for(period: ReportPeriod) -> ExportRequest:
    """The users export of the report's period: Odeus ends are inclusive to the millisecond."""
    last = period.end - timedelta(milliseconds=1)
    return ExportRequest(
        ExportType.USERS,
        PeriodEnd.from_instant(period.start, period.timezone),
        PeriodEnd.from_instant(last, period.timezone),
    )


def _remove_work(work: Path) -> None:
    """Remove one attempt's work folder, and the report's folder once no attempt is left in it."""
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work.parent.rmdir()


async def sweep_work_dirs(jobs: ReportJobs, data_dir: Path) -> int:
    """Remove work folders no running attempt owns (left by a killed process); how many were removed.

    Layout: ``<data dir>/report-work/<report id>/<attempt>/``.
    """
    root = data_dir / WORK_DIR
    if not root.is_dir():
        return 0
    removed = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        record = await jobs.get(folder.name)
        for attempt in sorted(p for p in folder.iterdir() if p.is_dir()):
            alive = (
                record is not None
                and record.status is ReportStatus.RUNNING
                and str(record.attempt) == attempt.name
            )
            if not alive:
                await asyncio.to_thread(_remove_work, attempt)
                removed += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
    return removed


def template_facts(template_dir: Path) -> dict[str, str]:
    """The templates' identity for the manifest: a SHA-256 over every file's relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in template_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(template_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"name": "report_templates", "sha256": digest.hexdigest()}


@dataclass(frozen=True, slots=True)
class _LoadedPolicy:
    policy: Policy
    text: str
    file_name: str
    hash: str


@dataclass(slots=True)
class _Progress:
    stage: str = "starting"
    progress: float = 0.0
    since: float = field(default_factory=time.monotonic)
    """When the stage began (monotonic), for the stage-duration metric."""


class ReportFlow:
    """Runs claimed report jobs. One per process; built by the runtime (or a test) from its parts."""

    def __init__(
        self,
        *,
        settings: Settings,
        jobs: ReportJobs,
        store: ArtifactStore,
        worker: ReportWorker,
        appender: AuditAppender,
        actor: Actor,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.store = store
        self.worker = worker
        self.appender = appender
        self.actor = actor
        self._transport = transport
        self.retry = retry or RetryPolicy()
        """The upstream client's retry budget (the client's default; tests shorten it)."""
        self.limits = FetchLimits.from_settings(settings)
        """The pull's deadline and minimum throughput (:mod:`.pacing`)."""
        self.metrics = metrics
        """Job and stage durations, upstream retries (the app's; ``None``: not counted)."""
        self._attempts: dict[str, asyncio.Task[None]] = {}  # report id -> the attempt this process runs
        self._stopped: set[str] = set()  # attempts stopped because the job was cancelled or taken over

    def interrupt(self, report_id: str) -> bool:
        """Stop this process's attempt at ``report_id`` now (the job was cancelled or taken over): it ends
        without giving the job back, its stored files and work folder removed. ``False``: none runs here."""
        attempt = self._attempts.get(report_id)
        if attempt is None or attempt.done():
            return False
        self._stopped.add(report_id)
        attempt.cancel()
        return True

    async def run(self, record: ReportRecord, owner: str) -> ReportRecord:
        """Run the claimed job ``record`` to its end (succeeded or failed) and return it as stored.

        :class:`LeaseLost` propagates (another runner has the job now, or it was cancelled: the attempt is
        stopped at once, by :meth:`interrupt` or at the next lease renewal); cancelling ``run`` (shutdown)
        puts the job back in the queue (``release``) so another run resumes it.
        """
        state = _Progress()
        started = state.since
        # <id>/<attempt>: a runner that lost the job never touches the files of the one that took it over
        work = self.settings.data_dir / WORK_DIR / record.id / str(record.attempt)
        attempt = asyncio.create_task(self._attempt(record, owner, state, work), name=f"report-{record.id}")
        self._attempts[record.id] = attempt
        heartbeat = asyncio.create_task(self._heartbeat(record.id, owner, state), name="report-lease")
        try:
            await attempt  # cancelling run (shutdown) cancels the attempt too
        except asyncio.CancelledError:
            self._measure(state, started, "interrupted")
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this runner stops: the attempt gave the job back
            await self._discard_if_ended(record.id)  # interrupted: cancelled or taken over
            raise LeaseLost(record.id) from None
        except LeaseLost:
            self._measure(state, started, "interrupted")
            await self._discard_if_ended(record.id)
            raise
        finally:
            self._attempts.pop(record.id, None)
            self._stopped.discard(record.id)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
            await asyncio.to_thread(_remove_work, work)
        final = await self.jobs.get(record.id)
        assert final is not None
        self._measure(state, started, final.status.value)
        return final

    def _measure(self, state: _Progress, started: float, outcome: str) -> None:
        """Count the ended job and the duration of the stage it ended in."""
        if self.metrics is not None:
            now = time.monotonic()
            self.metrics.report_stage(state.stage, outcome, now - state.since)
            self.metrics.report_job(outcome, now - started)

    async def _attempt(self, record: ReportRecord, owner: str, state: _Progress, work: Path) -> None:
        try:
            await self._produce(record, owner, state, work)
        except LeaseLost:
            raise
        except asyncio.CancelledError:
            if record.id not in self._stopped:  # shutting down: give the job back
                with contextlib.suppress(Exception):  # LeaseLost: not ours any more, so nothing to give back
                    await asyncio.shield(self._give_back(record, owner, work))
            raise
        except ReportFailed as failure:
            await self._fail(record, owner, work, str(failure))
        except Exception as exc:  # noqa: BLE001 - every failure ends the job with a reason safe to show
            await self._fail(record, owner, work, _reason_for(exc))

    async def _discard_if_ended(self, report_id: str) -> None:
        """After losing the job: remove what this attempt stored if the job ended failed (cancelled), since
        no runner will use it; a job another runner took over (or finished) keeps its files."""
        with contextlib.suppress(Exception):
            final = await self.jobs.get(report_id)
            if final is not None and final.status is ReportStatus.FAILED:
                await self.store.delete(report_id)

    async def _fail(self, record: ReportRecord, owner: str, work: Path, reason: str) -> None:
        # still ours? (a runner that lost the job must not delete what the new runner stored)
        await self.jobs.progress(record.id, owner, stage="failing", progress=1.0)
        await self._cleanup(record.id, work, stored=True)
        log_event(_log, logging.WARNING, "report.failed", report_id=record.id, reason=reason)
        await self.jobs.fail(record.id, owner, reason=reason)

    async def _give_back(self, record: ReportRecord, owner: str, work: Path) -> None:
        """Shutting down mid-job: remove what this attempt stored and put the job back in the queue."""
        await self.jobs.progress(record.id, owner, stage="stopping", progress=0.0)  # still ours?
        await self._cleanup(record.id, work, stored=True)
        await self.jobs.release(record.id, owner)

    async def _cleanup(self, report_id: str, work: Path, *, stored: bool) -> None:
        if stored:
            with contextlib.suppress(ArtifactStoreError, OSError):
                await self.store.delete(report_id)
        await asyncio.to_thread(_remove_work, work)

    async def _heartbeat(self, report_id: str, owner: str, state: _Progress) -> None:
        """Renew the lease while a long step (the pull, the render) runs; stop the attempt when the job is
        no longer ours (cancelled by an officer, perhaps in another process, or taken over)."""
        interval = max(0.2, self.jobs.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.jobs.progress(report_id, owner, stage=state.stage, progress=state.progress)
            except LeaseLost:
                self.interrupt(report_id)
                return
            except Exception:  # noqa: BLE001, S112 - a database outage: the next renewal tries again
                continue

    async def _step(
        self, record: ReportRecord, owner: str, state: _Progress, stage: str, progress: float, **extra: Any
    ) -> None:
        now = time.monotonic()
        if self.metrics is not None and state.stage != "starting":
            self.metrics.report_stage(state.stage, "ok", now - state.since)
        state.stage, state.progress, state.since = stage, progress, now
        await self.jobs.progress(record.id, owner, stage=stage, progress=progress, **extra)

    async def _opened(self, record: ReportRecord) -> ReportRecord:
        """The job with its purpose opened (stored sealed under an audit-data key epoch: :mod:`.purposes`)."""
        purpose = await open_purpose(
            self.appender.kek, self.jobs.sessions, report_id=record.id, stored=record.purpose
        )
        if purpose is None:
            raise ReportFailed("the request's purpose was shredded by retention; request the report again")
        return dataclasses.replace(record, purpose=purpose)

    async def _produce(self, record: ReportRecord, owner: str, state: _Progress, work: Path) -> None:
        await self._step(record, owner, state, "policy", 0.02)
        record = await self._opened(record)
        loaded = await asyncio.to_thread(self._load_policy, record.policy_name)
        await self._step(record, owner, state, "audit", 0.05, policy_hash=loaded.hash)
        details = self._details(record, loaded)
        try:
            await self.appender.append(
                actor=self.actor,
                action=Action.EXPORT_FETCHED,
                resource=f"report:{record.id}",
                purpose=record.purpose,
                details=details,
            )
        except (AuditWriteError, KeyRingError) as exc:
            raise ReportFailed(
                "the audit record of the export could not be written, so nothing was fetched"
            ) from exc
        await self._step(record, owner, state, "fetch", 0.1)
        self.worker.warm()  # the renderer starts (imports WeasyPrint, pyHanko) while the export is pulled
        work.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (work.parent, work):
            folder.mkdir(exist_ok=True, mode=0o700)
        dataset = work / "dataset.csv"
        work_key = new_work_key()  # seals the work copies; never written anywhere
        # a period still running (asked for explicitly) is reported as partial: data up to this pull
        fetched_at = utcnow()
        data_until = fetched_at if fetched_at < record.period.end else None
        try:
            manifest, rows, upstream, deflated = await self._pull(record, loaded, dataset, work, work_key)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.appender.append(
                    actor=self.actor,
                    action=Action.EXPORT_FETCHED,
                    resource=f"report:{record.id}",
                    purpose=record.purpose,
                    outcome=Outcome.FAILURE,
                    details={**details, "error_code": type(exc).__name__[:64]},
                )
            raise
        checkpoint = await self.appender.checkpoint()
        await self._step(record, owner, state, "render", 0.4)
        history = await self._history(record)
        attach = manifest["output"]["kind"] == "rows"
        generated_at = utcnow()
        task = RenderTask(
            report_id=record.id,
            dataset_path=dataset,
            attach_dataset=attach,
            transformation_manifest=manifest,
            policy_text=loaded.text,
            policy_file_name=loaded.file_name,
            meta=ReportMeta(
                report_id=record.id,
                workspace="Odeus workspace",
                period_from=record.period.local_start,
                period_to=record.period.local_end,
                timezone=record.period.timezone,
                policy_name=loaded.policy.name,
                policy_version=loaded.policy.version,
                policy_hash=loaded.hash,
                generated_at=generated_at,
                audit_checkpoint=checkpoint[1] if checkpoint is not None else None,
                retention=retention_dates(self.settings, generated_at),
                software_version=__version__,
                data_until=data_until,
            ),
            history=history,
            upstream_export={"type": ExportType.USERS.value, "rows": rows, **upstream},
            template=await asyncio.to_thread(template_facts, self.settings.template_dir),
            software={"name": "odeus-compliance", "version": __version__},
            settings=self.settings,
            dataset_deflated=deflated,
            work_key=work_key,
        )
        outcome = await self.worker.run(task)
        if not outcome.valid:
            failed = [c["name"] for c in outcome.verification.get("checks", []) if not c.get("ok")]
            raise ReportFailed(
                "the signed report failed its own verification ("
                + (", ".join(str(name) for name in failed) or "unknown check")
                + "); nothing was stored"
            )
        await self._refuse_small_changes(record, outcome.figures, loaded.policy.disclosure.min_group_size)
        await self._step(record, owner, state, "store", 0.9)
        stored = await self.store.put(record.id, "report.pdf", outcome.pdf)
        if attach:
            plain = await asyncio.to_thread(read_sealed, dataset, work_key)
            await self.store.put(record.id, "data.csv", plain)
        if outcome.full_pdf is not None:
            await self.store.put(record.id, "report-full.pdf", outcome.full_pdf)
        figures = {
            **outcome.figures,
            "partial": data_until is not None,
            "data_until": None if data_until is None else data_until.isoformat(),
        }
        await self.store.put(record.id, "figures.json", json.dumps(figures, sort_keys=True).encode())
        try:
            await self.appender.append(
                actor=self.actor,
                action=Action.REPORT_GENERATED,
                resource=f"report:{record.id}",
                purpose=record.purpose,
                details={**details, "sha256": stored.sha256, "row_count": rows, "valid": True},
            )
        except (AuditWriteError, KeyRingError) as exc:
            raise ReportFailed(
                "the audit record of the finished report could not be written, so it was discarded"
            ) from exc
        await self.jobs.succeed(
            record.id,
            owner,
            pdf_sha256=stored.sha256,
            has_dataset=attach,
            artifact_key_id=stored.key_id,
            data_until=data_until,
        )
        log_event(_log, logging.INFO, "report.generated", report_id=record.id, count=rows)

    def _load_policy(self, name: str) -> _LoadedPolicy:
        path = self.settings.policy_dir / f"{name}.toml"
        if not POLICY_NAME.match(name) or not path.is_file():
            raise ReportFailed(f"there is no policy named {name!r} in the policy folder")
        text = path.read_text("utf-8")
        try:
            policy = parse_policy(text, source=path.name, expected_name=None)
        except PolicyError as exc:
            raise ReportFailed(
                f"the policy {name!r} has {len(exc.problems)} problem(s); run 'odeus-compliance policy check'"
            ) from None
        if not policy.covers(ExportType.USERS):
            raise ReportFailed(f"the policy {name!r} has no rules for the users export")
        return _LoadedPolicy(policy, text, path.name, policy_hash(policy))

    @staticmethod
    def _details(record: ReportRecord, loaded: _LoadedPolicy) -> dict[str, str | int | bool]:
        return {
            "report_id": record.id,
            "job_id": record.id,
            "export_type": ExportType.USERS.value,
            "period_from": record.period.start.isoformat(),
            "period_to": record.period.end.isoformat(),
            "timezone": record.period.timezone,
            "policy": loaded.policy.name,
            "policy_version": loaded.policy.version,
            "policy_hash": loaded.hash,
        }

    async def _pull(
        self, record: ReportRecord, loaded: _LoadedPolicy, dataset: Path, work: Path, work_key: bytes
    ) -> tuple[dict[str, Any], int, dict[str, Any], DeflatedDataset]:
        settings = self.settings
        api_key = settings.odeus_api_key
        if api_key is None:
            raise ReportFailed("ODEUS_API_KEY is not configured, so no export can be fetched")
        config = OdeusClientConfig(
            api_key=api_key.reveal(),
            base_url=settings.odeus_base_url,
            download_hosts=settings.download_hosts,
            retry=self.retry,
            max_answer_bytes=settings.upstream_max_answer_mb << 20,
        )
        transport = DigestingTransport(ThroughputTransport(self._transport, self.limits))
        token_key = await self.store.ring.current_data_key(KeyKind.PSEUDONYMISATION)
        keys = engine_keys(
            settings.require_master_key(),
            loaded.policy,
            epoch=epoch_of(token_key.key_id),
            root_key=token_key.key,
        )
        # the dataset is deflated as the engine writes it and the PDF embeds that stream as it is, so the
        # render stage does not grow with the dataset (~0.2 s of a ~3 s fetch at 100,000 users)
        packed = dataset.with_name(dataset.name + DEFLATED_SUFFIX)
        sink = CsvSink(dataset, deflated=packed, key=work_key)
        try:
            async with (
                fetch_deadline(self.limits),
                httpx.AsyncClient(transport=transport, follow_redirects=False) as http,
                OdeusClient(config, http=http, observer=self.metrics) as client,
                client.open_export(export_request_for(record.period)) as export,
            ):
                result = await apply_policy_async(
                    loaded.policy,
                    ExportType.USERS,
                    export.batches(),
                    keys=keys,
                    sink=sink,
                    spool_dir=work,
                )
            sink.commit()
        except BaseException:
            sink.abort()  # also when the export failed before the engine began
            raise
        deflated = DeflatedDataset(path=packed, size=sink.bytes, md5=sink.md5 or "", sha256=sink.sha256)
        return result.manifest, result.rows_in, transport.export_facts(), deflated

    async def _refuse_small_changes(self, record: ReportRecord, figures: dict[str, Any], k: int) -> None:
        """Refuse a report whose published cells differ by 1 to k-1 people from an earlier version's or from
        any other report of an overlapping period (``reports/overlaps.py``)."""
        earlier: list[dict[str, Any]] = []
        previous, seen = record.supersedes, set()
        while previous is not None and previous not in seen:
            seen.add(previous)
            older = await self.jobs.get(previous)
            if older is None:
                break
            # a failed, shredded or removed version publishes nothing any more
            with contextlib.suppress(ArtifactStoreError, ValueError):
                earlier.append(json.loads(await self.store.read(older.id, "figures.json")))
            previous = older.supersedes
        # the same people under another zone, policy or an overlapping range subtract just the same
        for other in await overlapping_report_ids(self.jobs.sessions, record.period, exclude=record.id):
            if other not in seen:
                seen.add(other)
                with contextlib.suppress(ArtifactStoreError, ValueError):
                    earlier.append(json.loads(await self.store.read(other, "figures.json")))
        tables = small_changes(figures, earlier, k)
        if tables:
            raise ReportFailed(
                f"this report differs from an earlier one of the same or an overlapping period by fewer than "
                f"{k} people in the {', '.join(tables)} figures; publishing both would single them out, so "
                "nothing was stored"
            )

    async def _history(self, record: ReportRecord) -> list[tuple[str, dict[str, Any]]]:
        """Figures of earlier reports (same policy and zone) for the trend; unreadable ones are skipped."""
        out = []
        for earlier in await self.jobs.history(record):
            try:
                data = json.loads(await self.store.read(earlier.id, "figures.json"))
            except (ArtifactStoreError, ValueError):
                continue  # shredded or removed by retention: the trend shows what is still kept
            out.append((earlier.period.label, data))
        return out


def _reason_for(exc: BaseException) -> str:  # noqa: PLR0911 - one answer per kind of failure
    """A failure reason safe to show: our own error types carry messages written for that; others only
    their type name (a library's message could quote data)."""
    if isinstance(exc, UpstreamError):
        return f"the Odeus export could not be fetched: {exc.message}"
    if isinstance(exc, WorkerFailed):
        return str(exc)
    if isinstance(exc, _ENGINE_FAILURES):
        return f"the policy engine refused the export: {exc}"
    if isinstance(exc, (InvalidTag, EOFError)):
        return "the policy engine's encrypted spool could not be read back"
    if isinstance(exc, SealedFileError):
        return "the job's sealed work copy could not be read back"
    if isinstance(exc, (AuditWriteError, KeyRingError)):
        return f"the audit log or key ring is unavailable: {exc}"
    if isinstance(exc, ArtifactStoreError):
        return f"the report could not be stored: {exc}"
    if isinstance(exc, OSError):
        return f"a file in the data dir could not be read or written ({type(exc).__name__})"
    if isinstance(exc, OdeusComplianceError):
        return str(exc)
    return f"unexpected failure ({type(exc).__name__})"
