"""The rows between the engine's two passes: numbered classes, spooled CSV lines, the gate applied to them.

Pass 1 gives each row's quasi-identifier class a number (:class:`ClassIndex`) and spools the batch as its
finished CSV lines, with each row's class number and where its line ends (:class:`SpooledBatch`). Once the
k gate has planned, pass 2 (:class:`LineGate`) only leaves out the lines of suppressed classes: nothing is
parsed or formatted again. Only a plan that generalises a quasi-identifier further makes pass 2 read a
batch's lines back, generalise that column and make the lines again.

Classes are decided by number, never by comparing the written text: the text of a cell may have been
neutralised for the CSV (a leading apostrophe) and would not match the value the gate planned with.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.columnar import per_distinct
from odeus_compliance.policy.csvlines import CellFormat, batch_lines
from odeus_compliance.policy.disclosure import KAnonymityPlan, generalize_quasi_identifier
from odeus_compliance.policy.model import DateLevel
from odeus_compliance.policy.operations import Cell

ClassValues = tuple[Cell, ...]
_HEADER = struct.Struct("<II")  # rows, bytes of lines


class ClassIndex:
    """Numbers the quasi-identifier classes in the order they appear and counts their rows.

    Used by one thread at a time (the engine's keeper in pass 1, then the gate)."""

    def __init__(self, quasi_identifiers: tuple[str, ...]) -> None:
        self.quasi_identifiers = quasi_identifiers
        self.classes: list[ClassValues] = []
        self.rows: list[int] = []
        self._numbers: dict[ClassValues, int] = {}

    def number(self, data: pa.RecordBatch) -> Any:
        """Each row's class number (int32), counting the rows.

        In numbers throughout: each quasi-identifier's values are numbered within the batch and a row's
        numbers combined one column at a time (renumbered after each, so they stay below the batch's rows);
        only the distinct classes of the batch (a few hundred) are looked up by their values in Python."""
        rows = data.num_rows
        if rows == 0:
            return pa.array([], pa.int32())
        combined: Any = None
        for q in self.quasi_identifiers:
            encoded = ac.dictionary_encode(data.column(q), null_encoding="encode")
            codes = ac.cast(encoded.indices, pa.int64())
            if combined is not None:
                codes = ac.add(ac.multiply(combined, len(encoded.dictionary)), codes)
            combined = ac.cast(ac.dictionary_encode(codes).indices, pa.int64())
        # a dictionary numbers values in the order they first appear: the first row of class j
        firsts: Any = (
            pa.table({"class": combined, "row": pa.array(range(rows), pa.int64())})
            .group_by("class", use_threads=False)
            .aggregate([("row", "min")])
            .sort_by("class")
        )
        first_rows = firsts.column("row_min")
        columns = [ac.take(data.column(q), first_rows).to_pylist() for q in self.quasi_identifiers]
        numbers = []
        for key in zip(*columns, strict=True):
            number = self._numbers.get(key)
            if number is None:
                number = self._numbers[key] = len(self.classes)
                self.classes.append(key)
                self.rows.append(0)
            numbers.append(number)
        counted: Any = ac.value_counts(combined)
        for index, count in zip(
            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
        ):
            self.rows[numbers[index]] += count
        return ac.take(pa.array(numbers, pa.int32()), combined)

    def counts(self) -> Counter[ClassValues]:
        """Rows per class, as the gate plans with them."""
        return Counter(dict(zip(self.classes, self.rows, strict=True)))


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A transformed batch as pass 2 needs it: its CSV lines, where each row's line ends, its classes."""

    lines: pa.Buffer
    line_ends: Any  # int32 per row
    classes: Any  # int32 per row

    def to_bytes(self) -> bytes:
        rows = len(self.classes)
        return b"".join(
            (
                _HEADER.pack(rows, self.lines.size),
                _int32_bytes(self.line_ends),
                _int32_bytes(self.classes),
                self.lines,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SpooledBatch:
        rows, size = _HEADER.unpack_from(data)
        whole = pa.py_buffer(data)
        at = _HEADER.size
        ends = pa.Int32Array.from_buffers(pa.int32(), rows, [None, whole.slice(at, 4 * rows)])
        classes = pa.Int32Array.from_buffers(pa.int32(), rows, [None, whole.slice(at + 4 * rows, 4 * rows)])
        lines = whole.slice(at + 8 * rows, size)
        if lines.size != size:
            msg = "a spooled batch is cut short"
            raise ValueError(msg)
        return cls(lines, ends, classes)


@dataclass(frozen=True, slots=True)
class GatedBatch:
    """One spooled batch after the gate: the pieces of its lines to write and what the gate did."""

    pieces: list[pa.Buffer]
    rows: int  # rows written
    rows_suppressed: int  # whole rows left out (counted in every column)
    values_suppressed: dict[str, int]  # values blanked by a SUPPRESSED generalisation level, per column
    output_classes: Counter[int]  # written rows per output class (an index into LineGate.output_classes)


class LineGate:
    """The k gate's plan applied to spooled batches; safe to call from several threads at once."""

    def __init__(
        self, plan: KAnonymityPlan, index: ClassIndex, names: Sequence[str], formats: Sequence[CellFormat]
    ) -> None:
        self._names = list(names)
        self._formats = list(formats)
        self._levels = {q: plan.levels[q] for q in plan.quasi_identifiers}
        self._generalising = any(level is not None for level in self._levels.values())
        qis = index.quasi_identifiers
        outputs: dict[ClassValues, int] = {}
        dropped: list[bool] = []
        output_of: list[int] = []
        for values in index.classes:
            output = tuple(
                generalize_quasi_identifier(v, self._levels[q], column=q)
                for q, v in zip(qis, values, strict=True)
            )
            dropped.append(output in plan.suppressed_classes)
            output_of.append(outputs.setdefault(output, len(outputs)))
        self.output_classes: list[ClassValues] = list(outputs)
        self._dropped = pa.array(dropped, pa.bool_())
        self._output_of = pa.array(output_of, pa.int32())
        # per column generalised to SUPPRESSED: which classes have a value there (it becomes "*")
        self._blanked = {
            q: pa.array([values[i] is not None for values in index.classes], pa.bool_())
            for i, q in enumerate(qis)
            if self._levels[q] is DateLevel.SUPPRESSED
        }

    def apply(self, batch: SpooledBatch) -> GatedBatch:
        classes = batch.classes
        dropped_rows = ac.take(self._dropped, classes)
        dropped = int(ac.sum(dropped_rows).as_py() or 0)
        blanked = {q: int(ac.sum(ac.take(has, classes)).as_py() or 0) for q, has in self._blanked.items()}
        kept_classes = ac.filter(classes, ac.invert(dropped_rows)) if dropped else classes
        counted: Any = ac.value_counts(ac.take(self._output_of, kept_classes))
        output = Counter(
            dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))
        )
        rows = len(classes) - dropped
        if self._generalising:
            pieces = [self._remade(batch, dropped_rows if dropped else None)]
        elif dropped:
            pieces = _without(batch, ac.indices_nonzero_list(dropped_rows))
        else:
            pieces = [batch.lines]
        return GatedBatch(pieces, rows, dropped, blanked, output)

    def _remade(self, batch: SpooledBatch, dropped_rows: Any) -> pa.Buffer:
        """The batch's lines read back, its quasi-identifiers generalised, without the dropped rows."""
        # a first line to skip: Arrow drops a byte-order mark at the very start of its input, which here
        # would be the text of a cell
        source: Any = pa.BufferReader(pa.py_buffer(b"-\n" + batch.lines.to_pybytes()))
        table = pa_csv.read_csv(
            source,
            read_options=pa_csv.ReadOptions(column_names=self._names, skip_rows=1, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(self._names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        columns = {name: table.column(name).combine_chunks() for name in self._names}
        for q, level in self._levels.items():
            if level is not None:
                columns[q] = per_distinct(columns[q], _generaliser(level, q), column=q, row_offset=0)
        if dropped_rows is not None:
            keep = ac.invert(dropped_rows)
            columns = {name: ac.filter(column, keep) for name, column in columns.items()}
        # read back, a cell is its text: columns that held CSV text already (count maps) need quoting again;
        # text columns are neutralised already, which does not repeat
        formats = [CellFormat.QUOTED if f is CellFormat.FORMATTED else f for f in self._formats]
        return batch_lines([columns[name] for name in self._names], formats)


def _int32_bytes(values: Any) -> pa.Buffer:
    """An int32 array's values as bytes (from its own offset: it may be a slice)."""
    data: pa.Buffer = values.buffers()[1].slice(4 * values.offset, 4 * len(values))
    return data


def _generaliser(level: DateLevel, column: str) -> Callable[[str], Cell]:
    return lambda value: generalize_quasi_identifier(value, level, column=column)


def _without(batch: SpooledBatch, rows: list[int]) -> list[pa.Buffer]:
    """The batch's lines as pieces that leave out the given rows (in order)."""
    ends = batch.line_ends
    pieces: list[pa.Buffer] = []
    start = 0
    for row in rows:
        begin = ends[row - 1].as_py() if row else 0
        if begin > start:
            pieces.append(batch.lines.slice(start, begin - start))
        start = ends[row].as_py()
    if start < batch.lines.size:
        pieces.append(batch.lines.slice(start))
    return pieces
