"""What a fetched export is: the envelope's facts, what the client noticed, and (when complete) the rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from odeus_compliance.upstream.anonymisation import ColumnAnonymisation
from odeus_compliance.upstream.batches import ExportBatch, Row
from odeus_compliance.upstream.columns import ExportType


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """The facts Odeus states about an export (the signed download URL is deliberately not kept here: it is
    a credential). ``date_from``/``date_to`` are aware datetimes in whatever offset Odeus used."""

    export_type: ExportType
    data_type: str
    record_count: int
    date_from: datetime
    date_to: datetime
    file_path: str | None = None
    parts: int = 1  # more than 1 when the client split a too-large export and merged the parts


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What the client noticed while reading the rows: the header, the columns it does not know (kept as
    text), and every privacy column Odeus anonymised. The policy engine needs all three."""

    columns: tuple[str, ...]
    unknown_columns: tuple[str, ...]
    anonymised: tuple[ColumnAnonymisation, ...]
    rows: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A complete export: every row arrived and was checked. Only the client builds these."""

    info: ExportInfo
    report: ExportReport
    batches: tuple[ExportBatch, ...]

    @property
    def num_rows(self) -> int:
        """Rows in the export."""
        return sum(batch.num_rows for batch in self.batches)

    def rows(self) -> Iterator[Row]:
        """Every row as a dictionary, in order."""
        for batch in self.batches:
            yield from batch.rows()

    def to_table(self) -> pa.Table | None:
        """All rows as one Arrow table (``None`` for an export without rows)."""
        if not self.batches:
            return None
        return pa.Table.from_batches([batch.record_batch for batch in self.batches])
