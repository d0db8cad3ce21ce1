"""One batch through one export's rules, column by column, with Arrow kernels where it pays.

The same rules as :func:`odeus_compliance.policy.rows.transform_row`, computed per column: a dropped column
is never read; a pure per-value operation (dates, numbers, masks, non-person tokens) runs once per distinct
value of the batch and is spread back with ``take``; person columns get the row's subject token, one HMAC
per distinct id; count maps go through :mod:`odeus_compliance.policy.countmaps`.

Upstream anonymisation stays: in a privacy column a placeholder cell (``Anonymous``, ...) is written as it
came, never tokenised (a token would pretend there was a person to link), and it never feeds a subject
token; an empty cell stays empty. Opaque upstream ids (``anon_...``) are ids: pseudonymised like any id, so
they become another opaque token, derived from the opaque id alone and never from an e-mail or a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.countmaps import map_count_column
from odeus_compliance.policy.csvout import csv_cells
from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.model import (
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
    UnknownColumn,
)
from odeus_compliance.policy.operations import (
    ENCRYPT_LABEL,
    OperationError,
    generalize_date,
    generalize_number,
    is_empty,
    mask_email,
    token_label,
)
from odeus_compliance.policy.rows import UnknownColumnError
from odeus_compliance.policy.subjects import (
    SUBJECT_COLUMNS,
    SubjectColumns,
    canonical_id,
    subject_message,
)
from odeus_compliance.upstream.anonymisation import PLACEHOLDERS
from odeus_compliance.upstream.batches import DECIMAL_TYPE
from odeus_compliance.upstream.cells import to_datetime
from odeus_compliance.upstream.columns import ExportType, Kind
from odeus_compliance.upstream.errors import MalformedExport
from odeus_compliance.upstream.schema import privacy_columns

if TYPE_CHECKING:
    from odeus_compliance.policy.crypto import Tokenizer
    from odeus_compliance.policy.model import Operation, Policy
    from odeus_compliance.upstream.schema import ExportSchema


_BLANK = r"^\s*$"
_INT_DIGITS = 18
_INT = rf"^-?[0-9]{{1,{_INT_DIGITS}}}$"
_DECIMAL = r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TRUE = ("true", "True", "TRUE", "1")
_BOOLS = ("true", "True", "TRUE", "1", "false", "False", "FALSE", "0")
_NULL_TEXT = pa.scalar(None, pa.string())
_PLACEHOLDER_SET = pa.array(sorted(PLACEHOLDERS), pa.string())
CACHED_VALUES = 1 << 16  # per column: results remembered across batches (repeated amounts and dates)
_PLAIN_ID = r"^[\x21-\x7e](?:[\x00-\x7f]*[\x21-\x7e])?$"  # ASCII, printable at both ends (or one char)
_MAP_CACHE_LIMIT = 200_000  # map keys (agents, projects, actions) per column remembered across batches


class CellRejected(ValueError):
    """A cell a rule cannot transform, or that is not its column's type. Names column and row, no value."""


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """One column that reaches the output, and how it is treated."""

    name: str
    rule: Operation
    kind: Kind
    numeric: bool  # written as a number: validated, never neutralised against formulas
    scanned: bool  # free text the leak scan must read
    privacy: bool  # a column Odeus anonymises: placeholders pass through
    subject: bool  # takes the row's subject token

    @property
    def free_text(self) -> bool:
        """Cells may hold any text, so the CSV neutralises formulas in them. Numbers, tokens and date labels
        cannot start one, and a cell those operations leave alone (white space, an upstream placeholder) is
        written as it came, quoted where needed."""
        return not self.numeric and not isinstance(
            self.rule, Pseudonymize | Encrypt | GeneralizeDate | MapKeys
        )

    @property
    def formatted(self) -> bool:
        """Count maps: the transformer gives their cells as CSV cell text already, written as it is.

        Every other column is formatted by the writer, numbers, tokens and date labels too: they never need
        quoting, but a cell an operation leaves alone (white space only, say) might."""
        return isinstance(self.rule, MapKeys)


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What happens to every column of an export file: written, dropped by the policy, unknown."""

    export_type: ExportType
    outputs: tuple[OutputColumn, ...]
    dropped: tuple[str, ...]
    unknown: tuple[str, ...]
    unknown_positions: tuple[int, ...]  # where the unknown columns are in the header (what is reported)
    identifying: tuple[str, ...]  # input columns whose values the leak scan looks for
    subject: SubjectColumns | None

    @property
    def names(self) -> tuple[str, ...]:
        """Output column names, in input order."""
        return tuple(c.name for c in self.outputs)


def unknown_positions(names: Sequence[str], rules: Mapping[str, object]) -> tuple[int, ...]:
    """The 1-based header positions of columns the policy does not name (reported instead of the names)."""
    return tuple(i for i, name in enumerate(names, start=1) if name not in rules)


def plan_columns(policy: Policy, export_type: ExportType, schema: ExportSchema) -> ColumnPlan:
    """The plan for a file with this header; :class:`UnknownColumnError` if an unknown column must fail."""
    rules = policy.rules_for(export_type).columns
    unknown = tuple(name for name in schema.names if name not in rules)
    if unknown and policy.on_unknown_column is UnknownColumn.FAIL:
        raise UnknownColumnError(unknown_positions(schema.names, rules))
    privacy = frozenset(privacy_columns(export_type))
    group = SUBJECT_COLUMNS.get(export_type)
    members = group.members if group is not None else frozenset()
    outputs: list[OutputColumn] = []
    dropped: list[str] = []
    identifying: list[str] = []
    for column in schema.columns:
        rule = rules.get(column.name)
        if rule is None:
            continue
        kept_openly = isinstance(rule, Keep) and rule.allow_identifying
        if column.identifying and not kept_openly:
            identifying.append(column.name)
        if isinstance(rule, Drop):
            dropped.append(column.name)
            continue
        numeric = column.kind in (Kind.INT, Kind.DECIMAL) and (
            isinstance(rule, Keep) or (isinstance(rule, GeneralizeNumber) and rule.buckets is None)
        )
        scanned = (isinstance(rule, Keep) and column.kind is Kind.STR) or isinstance(rule, Mask)
        outputs.append(
            OutputColumn(
                name=column.name,
                rule=rule,
                kind=column.kind,
                numeric=numeric,
                scanned=scanned,
                privacy=column.name in privacy,
                subject=column.name in members and isinstance(rule, Pseudonymize),
            )
        )
    return ColumnPlan(
        export_type=export_type,
        outputs=tuple(outputs),
        dropped=tuple(dropped),
        unknown=unknown,
        unknown_positions=unknown_positions(schema.names, rules),
        identifying=tuple(identifying),
        subject=group if any(c.subject for c in outputs) else None,
    )


@dataclass(slots=True)
class ColumnCounts:
    """What happened to one column's cells over the run (the manifest's per-column figures)."""

    transformed: int = 0
    kept: int = 0
    empty: int = 0
    upstream_anonymised: int = 0
    suppressed: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class TransformedBatch:
    """A batch after the column rules: output columns as text (count maps as their CSV cell text, see
    :attr:`OutputColumn.formatted`), plus what the leak scan needs."""

    data: pa.RecordBatch
    map_keys: dict[str, dict[str, int]]  # per map column: output key -> first row (within the batch)


class BatchTransformer:
    """Applies a :class:`ColumnPlan` to text batches. One per run: it holds the run's keys and counters."""

    def __init__(self, plan: ColumnPlan, tokenizer: Tokenizer) -> None:
        self.plan = plan
        self._tokenizer = tokenizer
        self.counts: dict[str, ColumnCounts] = {c.name: ColumnCounts() for c in plan.outputs}
        for name in plan.dropped:
            self.counts[name] = ColumnCounts()
        self._map_cache: dict[str, dict[str, str]] = {}
        self._value_cache: dict[str, dict[str, str | None]] = {}  # per column: a value's result, run-wide
        self._rows_with_id = 0
        self._rows_named_without_id = 0

    def transform(
        self, batch: pa.RecordBatch, *, row_offset: int, pool: Executor | None = None
    ) -> TransformedBatch:
        """The batch's output columns, in input order. ``row_offset`` is the number of rows before it.

        With ``pool``, the columns that are not the subject's (Arrow kernels, which release the GIL) are
        computed on two worker threads (the count maps, and the rest) while this thread makes the subject
        tokens (HMACs, which hold the GIL). The result, and the first error in column order, are the same
        either way.
        """
        rows = batch.num_rows
        for name in self.plan.dropped:
            self.counts[name].dropped += rows
        placeholders = {
            c.name: _placeholder_mask(batch.column(c.name)) for c in self.plan.outputs if c.privacy
        }
        others = [c for c in self.plan.outputs if not c.subject]
        # two groups of about equal work for two workers: the count maps, and the rest
        groups = [
            [c for c in others if isinstance(c.rule, MapKeys)],
            [c for c in others if not isinstance(c.rule, MapKeys)],
        ]
        map_keys: dict[str, dict[str, int]] = {}
        pending = (
            [
                pool.submit(self._columns, group, batch, row_offset=row_offset, map_keys=map_keys)
                for group in groups
                if group
            ]
            if pool is not None
            else []
        )
        try:
            subject = self._subject_tokens(batch, placeholders) if self.plan.subject is not None else None
        except BaseException:
            wait(pending)  # never leave a worker running on this batch
            raise
        done = (
            [job.result() for job in pending]
            if pool is not None
            else [self._columns(others, batch, row_offset=row_offset, map_keys=map_keys)]
        )
        failures = [failure for _, failure in done if failure is not None]
        if failures:  # the first failing column in output order, as one thread would have found it
            raise min(failures, key=lambda failure: failure[0])[1]
        computed = {name: array for part, _ in done for name, array in part.items()}
        arrays: list[pa.Array[Any]] = []
        for column in self.plan.outputs:
            raw: Any = batch.column(column.name)
            placeholder = placeholders.get(column.name)
            out = (
                computed[column.name]
                if column.name in computed
                else self._column(column, raw, subject, row_offset=row_offset, map_keys=map_keys)
            )
            counts = self.counts[column.name]
            nulls = raw.null_count
            counts.empty += nulls
            held = 0
            if placeholder is not None:
                held = int(ac.sum(placeholder).as_py() or 0)
                if held:  # a count map column already holds CSV text: so must its placeholders
                    kept = csv_cells(raw, text=True) if isinstance(column.rule, MapKeys) else raw
                    out = ac.if_else(placeholder, kept, out)
            counts.upstream_anonymised += held
            if isinstance(column.rule, Keep):
                counts.kept += rows - nulls - held
            else:
                counts.transformed += rows - nulls - held
            arrays.append(cast("pa.Array[Any]", out))
        data = pa.RecordBatch.from_arrays(arrays, names=list(self.plan.names))
        return TransformedBatch(data, map_keys)

    def _columns(
        self,
        columns: list[OutputColumn],
        batch: pa.RecordBatch,
        *,
        row_offset: int,
        map_keys: dict[str, dict[str, int]],
    ) -> tuple[dict[str, Any], tuple[int, Exception] | None]:
        """Columns that do not take the subject token, in order, up to the first that fails (with its
        position in the output and the error)."""
        out: dict[str, Any] = {}
        for column in columns:
            try:
                out[column.name] = self._column(
                    column, batch.column(column.name), None, row_offset=row_offset, map_keys=map_keys
                )
            except Exception as error:  # noqa: BLE001 - re-raised by transform(), in column order
                return out, (self.plan.names.index(column.name), error)
        return out, None

    # --- one column ---------------------------------------------------------------------------------

    def _column(
        self,
        column: OutputColumn,
        raw: Any,
        subject: Any,
        *,
        row_offset: int,
        map_keys: dict[str, dict[str, int]],
    ) -> Any:
        rule = column.rule
        name = column.name
        if isinstance(rule, Keep):
            return checked_kind(raw, column.kind, column=name, row_offset=row_offset)
        if isinstance(rule, Pseudonymize):
            if column.subject:
                blank = _blank_mask(raw)
                return ac.if_else(blank, raw, subject)
            return self._tokens_of(raw, rule.domain, name)
        if isinstance(rule, MapKeys):
            mapped = map_count_column(
                raw,
                self._key_mapper(rule, name),
                column=name,
                row_offset=row_offset,
                collect_keys=rule.keys is KeyAction.KEEP,
                csv=True,
            )
            map_keys[name] = mapped.keys
            return mapped.array
        function = self._cell_function(rule, name)
        # the same value gives the same result in every batch, except under encryption (a fresh nonce)
        cache = None if isinstance(rule, Encrypt) else self._value_cache.setdefault(name, {})
        return per_distinct(raw, function, column=name, row_offset=row_offset, cache=cache)

    def _cell_function(self, rule: Operation, name: str) -> Callable[[str], Any]:
        tokenizer = self._tokenizer
        match rule:
            case Encrypt():
                return lambda v: tokenizer.encrypt(label=ENCRYPT_LABEL, column=name, plaintext=v)
            case GeneralizeDate(level=level):
                return lambda v: generalize_date(v, level, column=name)
            case GeneralizeNumber():
                return lambda v: generalize_number(v, rule, column=name)
            case Mask():
                return lambda v: mask_email(v, column=name)
        raise OperationError(name, f"{rule.op} cannot be applied here")  # pragma: no cover

    def _key_mapper(self, rule: MapKeys, column: str) -> Callable[[list[str]], list[str]]:
        if rule.keys is KeyAction.KEEP:
            allow = rule.allow
            return lambda keys: [key if allow is None or key in allow else rule.other for key in keys]
        domain = rule.domain if rule.domain is not None else TokenDomain.COLUMN
        label = token_label(domain, column)
        cache = self._map_cache.setdefault(column, {})
        tag = b"id\x00" if domain is TokenDomain.SUBJECT else b""

        def mapped(keys: list[str]) -> list[str]:
            fresh = sorted({key for key in keys if key not in cache and not is_empty(key)})
            if len(cache) + len(fresh) > _MAP_CACHE_LIMIT:
                cache.clear()
                fresh = sorted({key for key in keys if not is_empty(key)})
            if fresh:
                canonical = pa.array([canonical_id(key) for key in fresh], pa.string())
                tokens = self._tokenizer.tokens(
                    canonical, prefix=domain.prefix, label=label, message_prefix=tag
                )
                cache.update(zip(fresh, cast("list[str]", tokens.to_pylist()), strict=True))
            return [rule.other if is_empty(key) else cache[key] for key in keys]

        return mapped

    def _tokens_of(self, raw: Any, domain: TokenDomain, column: str) -> Any:
        """Non-person tokens, one HMAC per distinct value (blank cells stay as they are)."""
        blank = _blank_mask(raw)
        valid = ac.if_else(blank, _NULL_TEXT, raw)
        encoded = ac.dictionary_encode(valid)
        tag = b"id\x00" if domain is TokenDomain.SUBJECT else b""
        tokens = self._tokenizer.tokens(
            canonical_ids(encoded.dictionary),
            prefix=domain.prefix,
            label=token_label(domain, column),
            message_prefix=tag,
        )
        return ac.if_else(blank, raw, ac.take(tokens, encoded.indices))

    def _subject_tokens(self, batch: pa.RecordBatch, placeholders: dict[str, Any]) -> Any:
        """The row's subject token: from the id, else the e-mail, else the name (see ``subjects``)."""
        group = self.plan.subject
        assert group is not None
        names = set(batch.schema.names)

        def usable(column: str | None) -> Any:
            if column is None or column not in names:
                return None
            array: Any = batch.column(column)
            hidden = _blank_mask(array)
            mask = placeholders.get(column)
            if mask is None:
                mask = _placeholder_mask(array)
            return ac.if_else(ac.or_(hidden, mask), _NULL_TEXT, array)

        ids = usable(group.anchor)
        rows = batch.num_rows
        subject = TokenDomain.SUBJECT
        if ids is None:
            ids = pa.nulls(rows, pa.string())
        encoded = ac.dictionary_encode(ids)
        canonical = canonical_ids(encoded.dictionary)
        by_id = self._tokenizer.tokens(
            canonical, prefix=subject.prefix, label=subject.value, message_prefix=b"id\x00"
        )
        # an id of invisible characters or a disguised placeholder ("Anonymous\u200b", full-width) names
        # nobody once canonical (``subjects.names_someone``): the row is a row without an id
        nobody = ac.or_(ac.equal(canonical, ""), ac.is_in(canonical, value_set=_PLACEHOLDER_SET))
        named_ids: Any = ac.if_else(nobody, _NULL_TEXT, by_id)
        tokens = ac.take(named_ids, encoded.indices)
        self._rows_with_id += rows - tokens.null_count
        if tokens.null_count == 0:
            self._refuse_mixed_users(group)  # rows without an id may have come in an earlier batch
            return tokens
        emails, people = usable(group.email), usable(group.name)
        if emails is None and people is None:
            return tokens
        missing = ac.indices_nonzero_list(ac.is_null(tokens))
        email_values = ac.take(emails, missing).to_pylist() if emails is not None else [None] * len(missing)
        name_values = ac.take(people, missing).to_pylist() if people is not None else [None] * len(missing)
        values: list[str | None] = tokens.to_pylist()
        for index, email, person in zip(missing, email_values, name_values, strict=True):
            message = subject_message({group.email or "": email, group.name or "": person}, group)
            if message is not None:
                self._rows_named_without_id += 1
                values[index] = self._tokenizer.token(
                    prefix=subject.prefix, label=subject.value, message=message
                )
        self._refuse_mixed_users(group)
        return pa.array(values, pa.string())

    def _refuse_mixed_users(self, group: SubjectColumns) -> None:
        """A users export has one row per user, each with its id (or, where user-level data is off, an
        opaque one). Rows that name a person only by e-mail or name beside rows with ids cannot be counted
        per person: the same person would count twice (their id-derived and e-mail-derived tokens never
        link), a group of four would pass as five and a dominant person as two. Refused, naming no one,
        whichever batch brings the second kind."""
        if group.anchor == "user_id" and self._rows_with_id and self._rows_named_without_id:
            msg = (
                f"the users export names {self._rows_named_without_id} row(s) by e-mail or name without a "
                "user id beside rows with one: people cannot be counted, so nothing is published"
            )
            raise DisclosureError(msg)


# --- helpers ---------------------------------------------------------------------------------------


def canonical_ids(values: Any) -> pa.StringArray:
    """The :func:`canonical_id` of every value (no nulls), in order, as the text to be hashed.

    Printable ASCII at both ends and ASCII throughout (every id we have seen) needs only lower case (NFKC
    changes no ASCII, ASCII has no format character, ``strip`` removes only what is not at the ends), so
    such a batch is lower-cased in Arrow, without a Python string per value; a test compares both ways.
    """
    if len(values) == 0:
        return cast("pa.StringArray", values)
    if ac.all(ac.match_substring_regex(values, _PLAIN_ID)).as_py():
        return cast("pa.StringArray", ac.utf8_lower(values))
    return pa.array([canonical_id(v) for v in values.to_pylist()], pa.string())


def _placeholder_mask(array: pa.Array[Any]) -> pa.Array[Any]:
    lowered = ac.utf8_lower(ac.utf8_trim_whitespace(array))
    return ac.fill_null(ac.is_in(lowered, value_set=_PLACEHOLDER_SET), False)


def _blank_mask(array: pa.Array[Any]) -> pa.Array[Any]:
    return ac.fill_null(ac.match_substring_regex(array, _BLANK), True)


def per_distinct(
    raw: Any,
    function: Callable[[str], Any],
    *,
    column: str,
    row_offset: int,
    cache: dict[str, str | None] | None = None,
) -> Any:
    """``function`` applied once per distinct non-empty value, spread back over the rows; with ``cache``
    (for a pure ``function``), once per value over all batches that share it (up to :data:`CACHED_VALUES`)."""
    encoded: Any = ac.dictionary_encode(raw)
    values = encoded.dictionary.to_pylist()
    results: list[str | None] = []
    for value in values:
        if is_empty(value):
            results.append(value)
            continue
        if cache is not None and value in cache:
            results.append(cache[value])
            continue
        try:
            result = function(value)
        except ValueError as error:  # OperationError, or a type check: messages never hold the value
            rule = error.rule if isinstance(error, OperationError) else str(error)
            row = _first_row(raw, value) + row_offset + 1
            msg = f"column {column!r}: {rule} (data row {row})"
            raise CellRejected(msg) from None
        results.append(None if result is None else str(result))
        if cache is not None and len(cache) < CACHED_VALUES:
            cache[value] = results[-1]
    return ac.take(pa.array(results, pa.string()), encoded.indices)


def _first_row(array: pa.Array[Any], value: str) -> int:
    return int(ac.index(array, value).as_py())


def checked_kind(raw: Any, kind: Kind, *, column: str, row_offset: int) -> Any:  # noqa: PLR0911, PLR0912
    """A kept column's text, checked to be its kind (numbers, dates, booleans) and written plainly."""
    if kind is Kind.STR or len(raw) == raw.null_count:
        return raw
    if kind is Kind.INT:
        if _all_digits(raw) or _all_match(raw, _INT):
            return raw
        try:
            return ac.cast(ac.cast(ac.cast(raw, DECIMAL_TYPE), pa.int64()), pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _bad(column, "a whole number", raw, _INT, row_offset) from None
    if kind is Kind.DECIMAL:
        if _all_match(raw, _DECIMAL):
            return raw
        raise _bad(column, "a decimal number", raw, _DECIMAL, row_offset)
    if kind is Kind.DATE:
        if _all_match(raw, _DATE):
            try:
                ac.cast(raw, pa.date32())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                return raw
        raise _bad(column, "a date (YYYY-MM-DD)", raw, _DATE, row_offset)
    if kind is Kind.BOOL:
        if ac.all(ac.fill_null(ac.is_in(raw, value_set=pa.array(_BOOLS)), True)).as_py():
            truth = ac.is_in(raw, value_set=pa.array(_TRUE))
            return ac.if_else(ac.is_null(raw), _NULL_TEXT, ac.if_else(truth, "true", "false"))
        msg = f"column {column!r} holds a cell that is not a boolean (at or after data row {row_offset + 1})"
        raise MalformedExport(msg)
    if kind is Kind.DATETIME:
        return per_distinct(raw, lambda v: to_datetime(v).isoformat(), column=column, row_offset=row_offset)
    return raw


def _all_digits(raw: pa.Array[Any]) -> bool:
    """Every cell 1 to 18 ASCII digits (or empty): ``_INT`` without its sign, by a byte scan, no pattern."""
    if not ac.all(ac.fill_null(ac.ascii_is_decimal(raw), True)).as_py():
        return False
    longest = ac.max(ac.binary_length(raw)).as_py()
    return longest is not None and longest <= _INT_DIGITS


def _all_match(raw: pa.Array[Any], pattern: str) -> bool:
    return bool(ac.all(ac.fill_null(ac.match_substring_regex(raw, pattern), True)).as_py())


def _bad(column: str, what: str, raw: pa.Array[Any], pattern: str, row_offset: int) -> MalformedExport:
    good = ac.fill_null(ac.match_substring_regex(raw, pattern), True)
    bad = ac.indices_nonzero(ac.invert(good))
    row = (int(bad[0].as_py()) if len(bad) else 0) + row_offset + 1
    return MalformedExport(f"column {column!r} holds a cell that is not {what} (data row {row})")
