"""Recognising what Odeus already anonymised, so the policy engine can keep it anonymous and say so.

Odeus anonymises in several ways, and the real service may use any of them: it removes a column from the
header, leaves its cells empty, fills them with a placeholder such as ``Anonymous``, or replaces user ids
with stable opaque ids (``anon_...``). The tracker counts these per privacy column over every batch and
reports one :class:`ColumnAnonymisation` per column that shows any of them. ``complete`` tells whether every
cell was anonymised (a column-wide upstream setting) or only some (e.g. a few users without a name).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.schema import ExportSchema, privacy_columns

PLACEHOLDERS = frozenset(
    {"anonymous", "anonymised", "anonymized", "anon", "redacted", "hidden", "n/a", "unknown", "***", "-"}
)
OPAQUE_PREFIX = "anon_"


class Anonymisation(enum.StrEnum):
    """How a column was anonymised upstream."""

    REMOVED = "removed"  # the column is not in the header
    EMPTY = "empty"  # its cells are empty
    PLACEHOLDER = "placeholder"  # its cells hold a placeholder such as "Anonymous"
    OPAQUE_IDS = "opaque_ids"  # its cells hold stable opaque ids ("anon_...")


@dataclass(frozen=True, slots=True)
class ColumnAnonymisation:
    """One privacy column that arrived anonymised: how, and in how many of ``rows`` cells."""

    column: str
    how: Anonymisation
    cells: int
    rows: int

    @property
    def complete(self) -> bool:
        """Whether every cell of the column was anonymised (always true for a removed column)."""
        return self.how is Anonymisation.REMOVED or self.cells == self.rows


class AnonymisationTracker:
    """Counts anonymised cells of the privacy columns, batch by batch (a few Arrow kernels per batch)."""

    def __init__(self, schema: ExportSchema) -> None:
        present = set(schema.names)
        self._removed = schema.removed
        self._watched = tuple(name for name in privacy_columns(schema.export_type) if name in present)
        self._placeholders = pa.array(sorted(PLACEHOLDERS), pa.string())
        self._rows = 0
        self._counts = {name: dict.fromkeys(Anonymisation, 0) for name in self._watched}

    def observe(self, batch: ExportBatch) -> None:
        """Count one batch."""
        self._rows += batch.num_rows
        for name in self._watched:
            array = batch.arrow_column(name)
            if not pa.types.is_string(array.type):
                continue
            counts = self._counts[name]
            counts[Anonymisation.EMPTY] += array.null_count
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(array))
            counts[Anonymisation.PLACEHOLDER] += _true_count(pc.is_in(lowered, value_set=self._placeholders))
            counts[Anonymisation.OPAQUE_IDS] += _true_count(pc.starts_with(array, OPAQUE_PREFIX))

    def report(self) -> tuple[ColumnAnonymisation, ...]:
        """Every privacy column that arrived anonymised, removed ones first."""
        found = [
            ColumnAnonymisation(name, Anonymisation.REMOVED, self._rows, self._rows) for name in self._removed
        ]
        for name in self._watched:
            counts = self._counts[name]
            cells = sum(counts.values())
            if cells == 0:
                continue
            # Empty cells beside placeholders or opaque ids are the same anonymisation: name the visible form.
            placeholders, opaque = counts[Anonymisation.PLACEHOLDER], counts[Anonymisation.OPAQUE_IDS]
            if placeholders == opaque == 0:
                how = Anonymisation.EMPTY
            elif placeholders >= opaque:
                how = Anonymisation.PLACEHOLDER
            else:
                how = Anonymisation.OPAQUE_IDS
            found.append(ColumnAnonymisation(name, how, cells, self._rows))
        return tuple(found)


def _true_count(mask: pa.Array[Any]) -> int:
    value = pc.sum(mask).as_py()
    return int(value) if value is not None else 0
