"""Typed, columnar batches of export rows, and the Python values consumers read from them.

Every export, CSV or JSON, arrives as a sequence of :class:`ExportBatch`: an Arrow record batch whose
columns carry the types of :mod:`odeus_compliance.upstream.columns`:

=============  ===================================  ===============================
kind           Arrow type                           Python value
=============  ===================================  ===============================
``str``        ``string``                           ``str``
``int``        ``int64``                            ``int``
``decimal``    ``decimal128(38, 18)``               ``decimal.Decimal``
``date``       ``date32``                           ``datetime.date``
``datetime``   ``timestamp[us, UTC]``               ``datetime.datetime`` (UTC)
``bool``       ``bool``                             ``bool``
``json_map``   ``map<string, int64>``               ``dict[str, int]``
=============  ===================================  ===============================

An empty cell is a missing value: ``None`` (Arrow null) for *every* kind, strings included, so "no value"
is never confused with a value. Columns the client does not know are kept as strings. Decimals keep up to
18 decimal places exactly; a cell with more is rejected rather than rounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from odeus_compliance.upstream.columns import Column, Kind

DECIMAL_TYPE = pa.decimal128(38, 18)
MAP_TYPE = pa.map_(pa.string(), pa.int64())

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STR: pa.string(),
    Kind.INT: pa.int64(),
    Kind.DECIMAL: DECIMAL_TYPE,
    Kind.DATE: pa.date32(),
    Kind.DATETIME: pa.timestamp("us", tz="UTC"),
    Kind.BOOL: pa.bool_(),
    Kind.JSON_MAP: MAP_TYPE,
}

Row = dict[str, Any]
JsonMap = dict[str, int]


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of batches with these columns, in this order."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.kind]) for c in columns])


def map_array(values: Sequence[JsonMap | None]) -> pa.MapArray[Any, Any]:
    """An Arrow ``map<string, int64>`` array from decoded JSON maps (``None`` stays null)."""
    offsets: list[int | None] = [0]
    keys: list[str] = []
    counts: list[int] = []
    total = 0
    for value in values:
        if value is None:
            offsets.append(None)
            continue
        keys.extend(value)
        counts.extend(value.values())
        total += len(value)
        offsets.append(total)
    if None in offsets:
        # A null offset marks a null entry; Arrow wants the following offset repeated, so fill forward.
        filled: list[int] = []
        mask: list[bool] = []
        last = 0
        for offset in offsets:
            mask.append(offset is None)
            last = last if offset is None else offset
            filled.append(last)
        return _map_from(filled, keys, counts, pa.array(mask[1:], pa.bool_()))
    return _map_from(offsets, keys, counts, None)


def _map_from(
    offsets: Sequence[int | None], keys: list[str], counts: list[int], mask: Any
) -> pa.MapArray[Any, Any]:
    build: Any = pa.MapArray.from_arrays  # the stubs know only int64 offsets; Arrow takes int32
    result: pa.MapArray[Any, Any] = build(
        pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), pa.array(counts, pa.int64()), mask=mask
    )
    return result


class ExportBatch:
    """A run of consecutive export rows, typed and columnar.

    JSON-map columns are held in their decoded ``dict`` form (the parser decodes them anyway, and that is
    what row consumers read); their Arrow ``map`` arrays are built only when :attr:`record_batch` is first
    read, which keeps row-oriented consumers from paying for a representation they never use.
    """

    __slots__ = ("_arrays", "_columns", "_maps", "_num_rows", "_record_batch")

    def __init__(
        self,
        columns: Sequence[Column],
        arrays: Mapping[str, pa.Array[Any]],
        json_maps: Mapping[str, Sequence[JsonMap | None]],
        num_rows: int,
    ) -> None:
        self._columns = tuple(columns)
        self._arrays = dict(arrays)
        self._maps = dict(json_maps)
        self._num_rows = num_rows
        self._record_batch: pa.RecordBatch | None = None

    @classmethod
    def from_values(cls, columns: Sequence[Column], values: Mapping[str, Sequence[Any]]) -> ExportBatch:
        """A batch from already typed Python values per column (``None`` for missing values)."""
        arrays: dict[str, pa.Array[Any]] = {}
        maps: dict[str, Sequence[JsonMap | None]] = {}
        num_rows = len(next(iter(values.values()))) if values else 0
        for column in columns:
            if column.kind is Kind.JSON_MAP:
                maps[column.name] = values[column.name]
            else:
                arrays[column.name] = pa.array(values[column.name], ARROW_TYPES[column.kind])
        return cls(columns, arrays, maps, num_rows)

    @property
    def columns(self) -> tuple[Column, ...]:
        """The batch's columns (name and kind), in header order."""
        return self._columns

    @property
    def num_rows(self) -> int:
        """Rows in this batch."""
        return self._num_rows

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in header order."""
        return tuple(c.name for c in self._columns)

    @property
    def record_batch(self) -> pa.RecordBatch:
        """The batch as one Arrow record batch (JSON maps as ``map<string, int64>``)."""
        if self._record_batch is None:
            arrays = [
                map_array(self._maps[c.name]) if c.kind is Kind.JSON_MAP else self._arrays[c.name]
                for c in self._columns
            ]
            self._record_batch = pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(self._columns))
        return self._record_batch

    def arrow_column(self, name: str) -> pa.Array[Any]:
        """One column as an Arrow array."""
        array = self._arrays.get(name)
        return array if array is not None else self.record_batch.column(name)

    def column(self, name: str) -> list[Any]:
        """One column as Python values (see the module table)."""
        cached = self._maps.get(name)
        if cached is not None:
            return list(cached)
        return to_python(self._arrays[name])

    def rows(self) -> Iterator[Row]:
        """The rows as dictionaries keyed by column name, in order."""
        names = self.column_names
        columns = [self.column(name) for name in names]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


# "12.340000" -> "12.34", "100.000" -> "100": Arrow prints every place of the scale.
_TRAILING_ZEROS = r"\.0+$|(\.[0-9]*?[1-9])0+$"
_ZERO_EXPONENT = r"^-?0E-[0-9]+$"  # Arrow prints a zero decimal as "0E-18"


def to_python(array: pa.Array[Any]) -> list[Any]:
    """Python values of an Arrow array; decimals and dates go through text, which is several times faster
    than Arrow's per-value object conversion and gives decimals without padding zeros."""
    if pa.types.is_decimal(array.type):
        text = pc.replace_substring_regex(pc.cast(array, pa.string()), _TRAILING_ZEROS, r"\1")
        text = pc.replace_substring_regex(text, _ZERO_EXPONENT, "0")
        return _mapped(Decimal, text.to_pylist(), array.null_count)
    if pa.types.is_date32(array.type):
        return _mapped(date.fromisoformat, pc.cast(array, pa.string()).to_pylist(), array.null_count)
    return list(array.to_pylist())


def _mapped(function: Callable[[str], Any], values: list[Any], nulls: int) -> list[Any]:
    if nulls == 0:
        return list(map(function, values))
    return [None if value is None else function(value) for value in values]


def concat_rows(batches: Sequence[ExportBatch]) -> list[Row]:
    """All rows of ``batches``, in order (this holds them all in memory: for complete, small results)."""
    return [row for batch in batches for row in batch.rows()]
