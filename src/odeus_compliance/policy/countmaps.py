"""JSON count maps for a whole column at once: keys transformed, counts kept, canonical JSON out.

The same result as :func:`odeus_compliance.policy.operations.map_keys` cell by cell (keys mapped, counts of
keys that fall together summed, keys sorted, no whitespace), but computed in native code
(``native/count_maps.c``) for every cell that is a JSON object of whole non-negative counts as exporters
write them: white space anywhere, escaped keys (``\\u00fc``, ``\\"``, surrogate pairs), any key order,
repeated keys, counts such as ``12``, ``-0``, ``12.0`` or ``1.2e1`` of at most 18 digits. Only the rest
(invalid JSON, lone surrogates, fractions, negative or longer counts) takes the per-cell path, which also
raises the errors. Keys are mapped once per distinct key and batch, by Python: the native code only cuts
the cells into keys (decoding escapes) and puts them back together under their mapped keys, in the mapped
keys' order.

With ``csv=True`` the cells come out as their CSV cell text (what :func:`~odeus_compliance.policy.csvout.
csv_json_cells` makes of the JSON): the fast path builds the quoted form directly (``"{""key"":1}"``: the
structural quotes doubled, and a mapped key that needs escaping is handed over escaped and with its own
quotes doubled), the others format their JSON.
"""

from __future__ import annotations

import array
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers
from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.csvout import csv_json_cells
from odeus_compliance.policy.formula_guard import SEPARATORS, guard_inner
from odeus_compliance.policy.operations import OperationError, dump_count_map, parse_count_map

_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what JSON escapes in an output key
_SEPARATOR = re.compile("[" + re.escape("".join(map(chr, sorted(SEPARATORS)))) + "]")  # guard_inner's
_NULL_TEXT = pa.scalar(None, pa.string())
_EMPTY_MAP = pa.scalar("{}", pa.string())


@dataclass(frozen=True, slots=True)
class MappedColumn:
    """A transformed map column and the distinct output keys with the first row (in the batch) of each."""

    array: pa.Array[Any]
    keys: dict[str, int]


KeyMapper = Callable[[list[str]], list[str]]
"""Maps distinct input keys to their output keys, in bulk."""


def map_count_column(
    cells: pa.Array[Any],
    map_keys: KeyMapper,
    *,
    column: str,
    row_offset: int,
    collect_keys: bool = True,
    csv: bool = False,
) -> MappedColumn:
    """Transform every count map of ``cells``; ``map_keys`` maps distinct input keys to output keys.

    ``collect_keys`` = False skips noting the output keys (when they are all tokens by construction);
    ``csv`` = True gives each cell's CSV text instead of its JSON (see the module doc).

    ``row_offset`` only numbers rows in errors (never values).
    """
    text: Any = cells if cells.type == pa.string() else ac.cast(cells, pa.string())
    scan = _scan(text)
    out_keys: dict[str, int] = {}
    fast: Any = scan.handled()
    if not ac.all(fast).as_py():
        mapped = _mixed(text, fast, map_keys, column=column, row_offset=row_offset, out_keys=out_keys)
        return _as_csv(mapped) if csv else mapped
    result = _fast(text, map_keys, out_keys=out_keys if collect_keys else None, csv=csv, scan=scan)
    if result is None:  # a summed count passes 18 digits: Python's integers take the whole column
        mapped = _per_cell_all(text, map_keys, column=column, row_offset=row_offset)
        return _as_csv(mapped) if csv else mapped
    return MappedColumn(result, out_keys)


def _as_csv(mapped: MappedColumn) -> MappedColumn:
    return MappedColumn(csv_json_cells(mapped.array), mapped.keys)


def _fast(
    text: Any,
    map_keys: KeyMapper,
    *,
    out_keys: dict[str, int] | None,
    csv: bool = False,
    scan: _Scan | None = None,
) -> pa.Array[Any] | None:
    """All cells are handled natively (or null); ``None`` if some cell's summed count passes 18 digits
    (the per-cell path handles it)."""
    library = native_library()
    scan = scan if scan is not None else _scan(text)
    if scan.pairs_total == 0:  # only nulls and empty objects: {}, in JSON and in CSV
        if ac.all(ac.equal(text, "{}")).as_py() is not False:
            return cast("pa.Array[Any]", text)
        return cast("pa.Array[Any]", ac.if_else(ac.is_null(text), _NULL_TEXT, _EMPTY_MAP))
    cells = string_buffers(text)
    count = len(text)
    key_offsets = pa.allocate_buffer(4 * (scan.pairs_total + 1))
    key_data = pa.allocate_buffer(max(cells.data_size, 1))
    counts = pa.allocate_buffer(8 * scan.pairs_total)  # uint64 per pair
    status = library.odeus_count_maps_keys(
        cells.offsets,
        cells.data,
        count,
        scan.pairs.address,
        key_offsets.address,
        key_data.address,
        counts.address,
    )
    _check(status)
    keys = pa.StringArray.from_buffers(scan.pairs_total, key_offsets, key_data)
    encoded: Any = ac.dictionary_encode(keys)
    distinct = encoded.dictionary.to_pylist()
    mapped = map_keys(distinct)
    ordered = sorted(set(mapped))
    rank_of = {key: rank for rank, key in enumerate(ordered)}
    ranks = pa.py_buffer(array.array("i", [rank_of[key] for key in mapped]))
    by_rank: Any = pa.array([_key_text(key, csv=csv) for key in ordered], pa.string())
    mapped_cells = string_buffers(by_rank)
    first_rows = array.array("i", [-1]) * len(distinct) if out_keys is not None else None
    indices: Any = encoded.indices
    index_address = indices.buffers()[1].address + 4 * indices.offset

    def build(first_row: int, out_data: int, out_offsets: int) -> int:
        cell_args = (scan.pairs.address, count, counts.address, index_address, ranks.address)
        key_args = (mapped_cells.offsets, mapped_cells.data, int(csv))
        size = int(library.odeus_count_maps_build(*cell_args, *key_args, first_row, out_data, out_offsets))
        if size < -1:
            _check(size)
        return size

    first_rows_buffer = pa.py_buffer(first_rows) if first_rows is not None else None
    size = build(first_rows_buffer.address if first_rows_buffer is not None else 0, 0, 0)
    if size == -1:  # a summed count passes 18 digits
        return None
    out_data = pa.allocate_buffer(max(size, 1))
    out_offsets = pa.allocate_buffer(4 * (count + 1))
    build(0, out_data.address, out_offsets.address)
    result: Any = pa.StringArray.from_buffers(count, out_offsets, out_data)
    if text.null_count:
        result = ac.if_else(ac.is_null(text), _NULL_TEXT, result)
    if out_keys is not None and first_rows_buffer is not None:
        rows = array.array("i", first_rows_buffer.to_pybytes())
        for name, row in zip(mapped, rows, strict=True):
            if name not in out_keys or row < out_keys[name]:
                out_keys[name] = row
    return cast("pa.Array[Any]", result)


@functools.lru_cache(maxsize=1 << 16)  # keys repeat in every batch
def _key_text(key: str, *, csv: bool) -> str:
    """An output key as it goes between its quotes: JSON-escaped as :func:`json.dumps` escapes it, and in a
    CSV cell guarded against a formula after a separator (as :func:`csv_json_cells` guards the cell: no guard
    reaches past a key) with its own quotes doubled too."""
    text = json.dumps(key, ensure_ascii=False)[1:-1] if _NEEDS_ESCAPE.search(key) else key
    if not csv:
        return text
    guarded = guard_inner(text) if _SEPARATOR.search(text) else text  # most keys hold none: skip the sub
    return guarded.replace('"', '""')


@dataclass(frozen=True, slots=True)
class _Scan:
    """Per cell, its number of pairs (-1 where the native code does not handle it), and their total."""

    pairs: pa.Buffer  # int32 per cell
    pairs_total: int

    def handled(self) -> Any:
        """A boolean per cell: handled natively (or null)."""
        counts: Any = pa.Int32Array.from_buffers(pa.int32(), len(self.pairs) // 4, [None, self.pairs])
        return ac.not_equal(counts, -1)


def _scan(text: Any) -> _Scan:
    cells = string_buffers(text)
    pairs = pa.allocate_buffer(4 * max(len(text), 1))
    total = int(
        native_library().odeus_count_maps_scan(
            cells.offsets, cells.data, cells.validity, cells.bit_offset, len(text), pairs.address
        )
    )
    if total < 0:
        msg = "the count maps of one batch hold more pairs than fit one Arrow array"
        raise ValueError(msg)
    return _Scan(pairs.slice(0, 4 * len(text)), total)


def _check(status: int) -> None:
    if status not in {0, -1}:  # pragma: no cover - sizes are the caller's, checked above
        msg = f"native count-map function failed ({status})"
        raise RuntimeError(msg)


def _mixed(
    text: Any,
    fast: Any,
    map_keys: KeyMapper,
    *,
    column: str,
    row_offset: int,
    out_keys: dict[str, int],
) -> MappedColumn:
    """Fast cells through Arrow, the rest cell by cell, then put back together in row order."""
    fast_cells = ac.if_else(fast, text, pa.scalar(None, pa.string()))
    result = _fast(fast_cells, map_keys, out_keys=out_keys)
    if result is None:
        return _per_cell_all(text, map_keys, column=column, row_offset=row_offset)
    values: list[Any] = result.to_pylist()
    flags = fast.to_pylist()
    raw = text.to_pylist()
    for index, is_fast in enumerate(flags):
        if not is_fast:
            values[index] = _one(raw[index], map_keys, column, row_offset + index, out_keys, index)
    return MappedColumn(pa.array(values, pa.string()), out_keys)


def _per_cell_all(text: Any, map_keys: KeyMapper, *, column: str, row_offset: int) -> MappedColumn:
    out_keys: dict[str, int] = {}
    values = [
        None if cell is None else _one(cell, map_keys, column, row_offset + index, out_keys, index)
        for index, cell in enumerate(text.to_pylist())
    ]
    return MappedColumn(pa.array(values, pa.string()), out_keys)


def _one(  # noqa: PLR0917 - a private helper with one call shape
    cell: str, map_keys: KeyMapper, column: str, row: int, out_keys: dict[str, int], index: int
) -> str:
    try:
        pairs = parse_count_map(cell, column=column)
    except OperationError as error:
        raise OperationError(column, f"{error.rule} (data row {row + 1})") from None
    out: dict[str, int] = {}
    mapped = map_keys([key for key, _count in pairs])
    for (_key, count), new in zip(pairs, mapped, strict=True):
        out[new] = out.get(new, 0) + count
        if new not in out_keys or index < out_keys[new]:  # fast cells further down may have named it first
            out_keys[new] = index
    return dump_count_map(out)
