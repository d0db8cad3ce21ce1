"""Reading one loosely typed value (from the JSON route, or a merge) as the column's kind.

The JSON route sends numbers as numbers, but the real service may also write ``12.0`` or ``"12"``; both are
accepted for whole numbers, ``12.5`` is not. An empty string is a missing value, as an empty CSV cell is.
Errors are ``ValueError`` with a message naming the kind only: callers add the column name, never the value
(values may be personal data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from odeus_compliance.upstream.batches import JsonMap
from odeus_compliance.upstream.columns import Kind

_MAP_DECODER = msgspec.json.Decoder(dict[str, int], strict=False)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _fail(kind: str) -> ValueError:
    return ValueError(f"not a valid {kind}")


def to_decimal(value: Any) -> Decimal:
    """An exact decimal from an int, a float (its shortest repr) or numeric text."""
    if isinstance(value, bool):
        raise _fail("number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail("number")
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _fail("number") from None
        if not result.is_finite():
            raise _fail("number")
        return result
    raise _fail("number")


def to_int(value: Any) -> int:
    """A whole number from ``12``, ``12.0`` or ``"12"``; ``12.5`` is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = to_decimal(value)
    if number != number.to_integral_value():
        raise _fail("whole number")
    return int(number)


def to_date(value: Any) -> date:
    """A calendar date from ``YYYY-MM-DD``."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail("date (YYYY-MM-DD)")


def to_datetime(value: Any) -> datetime:
    """A UTC instant from ISO 8601 text with an offset (``Z`` or ``+01:00``)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _fail("date-time with offset") from None
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise _fail("date-time with offset")


def to_bool(value: Any) -> bool:
    """A boolean from ``true``/``false`` (any case), ``1``/``0`` or a JSON boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _fail("boolean")


def to_json_map(value: Any) -> JsonMap:
    """A ``{identifier: count}`` map from a JSON object or its text."""
    try:
        if isinstance(value, str):
            return _MAP_DECODER.decode(value)
        if isinstance(value, dict):
            return {_key(k): to_int(v) for k, v in value.items()}
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
        pass
    raise _fail("JSON object of whole-number counts")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise _fail("JSON object key")
    return key


def to_str(value: Any) -> str:
    """Text as is; any other JSON value as its JSON text (so an unknown column is never lost)."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.STR: to_str,
    Kind.INT: to_int,
    Kind.DECIMAL: to_decimal,
    Kind.DATE: to_date,
    Kind.DATETIME: to_datetime,
    Kind.BOOL: to_bool,
    Kind.JSON_MAP: to_json_map,
}


def convert(kind: Kind, value: Any) -> Any:
    """``value`` read as ``kind``; ``None`` and ``""`` are missing values (``None``)."""
    if value is None or value == "":
        return None
    return CONVERTERS[kind](value)
