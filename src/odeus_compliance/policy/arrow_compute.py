# mypy: disable-error-code="no-any-return"
"""The Arrow compute kernels the policy engine and the report figures use, as typed functions.

What it is: one thin function per :mod:`pyarrow.compute` kernel this code calls, with the same name and
argument order, stating what the code passes (arrays, chunked arrays, scalars, plain Python values) and
what comes back. Callers import it as ``ac`` and write ``ac.fill_null(...)`` where they would write
``pc.fill_null(...)``.

Why: pyarrow-stubs types these kernels with overloads that do not fit code mixing arrays, chunked arrays,
scalars and Python values in one call. Rather than each caller binding ``pyarrow.compute`` to a name typed
``Any`` (and mypy checking none of its Arrow calls), the untyped binding exists once, here (``_pc``), and
the signatures below are what mypy checks the callers against. Where the stubs mistype a result (a struct
array's ``to_pylist``) or cannot know it (an index kernel gives no null), a ``*_list`` function here states
the Python result. Element-wise kernels keep the container kind
(:data:`ColumnT`: an array in gives an array, a chunked array gives a chunked array).

Each function only forwards its arguments (no conversion, no copy): a Python call more per kernel call,
and kernels run per batch and column, never per value. Add a kernel here, typed, before using it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import pyarrow as pa
import pyarrow.compute

if TYPE_CHECKING:
    from typing import TypeAlias

_pc: Any = pyarrow.compute  # the one untyped binding (see the module doc)

ColumnT = TypeVar("ColumnT", "pa.Array[Any]", "pa.ChunkedArray[Any]")
"""An array or a chunked array; an element-wise kernel gives back the kind it was given."""

ScalarLike: TypeAlias = "pa.Scalar[Any] | str | int | float"
"""A value a kernel broadcasts over a column (an Arrow scalar or a plain Python value; ``bool`` is an
``int``)."""

AnyColumn: TypeAlias = "pa.Array[Any] | pa.ChunkedArray[Any]"
"""An array or a chunked array, where the kind does not decide the result's kind."""

# --- selection and nulls ---------------------------------------------------------------------------------


def fill_null(values: ColumnT, fill: ScalarLike) -> ColumnT:
    return _pc.fill_null(values, fill)


def is_null(values: ColumnT) -> ColumnT:
    return _pc.is_null(values)


def drop_null(values: ColumnT) -> ColumnT:
    return _pc.drop_null(values)


def if_else(cond: ColumnT, left: ColumnT | ScalarLike, right: ColumnT | ScalarLike) -> ColumnT:
    return _pc.if_else(cond, left, right)


def replace_with_mask(
    values: pa.Array[Any], mask: pa.Array[Any], replacements: pa.Array[Any]
) -> pa.Array[Any]:
    return _pc.replace_with_mask(values, mask, replacements)


def filter(values: ColumnT, mask: ColumnT) -> ColumnT:  # noqa: A001 - the kernel's name
    return _pc.filter(values, mask)


@overload
def take(values: pa.Array[Any], indices: pa.Array[Any] | Sequence[int]) -> pa.Array[Any]: ...
@overload
def take(values: AnyColumn, indices: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]: ...
@overload
def take(values: pa.ChunkedArray[Any], indices: pa.Array[Any] | Sequence[int]) -> pa.ChunkedArray[Any]: ...
def take(values: AnyColumn, indices: AnyColumn | Sequence[int]) -> AnyColumn:
    return _pc.take(values, indices)


def indices_nonzero(values: pa.Array[Any]) -> pa.UInt64Array:
    return _pc.indices_nonzero(values)


def indices_nonzero_list(values: pa.Array[Any]) -> list[int]:
    """:func:`indices_nonzero` as Python ints (the kernel gives no null index)."""
    return _pc.indices_nonzero(values).to_pylist()


def index(values: pa.Array[Any], value: str) -> pa.Int64Scalar:
    """The first index of ``value`` (-1 if absent)."""
    return _pc.index(values, value)


def sort_indices(values: AnyColumn) -> pa.UInt64Array:
    return _pc.sort_indices(values)


def absolute(values: ColumnT) -> ColumnT:
    """Element-wise absolute value."""
    return _pc.abs(values)


def utf8_slice_codeunits(strings: ColumnT, start: int, stop: int) -> ColumnT:
    """Each string's characters from ``start`` to ``stop`` (exclusive)."""
    return _pc.utf8_slice_codeunits(strings, start, stop)


def subtract(values: ColumnT, other: ColumnT | int) -> ColumnT:
    """Element-wise ``values - other`` (overflow wraps: callers subtract in range)."""
    return _pc.subtract(values, other)


# --- encoding, counting, aggregating ---------------------------------------------------------------------


def dictionary_encode(
    values: pa.Array[Any], *, null_encoding: Literal["mask", "encode"] = "mask"
) -> pa.DictionaryArray[Any, Any]:
    return _pc.dictionary_encode(values, null_encoding=null_encoding)


def unique(values: AnyColumn) -> pa.Array[Any]:
    return _pc.unique(values)


def value_counts(values: AnyColumn) -> pa.StructArray:
    """A struct array of ``values`` and ``counts``, in order of first appearance."""
    return _pc.value_counts(values)


def value_counts_list(values: AnyColumn) -> list[dict[str, Any]]:
    """:func:`value_counts` as ``{"values": ..., "counts": ...}`` dicts (the stubs mistype
    ``StructArray.to_pylist``)."""
    return _pc.value_counts(values).to_pylist()


def is_in(values: ColumnT, *, value_set: pa.Array[Any]) -> ColumnT:
    return _pc.is_in(values, value_set=value_set)


def sum(values: AnyColumn) -> pa.Scalar[Any]:  # noqa: A001 - the kernel's name
    return _pc.sum(values)


def max(values: AnyColumn) -> pa.Scalar[Any]:  # noqa: A001 - the kernel's name
    return _pc.max(values)


def all(values: AnyColumn) -> pa.BooleanScalar:  # noqa: A001 - the kernel's name
    return _pc.all(values)


def any(values: AnyColumn) -> pa.BooleanScalar:  # noqa: A001 - the kernel's name
    return _pc.any(values)


def cast(values: ColumnT, target: pa.DataType) -> ColumnT:
    return _pc.cast(values, target)


# --- arithmetic, comparison, logic ------------------------------------------------------------------------


def add(left: ColumnT, right: ColumnT | int) -> ColumnT:
    return _pc.add(left, right)


def multiply(left: ColumnT, right: ColumnT | int) -> ColumnT:
    return _pc.multiply(left, right)


def equal(left: ColumnT, right: ColumnT | ScalarLike) -> ColumnT:
    return _pc.equal(left, right)


def not_equal(left: ColumnT, right: ColumnT | ScalarLike) -> ColumnT:
    return _pc.not_equal(left, right)


def greater(left: ColumnT, right: ColumnT | ScalarLike) -> ColumnT:
    return _pc.greater(left, right)


def greater_equal(left: ColumnT, right: ColumnT | ScalarLike) -> ColumnT:
    return _pc.greater_equal(left, right)


def and_(left: ColumnT, right: ColumnT) -> ColumnT:
    return _pc.and_(left, right)


def or_(left: ColumnT, right: ColumnT) -> ColumnT:
    return _pc.or_(left, right)


def invert(values: ColumnT) -> ColumnT:
    return _pc.invert(values)


# --- text ------------------------------------------------------------------------------------------------


def utf8_lower(strings: ColumnT) -> ColumnT:
    return _pc.utf8_lower(strings)


def utf8_trim(strings: ColumnT, characters: str) -> ColumnT:
    return _pc.utf8_trim(strings, characters)


def utf8_trim_whitespace(strings: ColumnT) -> ColumnT:
    return _pc.utf8_trim_whitespace(strings)


def utf8_length(strings: ColumnT) -> ColumnT:
    return _pc.utf8_length(strings)


def binary_length(strings: ColumnT) -> ColumnT:
    return _pc.binary_length(strings)


def ascii_is_decimal(strings: ColumnT) -> ColumnT:
    return _pc.ascii_is_decimal(strings)


def string_is_ascii(strings: ColumnT) -> ColumnT:
    return _pc.string_is_ascii(strings)


def starts_with(strings: ColumnT, pattern: str) -> ColumnT:
    return _pc.starts_with(strings, pattern)


def match_substring_regex(strings: ColumnT, pattern: str) -> ColumnT:
    return _pc.match_substring_regex(strings, pattern)


def utf8_normalize(strings: ColumnT, form: str) -> ColumnT:
    return _pc.utf8_normalize(strings, form)


def replace_substring(strings: ColumnT, pattern: str, replacement: str) -> ColumnT:
    return _pc.replace_substring(strings, pattern, replacement)


def replace_substring_regex(strings: ColumnT, pattern: str, replacement: str) -> ColumnT:
    return _pc.replace_substring_regex(strings, pattern, replacement)


def extract_regex(strings: ColumnT, pattern: str) -> ColumnT:
    """A struct per value, one field per named group of ``pattern`` (null where it does not match)."""
    return _pc.extract_regex(strings, pattern)


def binary_join_element_wise(*strings: pa.Array[Any] | str) -> pa.Array[Any]:
    """Row by row, the values joined with the last argument as separator (``str`` arguments broadcast)."""
    return _pc.binary_join_element_wise(*strings)


# --- lists and structs -----------------------------------------------------------------------------------


def split_pattern(strings: ColumnT, pattern: str) -> ColumnT:
    return _pc.split_pattern(strings, pattern)


def split_pattern_regex(strings: pa.Array[Any], pattern: str) -> pa.ListArray[Any]:
    return _pc.split_pattern_regex(strings, pattern)


def list_flatten(lists: ColumnT) -> ColumnT:
    return _pc.list_flatten(lists)


def count_distinct(values: ColumnT) -> pa.Int64Scalar:
    """The number of distinct non-null values."""
    return _pc.count_distinct(values)


def list_parent_indices(lists: ColumnT) -> ColumnT:
    """For each element of the flattened lists, the index of the list (row) it came from."""
    return _pc.list_parent_indices(lists)


def binary_join(lists: pa.Array[Any], separator: str) -> pa.Array[Any]:
    """Each list of strings joined with ``separator``."""
    return _pc.binary_join(lists, separator)


def struct_field(values: ColumnT, name: str) -> ColumnT:
    return _pc.struct_field(values, name)
