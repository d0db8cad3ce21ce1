"""How each data class is deleted. Every function is idempotent: a pending receipt is finished by calling
it again with the same identifiers after a crash, whatever part was already done.

- raw-exports: leftover work folders of report jobs (``<data dir>/report-work/<id>``) are removed.
- datasets: the ``data.csv`` ciphertext and the full PDF that embeds it (``report-full.pdf``) are removed
  (files or chunk rows) and the report row says they are gone; the figures-only PDF stays with the report.
- reports: every artifact of the report (PDF, dataset, figures) and its row are removed.
- audit-payloads: the ``audit-data`` key of the epoch is destroyed and the entries' filter columns cleared
  (:func:`~odeus_compliance.audit.service.shred_epoch`): the leaves and proofs stay, the log verifies and
  shows them as pruned by policy. The texts sealed under that epoch beside the log (report purposes,
  schedule e-mail recipients: :mod:`odeus_compliance.keys.sealed_text`) lose their ciphertext too.
- key-epochs: the key material is destroyed (its row stays, with the destruction time).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.audit.service import shred_epoch
from odeus_compliance.db.models import Report, ReportArtifactChunk
from odeus_compliance.db.schedule_tables import (
    DELIVERY_EMAIL_COUNT,
    DELIVERY_EMAIL_SEALED,
    DELIVERY_EMAIL_SHREDDED,
    Schedule,
)
from odeus_compliance.keys.ring import destroy_key
from odeus_compliance.keys.sealed_text import SEALED_PREFIX
from odeus_compliance.reports.store import REPORT_ID, ArtifactStore, DatabaseChunks, FileChunks
from odeus_compliance.retention_rules import DataClass

__all__ = ["METHODS", "WHAT", "erase", "work_root"]

WORK_DIR: Final = "report-work"
"""Where the report flow keeps a job's working files (``reports.flow.WORK_DIR``)."""

METHODS: Final = {
    DataClass.RAW_EXPORTS: "delete-files",
    DataClass.DATASETS: "delete-ciphertext",
    DataClass.REPORTS: "delete-ciphertext-and-rows",
    DataClass.AUDIT_PAYLOADS: "crypto-shred",
    DataClass.KEY_EPOCHS: "crypto-shred",
}
"""How each class is deleted (NIST SP 800-88 terms: "crypto-shred" is cryptographic erase, a purge)."""

WHAT: Final = {
    DataClass.RAW_EXPORTS: "leftover work folders of interrupted report jobs",
    DataClass.DATASETS: "pseudonymised datasets (data.csv, report-full.pdf) of reports, by report id",
    DataClass.REPORTS: "reports (signed PDF, dataset, figures, archive row), by report id",
    DataClass.AUDIT_PAYLOADS: "audit record payloads, by audit-data key epoch",
    DataClass.KEY_EPOCHS: "data keys (report-data, pseudonymisation), by key id",
}


def work_root(data_dir: Path) -> Path:
    """The report flow's work folder."""
    return data_dir / WORK_DIR


PERSON_FILES = ("data.csv", "report-full.pdf")  # the files that hold per-person rows


async def _remove_dataset(
    store: ArtifactStore, sessions: async_sessionmaker[AsyncSession], report_id: str
) -> None:
    backend = store.backend
    if isinstance(backend, FileChunks):
        for name in PERSON_FILES:
            await asyncio.to_thread(backend.path(report_id, name).unlink, missing_ok=True)
    elif isinstance(backend, DatabaseChunks):
        async with sessions() as session, session.begin():
            await session.execute(
                delete(ReportArtifactChunk).where(
                    ReportArtifactChunk.report_id == report_id, ReportArtifactChunk.name.in_(PERSON_FILES)
                )
            )
    else:  # pragma: no cover - the two backends the store has
        msg = f"unknown artifact backend {type(backend).__name__}"
        raise TypeError(msg)
    async with sessions() as session, session.begin():
        await session.execute(update(Report).where(Report.id == report_id).values(has_dataset=False))


async def _scrub_sealed(sessions: async_sessionmaker[AsyncSession], key_id: str) -> None:
    """Remove the ciphertext of texts sealed under the shredded epoch ``key_id``: a report's purpose keeps
    only the key's name (it reads as shredded), a schedule's delivery says its recipients were shredded."""
    prefix = f"{SEALED_PREFIX}{key_id}:"
    async with sessions() as session, session.begin():
        await session.execute(
            update(Report).where(Report.purpose.startswith(prefix, autoescape=True)).values(purpose=prefix)
        )
        rows = (
            await session.execute(
                select(Schedule.id, Schedule.delivery).where(
                    Schedule.delivery.contains(prefix, autoescape=True)
                )
            )
        ).all()
        for schedule_id, stored in rows:
            delivery = json.loads(stored)
            if not str(delivery.get(DELIVERY_EMAIL_SEALED, "")).startswith(prefix):
                continue
            delivery.pop(DELIVERY_EMAIL_SEALED)
            delivery.pop(DELIVERY_EMAIL_COUNT, None)
            delivery[DELIVERY_EMAIL_SHREDDED] = True
            await session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id)
                .values(delivery=json.dumps(delivery, sort_keys=True))
            )


async def erase(
    data_class: DataClass,
    items: Sequence[str],
    *,
    sessions: async_sessionmaker[AsyncSession],
    store: ArtifactStore,
    data_dir: Path,
) -> None:
    """Delete ``items`` of ``data_class`` (see the module docstring); safe to repeat."""
    for item in items:
        if data_class is DataClass.RAW_EXPORTS:
            folder = work_root(data_dir) / item
            if REPORT_ID.match(item):  # only names the report flow makes: never a path elsewhere
                await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
        elif data_class is DataClass.DATASETS:
            await _remove_dataset(store, sessions, item)
        elif data_class is DataClass.REPORTS:
            await store.delete(item)
            async with sessions() as session, session.begin():
                await session.execute(delete(Report).where(Report.id == item))
        elif data_class is DataClass.AUDIT_PAYLOADS:
            async with sessions() as session:
                await shred_epoch(session=session, key_id=item)
            await _scrub_sealed(sessions, item)
        else:
            async with sessions() as session:
                await destroy_key(session=session, key_id=item)
                await session.commit()
