"""The report worker: content, render, sign and self-verification in a separate process.

Why a process: WeasyPrint holds the GIL and much memory while it lays out a report; in the service's own
process it would stall every request. The worker is a ``ProcessPoolExecutor`` with one process, started
with the ``spawn`` method (a fresh interpreter: no copied event loop, engine or keys of the parent) as every
worker process of the service is (:mod:`odeus_compliance.core.workerprocs`): its address space is capped
(``RLIMIT_AS``, ``ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB``, default 2048 MiB), so a report that would need
more fails alone instead of starving the machine, it runs with the system allocator and two malloc arenas
so that the cap measures memory in use, and it exits when the service dies (even by ``kill -9``).

Failures become reasons safe to show (:class:`WorkerFailed`): a ``MemoryError`` says the limit was hit; a
worker that dies (killed, out of memory in native code, crashed) breaks the pool, which is then replaced,
and the job fails with "the report renderer stopped unexpectedly". Messages of the render and signing
modules name no data (their contract), so they are passed on.

What crosses the process boundary (the pool's private pipe): paths (the pseudonymised dataset file in the
data dir, sealed, and the template folder), the key that opens the dataset (the job's work key, held only
in memory), the policy file's text, plain facts and the settings; the signer is loaded inside the worker
from them (the demo signing key opens under the master key they hold), and the signed PDF comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from odeus_compliance import warning_filters

# The worker process imports this module first (spawn): filter before pyHanko is imported below.
warning_filters.install()

from odeus_compliance.core.workerprocs import start_worker, worker_environment
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.policy.sealed import read_sealed
from odeus_compliance.reports.content import ContentError, ReportContent, ReportMeta, build_content
from odeus_compliance.reports.figures import DatasetError, ReportFigures
from odeus_compliance.reports.manifest import MANIFEST_NAME, build_report_manifest
from odeus_compliance.reports.render import (
    AnyAttachment,
    Attachment,
    DeflatedAttachment,
    RenderError,
    render_pdf,
)
from odeus_compliance.reports.signing import ReportSigner, SigningError, load_signer, sign_pdf
from odeus_compliance.reports.verify import trust_anchors, verify_pdf
from odeus_compliance.settings import Settings

__all__ = ["DeflatedDataset", "RenderOutcome", "RenderTask", "ReportWorker", "WorkerFailed", "produce_report"]

_CRASHED: Final = (
    "the report renderer stopped unexpectedly (the worker process was killed or crashed, for example out "
    "of memory); nothing was stored"
)


class WorkerFailed(OdeusComplianceError):
    """The worker could not produce the report; the message is a reason safe to show."""


@dataclass(frozen=True, slots=True)
class DeflatedDataset:
    """The dataset's deflated copy, made by the policy engine's sink while it wrote the dataset, and the
    facts of the plain file the PDF needs (its size, MD5 and SHA-256)."""

    path: Path
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RenderTask:
    """Everything the worker needs for one report (picklable; holds no long-lived key: only the job's own
    ``work_key``, which opens the sealed work copies)."""

    report_id: str
    dataset_path: Path
    attach_dataset: bool
    transformation_manifest: Mapping[str, Any]
    policy_text: str
    policy_file_name: str
    meta: ReportMeta
    history: Sequence[tuple[str, Mapping[str, Any]]]
    upstream_export: Mapping[str, Any]
    template: Mapping[str, str]
    software: Mapping[str, str]
    settings: Settings = field(repr=False)
    dataset_deflated: DeflatedDataset | None = None
    """When given (and it describes ``dataset_path``), the dataset is embedded from it as it is."""
    work_key: bytes | None = field(default=None, repr=False)
    """The key the dataset and its deflated copy are sealed under (:mod:`~odeus_compliance.policy.sealed`);
    ``None``: plain files (tests, tools)."""


def _work_copy(task: RenderTask, path: Path) -> bytes:
    """A work copy's plain bytes (opened under the job's key when it is sealed)."""
    return path.read_bytes() if task.work_key is None else read_sealed(path, task.work_key)


@dataclass(frozen=True, slots=True)
class RenderOutcome:
    """The signed figures-only PDF (every role may read it), the full one where the policy releases
    per-person rows, the report's figures (JSON) and the result of verifying the PDFs as a reader would."""

    pdf: bytes
    figures: dict[str, Any]
    valid: bool
    verification: dict[str, Any]
    verification_text: str
    full_pdf: bytes | None = None
    """With per-person rows (the dataset, the person table) where the policy releases them: officers only."""


def produce_report(task: RenderTask) -> RenderOutcome:
    """Build the content, render, sign and verify (runs in the worker; also callable in process)."""
    from odeus_compliance.policy.loader import parse_policy  # noqa: PLC0415 - worker-side import

    try:
        policy = parse_policy(task.policy_text, source=task.policy_file_name)
        history = [(label, ReportFigures.from_json(data)) for label, data in task.history]
        dataset = _work_copy(task, task.dataset_path)  # in memory only: never written in clear
        signer = load_signer(task.settings)
        meta = replace(task.meta, demo_signature=signer.demo)  # the cover says when it is the demo one
        figures_only = build_content(
            dataset_csv=dataset,
            manifest=task.transformation_manifest,
            policy=policy,
            meta=meta,
            history=history,
            figures_only=True,
        )
        pdf = _signed(
            task,
            figures_only,
            dataset,
            signer,
            policy_name=f"{policy.name} {policy.version}",
            with_dataset=False,
        )
        full = None
        if task.attach_dataset or policy.report.person_rows:
            content = build_content(
                dataset_csv=dataset,
                manifest=task.transformation_manifest,
                policy=policy,
                meta=meta,
                history=history,
            )
            full = _signed(
                task,
                content,
                dataset,
                signer,
                policy_name=f"{policy.name} {policy.version}",
                with_dataset=True,
            )
    except MemoryError:
        raise WorkerFailed(
            f"the report needed more memory than the renderer may use "
            f"({task.settings.report_worker_memory_mb} MiB, ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB)"
        ) from None
    except (ContentError, DatasetError, RenderError, SigningError, OdeusComplianceError) as exc:
        raise WorkerFailed(f"the report could not be produced: {exc}") from None
    anchors = trust_anchors(task.settings)
    result = verify_pdf(pdf, anchors=anchors)
    full_valid = full is None or verify_pdf(full, anchors=anchors).valid
    return RenderOutcome(
        pdf=pdf,
        figures=figures_only.figures.to_json(),
        valid=result.valid and full_valid,
        verification=result.to_json(),
        verification_text=result.render_text(),
        full_pdf=full,
    )


def _signed(
    task: RenderTask,
    content: ReportContent,
    dataset: bytes,
    signer: ReportSigner,
    *,
    policy_name: str,
    with_dataset: bool,
) -> bytes:
    """One variant of the report, rendered and signed: the figures-only one carries the policy and the
    manifest; the full one also the per-person dataset (when the policy releases it)."""
    attachments: list[AnyAttachment] = []
    if with_dataset and task.attach_dataset:
        attachments.append(_dataset_attachment(task, dataset))
    attachments.append(
        Attachment(
            name="policy.toml",
            data=task.policy_text.encode("utf-8"),
            media_type="application/toml",
            description=f"The policy applied ({policy_name})",
        )
    )
    meta = task.meta
    manifest = build_report_manifest(
        report_id=task.report_id,
        period={
            "from": meta.period_from.isoformat(),
            "to": meta.period_to.isoformat(),
            "timezone": meta.timezone,
            "partial": meta.partial,
            **({} if meta.data_until is None else {"data_until": meta.data_until.isoformat()}),
        },
        policy={"name": meta.policy_name, "version": meta.policy_version, "hash": meta.policy_hash},
        upstream_export=task.upstream_export,
        transformation_manifest=task.transformation_manifest,
        attachments=attachments,
        template=task.template,
        software=task.software,
        audit_checkpoint=meta.audit_checkpoint,
        generated_at=meta.generated_at,
    )
    attachments.append(
        Attachment(
            name=MANIFEST_NAME,
            data=manifest,
            media_type="application/json",
            description="Hashes of the export, the policy and every attachment; the transformation",
        )
    )
    pdf = render_pdf(content, template_dir=task.settings.template_dir, attachments=attachments)
    return sign_pdf(pdf, signer, tsa_url=task.settings.tsa_url)


_DATASET_DESCRIPTION: Final = "The pseudonymised dataset the report was computed from"


def _dataset_attachment(task: RenderTask, dataset: bytes) -> AnyAttachment:
    """``data.csv``: from its deflated copy when that describes the dataset the content was computed from
    (same SHA-256 as the transformation manifest, same size), else from the dataset itself."""
    packed = task.dataset_deflated
    output = task.transformation_manifest.get("output", {})
    if packed is not None and packed.sha256 == output.get("sha256") and packed.size == len(dataset):
        return DeflatedAttachment(
            name="data.csv",
            deflated=_work_copy(task, packed.path),
            size=packed.size,
            md5=packed.md5,
            sha256=packed.sha256,
            media_type="text/csv",
            description=_DATASET_DESCRIPTION,
        )
    return Attachment(
        name="data.csv",
        data=dataset,
        media_type="text/csv",
        description=_DATASET_DESCRIPTION,
    )


def _run_checked(task: RenderTask) -> RenderOutcome:
    """:func:`produce_report`, with any unexpected exception turned into a reason that names only its type
    (an exception message from a library could quote data)."""
    try:
        return produce_report(task)
    except WorkerFailed:
        raise
    except MemoryError:
        raise WorkerFailed(
            "the report needed more memory than the renderer may use "
            f"({task.settings.report_worker_memory_mb} MiB, ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the reason must be safe to show
        raise WorkerFailed(f"the report could not be produced (unexpected {type(exc).__name__})") from None


def _ready() -> bool:
    """Nothing to do: the worker's imports happened when it started."""
    return True


class ReportWorker:
    """One worker process (made on first use, replaced after a crash). ``close()`` stops it."""

    def __init__(self, *, memory_mb: int, timeout_seconds: float = 600.0) -> None:
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(self.memory_mb,),
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker process now if it is not running (a report's pull hides its start-up of about
        a second); a failure here shows up, and is handled, at the next :meth:`run`."""
        with contextlib.suppress(Exception), worker_environment():
            self._executor().submit(_ready)

    async def run(self, task: RenderTask) -> RenderOutcome:
        """Produce the report in the worker; :class:`WorkerFailed` with a safe reason on any failure."""
        try:
            with worker_environment():  # the pool starts its process on the first submit
                future = self._executor().submit(_run_checked, task)
            async with asyncio.timeout(self.timeout_seconds):
                return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._discard()
            raise WorkerFailed(_CRASHED) from None
        except TimeoutError:
            # a render that hangs would otherwise renew its job's lease for ever: stop the process instead
            await self.close()
            msg = (
                f"the report took longer than {self.timeout_seconds:g} s to produce "
                "(ODEUS_COMPLIANCE_REPORT_TIMEOUT_SECONDS)"
            )
            raise WorkerFailed(msg) from None

    def pids(self) -> list[int]:
        """The worker's process ids (for tests and diagnostics)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return list(processes)

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the worker process now; a render in progress is abandoned (its job went back to the queue
        when the runtime stopped, so waiting for it would only delay the shutdown)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        await asyncio.to_thread(lambda: [process.join(10) for process in processes])
