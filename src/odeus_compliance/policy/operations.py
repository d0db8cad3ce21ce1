"""The per-cell operations of a policy, as pure functions of (value, rule, keys).

A cell is either the export's text (a CSV cell, for ``policy apply``) or the typed value the upstream client
reads from its Arrow batches (``str``, ``int``, ``Decimal``, ``date``, ``datetime``, ``dict[str, int]``).
The output keeps the input's form: text in, text out; typed in, typed out (labels such as ``2025-Q1`` or
``10-100`` are text either way). An empty cell (``None`` or blank text) stays empty: it names nobody, and
tokenising it would give everyone without an e-mail the same token.

A value an operation cannot handle raises :class:`OperationError`; nothing is ever left untransformed on
error. Error messages name the column and the rule, never the value.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from odeus_compliance.policy.model import (
    DateLevel,
    Drop,
    Encrypt,
    GeneralizeDate,
    GeneralizeNumber,
    Keep,
    KeyAction,
    MapKeys,
    Mask,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.subjects import canonical_id, pseudonymize_id

if TYPE_CHECKING:
    from odeus_compliance.policy.crypto import Tokenizer
    from odeus_compliance.policy.model import Operation

Cell = str | int | Decimal | date | datetime | bool | Mapping[str, int] | None
"""One cell: text, a typed upstream value, or ``None`` for an empty cell."""

SUPPRESSED = "*"
ENCRYPT_LABEL = "cells"


class OperationError(ValueError):
    """A cell the rule cannot transform. Carries the column and the rule, never the cell's value."""

    def __init__(self, column: str, rule: str) -> None:
        super().__init__(f"column {column!r}: {rule}")
        self.column = column
        self.rule = rule


def is_empty(value: Cell) -> bool:
    """``None`` or blank text: a missing value."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Cell, *, column: str, rule: str) -> str:
    """The text of an identifier-like cell (ids may arrive as numbers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise OperationError(column, f"{rule} expects text")


# --- tokens ----------------------------------------------------------------------------------------------


def token_label(domain: TokenDomain, column: str) -> str:
    """The HKDF label of a token domain; ``column`` domains are keyed per column."""
    return f"column:{column}" if domain is TokenDomain.COLUMN else domain.value


def pseudonymize(value: Cell, *, domain: TokenDomain, column: str, tokenizer: Tokenizer) -> Cell:
    """A keyed HMAC token of the canonical value (NFC, trimmed). Subject-domain values are user ids."""
    if is_empty(value):
        return value
    text = _text(value, column=column, rule="pseudonymize")
    if domain is TokenDomain.SUBJECT:
        return pseudonymize_id(text, tokenizer)
    message = canonical_id(text).encode("utf-8")
    return tokenizer.token(prefix=domain.prefix, label=token_label(domain, column), message=message)


def encrypt(value: Cell, *, column: str, tokenizer: Tokenizer) -> Cell:
    """A deterministic AES-SIV token bound to the policy domain, the column and the epoch."""
    if is_empty(value):
        return value
    text = _text(value, column=column, rule="encrypt")
    return tokenizer.encrypt(label=ENCRYPT_LABEL, column=column, plaintext=text)


# --- generalisation ------------------------------------------------------------------------------------


def generalize_date(value: Cell, level: DateLevel, *, column: str) -> Cell:
    """A date (or ISO datetime, or an already generalised label) coarsened to month/quarter/year or ``*``.

    Labels: ``2025-03`` (month), ``2025-Q1`` (quarter), ``2025`` (year). An aware datetime is taken in UTC.
    A label cannot be made finer than it is (a quarter has no month).
    """
    if is_empty(value):
        return value
    if level is DateLevel.SUPPRESSED:
        return SUPPRESSED
    if isinstance(value, date):
        day = value.astimezone(UTC).date() if isinstance(value, datetime) and value.tzinfo else value
        if isinstance(day, datetime):
            day = day.date()
        year, month, quarter, finest = day.year, day.month, (day.month - 1) // 3 + 1, DateLevel.MONTH
    elif isinstance(value, str):
        year, month, quarter, finest = _parse_date_label(value.strip(), column)
    else:
        raise OperationError(column, "generalize expects a date")
    if level < finest:
        raise OperationError(column, f"a value already at {finest.label} level cannot become {level.label}")
    if level is DateLevel.MONTH:
        return f"{year:04d}-{month:02d}"
    if level is DateLevel.QUARTER:
        return f"{year:04d}-Q{quarter}"
    return f"{year:04d}"


def _parse_date_label(text: str, column: str) -> tuple[int, int, int, DateLevel]:
    """(year, month, quarter, finest level the text still has)."""
    if text == SUPPRESSED:
        raise OperationError(column, "a suppressed value cannot be generalised again")
    try:
        if len(text) == 4 and text.isdigit():
            return int(text), 0, 0, DateLevel.YEAR
        if len(text) == 7 and text[5] == "Q" and text[6] in "1234":
            return int(text[:4]), 0, int(text[6]), DateLevel.QUARTER
        if len(text) == 7:
            day = date.fromisoformat(text + "-01")
        elif len(text) == 10:
            day = date.fromisoformat(text)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            day = moment.date()
    except ValueError:
        raise OperationError(column, "generalize expects a date (YYYY-MM-DD) or an ISO datetime") from None
    return day.year, day.month, (day.month - 1) // 3 + 1, DateLevel.MONTH


def parse_number(value: Cell, *, column: str) -> Decimal:
    """A cell's number, exactly (``12``, ``12.0``, ``"12.50"``, ``Decimal("12.5")``)."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise OperationError(column, "generalize expects a number") from None
    else:
        raise OperationError(column, "generalize expects a number")
    if not number.is_finite():
        raise OperationError(column, "generalize expects a finite number")
    return number


def format_number(number: Decimal) -> str:
    """Plain notation without trailing zeros (``10``, not ``1E+1``; ``12.3``, not ``12.30``)."""
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def generalize_number(value: Cell, rule: GeneralizeNumber, *, column: str) -> Cell:
    """Buckets (``<0``, ``0-10``, ``10-100``, ``100+``, lower bound inclusive), or top-code then round.

    A rounded or top-coded typed number stays a number (``int`` if it was one and still is whole).
    """
    if is_empty(value):
        return value
    number = parse_number(value, column=column)
    if rule.buckets is not None:
        return bucket_label(number, rule.buckets)
    if rule.top_code is not None and number > rule.top_code:
        number = rule.top_code
    if rule.round_to is not None:
        steps = (number / rule.round_to).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        number = steps * rule.round_to
    if isinstance(value, str):
        return format_number(number)
    if isinstance(value, int) and number == number.to_integral_value():
        return int(number)
    return number


def bucket_label(number: Decimal, edges: tuple[Decimal, ...]) -> str:
    """The label of the bucket holding ``number``; ``edges`` are strictly increasing."""
    if number < edges[0]:
        return f"<{format_number(edges[0])}"
    for low, high in itertools.pairwise(edges):
        if low <= number < high:
            return f"{format_number(low)}-{format_number(high)}"
    return f"{format_number(edges[-1])}+"


# --- masking -------------------------------------------------------------------------------------------


def mask_email(value: Cell, *, column: str) -> Cell:
    """An e-mail address reduced to its (lower-case) domain: ``anna@example.com`` becomes ``example.com``."""
    if is_empty(value):
        return value
    if not isinstance(value, str):
        raise OperationError(column, "mask expects an e-mail address")
    local, at, domain = value.strip().rpartition("@")
    domain = domain.strip().casefold()
    if not at or not local or not domain or "@" in local or any(c.isspace() for c in domain):
        raise OperationError(column, "mask expects an e-mail address")
    return domain


# --- JSON count maps -----------------------------------------------------------------------------------


class _Pairs(list[tuple[str, object]]):
    """The members of one JSON object, in order, duplicates kept (a JSON array stays a plain list)."""


def parse_count_map(value: Cell, *, column: str) -> list[tuple[str, int]]:
    """A JSON object (or a decoded dict) of id -> non-negative whole count, as pairs.

    Duplicate keys in the JSON text are kept as separate pairs, to be summed: dropping one would lose counts.
    """
    if isinstance(value, Mapping):
        pairs: object = _Pairs(value.items())
    elif isinstance(value, str):
        try:
            pairs = json.loads(value, object_pairs_hook=_Pairs, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise OperationError(column, "a count map must be a JSON object") from None
    else:
        raise OperationError(column, "a count map must be a JSON object")
    if not isinstance(pairs, _Pairs):
        raise OperationError(column, "a count map must be a JSON object")
    counts: list[tuple[str, int]] = []
    for key, count in pairs:
        if not isinstance(key, str):
            raise OperationError(column, "every key in a count map must be text")
        if isinstance(count, bool) or not isinstance(count, int | Decimal):
            raise OperationError(column, "every count in a count map must be a whole number")
        if isinstance(count, Decimal) and count != count.to_integral_value():
            raise OperationError(column, "every count in a count map must be a whole number")
        if count < 0:
            raise OperationError(column, "every count in a count map must be zero or more")
        counts.append((key, int(count)))
    return counts


def dump_count_map(counts: dict[str, int]) -> str:
    """Canonical JSON: keys sorted, no whitespace, UTF-8 kept as is."""
    return json.dumps(dict(sorted(counts.items())), separators=(",", ":"), ensure_ascii=False)


def map_keys(value: Cell, rule: MapKeys, *, column: str, tokenizer: Tokenizer) -> Cell:
    """Transform a count map's keys; counts of keys that fall together are summed (totals are preserved).

    Text in gives canonical JSON text out; a decoded dict gives a dict with sorted keys.
    """
    if is_empty(value):
        return value
    out: dict[str, int] = {}
    for key, count in parse_count_map(value, column=column):
        new_key = _map_key(key, rule, column=column, tokenizer=tokenizer)
        out[new_key] = out.get(new_key, 0) + count
    if isinstance(value, str):
        return dump_count_map(out)
    return dict(sorted(out.items()))


def _map_key(key: str, rule: MapKeys, *, column: str, tokenizer: Tokenizer) -> str:
    if rule.keys is KeyAction.KEEP:
        if rule.allow is not None and key not in rule.allow:
            return rule.other
        return key
    domain = rule.domain if rule.domain is not None else TokenDomain.COLUMN
    if is_empty(key):
        return rule.other
    token = pseudonymize(key, domain=domain, column=column, tokenizer=tokenizer)
    if not isinstance(token, str):  # pragma: no cover - a non-empty key always gives a token
        raise OperationError(column, "a count map key could not be pseudonymised")
    return token


# --- dispatch ------------------------------------------------------------------------------------------


def apply_operation(  # noqa: PLR0911 - one return per operation reads best
    operation: Operation, value: Cell, *, column: str, tokenizer: Tokenizer
) -> Cell:
    """Apply one column rule to one cell. ``Drop`` is the caller's business (the column is not written).

    Subject columns (user id, e-mail, name of one person) do not come through here with ``pseudonymize``:
    the row-level code gives them the row's subject token (see :mod:`odeus_compliance.policy.subjects`).
    """
    match operation:
        case Keep():
            return value
        case Drop():
            raise OperationError(column, "a dropped column has no output value")
        case Pseudonymize(domain=domain):
            return pseudonymize(value, domain=domain, column=column, tokenizer=tokenizer)
        case Encrypt():
            return encrypt(value, column=column, tokenizer=tokenizer)
        case GeneralizeDate(level=level):
            return generalize_date(value, level, column=column)
        case GeneralizeNumber():
            return generalize_number(value, operation, column=column)
        case Mask():
            return mask_email(value, column=column)
        case MapKeys():
            return map_keys(value, operation, column=column, tokenizer=tokenizer)
