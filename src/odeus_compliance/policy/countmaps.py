"""JSON count maps for a whole column at once: keys transformed, counts kept, canonical JSON out.

The same result as :func:`odeus_compliance.policy.operations.map_keys` cell by cell (keys mapped, counts of
keys that fall together summed, keys sorted, no whitespace), but computed with Arrow kernels for cells of the
usual compact shape (``{"key":12,...}``: no whitespace, no escapes, whole non-negative counts, no key
twice after mapping). Every other cell (whitespace, escapes, ``12.0``, duplicates, invalid JSON) takes the
per-cell path, which also raises the errors. Keys are mapped once per distinct key and batch.

With ``csv=True`` the cells come out as their CSV cell text (what :func:`~odeus_compliance.policy.csvout.
csv_json_cells` makes of the JSON): the fast path builds the quoted form directly (``"{""key"":1}"``: every
quote of canonical JSON whose keys hold none is a structural one, so doubling them is the quoting), the others
format their JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as _compute

from odeus_compliance.policy.csvout import csv_json_cells
from odeus_compliance.policy.operations import OperationError, dump_count_map, parse_count_map

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code; checked by tests

_KEY = r'"[^"\\\x00-\x1f]*"'
_COUNT = r"(?:0|[1-9][0-9]{0,17})"
_FAST = rf"^\{{(?:{_KEY}:{_COUNT}(?:,{_KEY}:{_COUNT})*)?\}}$"


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
    text: Any = cells
    fast: Any = pc.fill_null(pc.match_substring_regex(text, _FAST), True)
    out_keys: dict[str, int] = {}
    if not pc.all(fast).as_py():
        mapped = _mixed(text, fast, map_keys, column=column, row_offset=row_offset, out_keys=out_keys)
        return _as_csv(mapped) if csv else mapped
    result = _fast(text, map_keys, out_keys=out_keys if collect_keys else None, csv=csv)
    if result is None:  # a key occurs twice in a row after mapping: sum those rows cell by cell
        mapped = _per_cell_all(text, map_keys, column=column, row_offset=row_offset)
        return _as_csv(mapped) if csv else mapped
    return MappedColumn(result, out_keys)


def _as_csv(mapped: MappedColumn) -> MappedColumn:
    return MappedColumn(cast("pa.Array[Any]", csv_json_cells(mapped.array)), mapped.keys)


def _fast(
    text: Any, map_keys: KeyMapper, *, out_keys: dict[str, int] | None, csv: bool = False
) -> pa.Array[Any] | None:
    """All cells are of the compact shape (or null); ``None`` if some row needs summing."""
    empty_map: Any = pc.equal(text, "{}")
    inner: Any = pc.if_else(empty_map, pa.scalar(None, pa.string()), pc.utf8_slice_codeunits(text, 2, -1))
    pairs_list: Any = pc.split_pattern(inner, ',"')
    pairs: Any = pc.list_flatten(pairs_list)
    parents: Any = pc.list_parent_indices(pairs_list)
    if len(pairs) == 0:
        return cast("pa.Array[Any]", text)
    # ``key":count``, split at the first ``":`` (keys hold no quote). A key ending in a comma makes the split
    # at ``,"`` above cut a pair apart; such pieces have no ``":``, and the column goes cell by cell.
    halves: Any = pc.split_pattern(pairs, '":', max_splits=1)
    if not pc.all(pc.equal(pc.list_value_length(halves), 2)).as_py():
        return None
    keys: Any = pc.list_element(halves, 0)
    counts: Any = pc.list_element(halves, 1)
    encoded: Any = pc.dictionary_encode(keys)
    distinct = encoded.dictionary.to_pylist()
    mapped = map_keys(distinct)
    ranks = {key: rank for rank, key in enumerate(sorted(set(mapped)))}
    rank_of: Any = pa.array([ranks[key] for key in mapped], pa.int64())
    mapped_array: Any = pa.array(mapped, pa.string())
    indices: Any = encoded.indices
    if out_keys is not None:
        first_rows: Any = (
            pa.table({"key": indices, "row": parents}).group_by("key").aggregate([("row", "min")])
        )
        for key_index, row in zip(
            first_rows.column("key").to_pylist(), first_rows.column("row_min").to_pylist(), strict=True
        ):
            name = mapped[key_index]
            if name not in out_keys or row < out_keys[name]:
                out_keys[name] = row
    composite: Any = pc.add(pc.multiply(pc.cast(parents, pa.int64()), len(ranks)), pc.take(rank_of, indices))
    order: Any = pc.sort_indices(composite)
    ordered: Any = pc.take(composite, order)
    if len(ordered) > 1 and pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py():
        return None
    # pieces ``key":count`` in canonical order, joined by ``,"``, inside ``{"`` and ``}``; for CSV with every
    # quote doubled and the cell quoted (keys with a quote of their own take the general CSV formatting)
    quoted = csv and not any('"' in key for key in mapped)
    new_keys: Any = pc.take(mapped_array, pc.take(indices, order))
    pieces: Any = pc.binary_join_element_wise(new_keys, pc.take(counts, order), '"":' if quoted else '":')
    offsets: Any = pairs_list.offsets
    lists: Any = pa.ListArray.from_arrays(offsets, pieces, mask=pc.is_null(inner))
    body: Any = pc.binary_join(lists, ',""' if quoted else ',"')
    wrapped: Any = pc.binary_join_element_wise('"{""' if quoted else '{"', body, '}"' if quoted else "}", "")
    result = pc.if_else(empty_map, text, wrapped)  # "{}" needs no quotes in CSV
    if csv and not quoted:
        result = csv_json_cells(result)
    return cast("pa.Array[Any]", result)


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
    fast_cells: Any = pc.if_else(fast, text, pa.scalar(None, pa.string()))
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
        out_keys.setdefault(new, index)
    return dump_count_map(out)
