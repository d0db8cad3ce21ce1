"""The retention rules: one per data class (DIN 66398 style: a start point and a standard period).

- raw-exports: never stored; the run checks that nothing raw or left over is on disk.
- datasets: ``retention_dataset_days`` (90) after the report was made; the ciphertext is deleted.
- reports: ``retention_report_days`` (3653) after the report was made; ciphertext and row are deleted.
- audit-payloads: ``retention_audit_days`` (3653) after the newest record of a key epoch; the epoch's key is
  destroyed (shredded), the leaves stay.
- key-epochs: destroyed once nothing they encrypted is kept (below).

Key epochs: ``audit-data`` and ``report-data`` epochs last at most ``retention_key_epoch_days`` (30; the
run rotates them), so data can be shredded at that grain; an epoch's key is destroyed once nothing it
encrypted is kept. A superseded ``pseudonymisation`` epoch is destroyed once every dataset tokenised under
it is past the dataset period. A destroyed key's row (id, dates, no material) stays as long as the audit log.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from odeus_compliance.settings import Settings

__all__ = ["DataClass", "RetentionRules", "retention_dates"]


class DataClass(enum.StrEnum):
    """The data classes retention knows; the values are stable (receipts, holds and reports name them)."""

    RAW_EXPORTS = "raw-exports"
    DATASETS = "datasets"
    REPORTS = "reports"
    AUDIT_PAYLOADS = "audit-payloads"
    KEY_EPOCHS = "key-epochs"


HOLDABLE: frozenset[DataClass] = frozenset(DataClass) - {DataClass.RAW_EXPORTS}
"""Raw exports are never stored, so there is nothing a hold could keep."""


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """The periods in force (from the settings)."""

    dataset: dt.timedelta
    report: dt.timedelta
    audit: dt.timedelta
    key_epoch: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionRules:
        """The rules configured in ``settings``."""
        return cls(
            dataset=dt.timedelta(days=settings.retention_dataset_days),
            report=dt.timedelta(days=settings.retention_report_days),
            audit=dt.timedelta(days=settings.retention_audit_days),
            key_epoch=dt.timedelta(days=settings.retention_key_epoch_days),
        )

    def describe(self) -> dict[str, str]:
        """Each class's rule in words (``retention run`` and docs print it)."""
        return {
            DataClass.RAW_EXPORTS: "never stored: exports are streamed through the policy engine",
            DataClass.DATASETS: f"{self.dataset.days} days after the report was made",
            DataClass.REPORTS: f"{self.report.days} days after the report was made",
            DataClass.AUDIT_PAYLOADS: f"{self.audit.days} days after the record (shredded per key epoch)",
            DataClass.KEY_EPOCHS: (
                f"data keys rotate every {self.key_epoch.days} days; a key is destroyed once nothing it "
                "encrypted is kept"
            ),
        }


def _day(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).date().isoformat()


def retention_dates(settings: Settings, generated_at: dt.datetime) -> Mapping[str, str]:
    """What a report made at ``generated_at`` cites as its retention (``ReportMeta.retention``): per data
    class, the rule and the date (UTC) from which its data may be deleted, unless a legal hold keeps it.

    Audit payloads are shredded per key epoch, so the date is the earliest: the records about this report
    are kept at least that long, and at most one key-epoch period longer.
    """
    if generated_at.tzinfo is None:
        msg = "generated_at must be timezone-aware"
        raise ValueError(msg)
    rules = RetentionRules.from_settings(settings)
    # a plain dict: the report's meta is pickled to the render worker process
    return {
        DataClass.RAW_EXPORTS.value: "never stored",
        DataClass.DATASETS.value: (f"until {_day(generated_at + rules.dataset)} ({rules.dataset.days} days)"),
        DataClass.REPORTS.value: f"until {_day(generated_at + rules.report)} ({rules.report.days} days)",
        DataClass.AUDIT_PAYLOADS.value: (
            f"until at least {_day(generated_at + rules.audit)} ({rules.audit.days} days)"
        ),
        DataClass.KEY_EPOCHS.value: "destroyed once nothing they encrypted is kept",
    }
