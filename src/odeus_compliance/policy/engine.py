"""The streaming policy engine: export batches in, a pseudonymised CSV and its manifest out.

The flow, for one export (one module, one job: coordinate the pieces):

1. **Transform pass.** Each text batch (from a file, :class:`~odeus_compliance.policy.source.CsvFileInput`,
   or from the upstream client, :func:`~odeus_compliance.policy.source.text_batch`) goes through the column
   rules (:mod:`~odeus_compliance.policy.columnar`). The pass also counts the quasi-identifier classes,
   notes what Odeus anonymised, hands identifying input values and free-text output to the leak scan, and
   keeps the transformed batch in an encrypted spool (:mod:`~odeus_compliance.policy.spool`). The raw
   batch is dropped right after: nothing identifying is ever written, even encrypted.
2. **Gate.** The leak scan compares; the k-anonymity gate plans from the class counts (further
   generalisation, suppressed classes) or refuses.
3. **Write pass.** The spooled batches get the gate's generalisation and suppression and are written as
   formula-safe CSV to an invisible file; the output's classes are counted again and must all hold k.
4. **Commit.** Only now the manifest and the CSV appear at their paths (the caller commits).

Without quasi-identifiers in the output the gate has nothing to do and batches are written in the first
pass; with ``per_person_rows = false`` only grouped aggregates are written. Memory holds a few batches, the
class counts, the leak scan's distinct texts and the identifying values' word forms (as compact Arrow text).

Arrow's kernels release the GIL, so a run uses worker threads for them (see ``PolicyRun.__init__`` and
``BatchTransformer.transform``); batches reach the spool and the output in order, and results and errors are
those of one thread. The threads end with the run (``finish`` or ``abort``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute

from odeus_compliance import __version__
from odeus_compliance.policy.aggregates import DIMENSIONS, Aggregator
from odeus_compliance.policy.canonical import operation_form, policy_hash
from odeus_compliance.policy.columnar import (
    BatchTransformer,
    ColumnPlan,
    TransformedBatch,
    per_distinct,
    plan_columns,
)
from odeus_compliance.policy.crypto import Tokenizer
from odeus_compliance.policy.csvlines import CellFormat, batch_lines
from odeus_compliance.policy.csvout import CsvSink, write_json_atomically
from odeus_compliance.policy.disclosure import (
    KAnonymityError,
    KAnonymityPlan,
    generalize_quasi_identifier,
    plan_k_anonymity,
)
from odeus_compliance.policy.keys import EngineKeys
from odeus_compliance.policy.leakscan import MAX_WORDS, MIN_CHARS, MIN_DIGITS, LeakScanner
from odeus_compliance.policy.manifest import dumps, seal
from odeus_compliance.policy.model import (
    DateLevel,
    Drop,
    Encrypt,
    KeyAction,
    MapKeys,
    Policy,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.operations import ENCRYPT_LABEL, format_number, token_label
from odeus_compliance.policy.source import CsvFileInput, prefetch, text_batch
from odeus_compliance.policy.spool import EncryptedSpool
from odeus_compliance.upstream.anonymisation import AnonymisationTracker, ColumnAnonymisation
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.result import ExportReport
from odeus_compliance.upstream.schema import ExportSchema

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code; checked by tests

_LINES_AHEAD = 2  # batches whose CSV lines are being made while earlier ones are written (pass 2)

__all__ = ["PolicyRun", "RunResult", "apply_policy", "apply_policy_async", "apply_to_file"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: the sealed manifest and the row counts (the output is not yet committed)."""

    manifest: dict[str, Any]
    rows_in: int
    rows_out: int


class PolicyRun:
    """One run of one policy over one export. ``begin``, ``feed`` every batch, ``finish``; or ``abort``."""

    def __init__(
        self,
        policy: Policy,
        export_type: ExportType,
        *,
        keys: EngineKeys,
        sink: CsvSink,
        spool_dir: Path | None = None,
        group_figures: bool = False,
    ) -> None:
        if not policy.covers(export_type):
            msg = f"the policy {policy.name!r} has no rules for the {export_type.value} export; refusing"
            raise ValueError(msg)
        self.policy = policy
        self.export_type = export_type
        self._keys = keys
        self._sink = sink
        self._spool_dir = spool_dir
        self._tokenizer = Tokenizer(keys.context)
        self._scanner = LeakScanner()
        self._class_counts: Counter[tuple[Any, ...]] = Counter()
        self._rows = 0
        self._plan: ColumnPlan | None = None
        self._transformer: BatchTransformer | None = None
        self._tracker: AnonymisationTracker | None = None
        self._schema: ExportSchema | None = None
        self._spool: EncryptedSpool | None = None
        self._aggregator: Aggregator | None = None
        self._group_figures: Aggregator | None = None
        self._want_group_figures = group_figures
        self._qis: tuple[str, ...] = ()
        self._text_columns: frozenset[str] = frozenset()
        self._plain_columns: frozenset[str] = frozenset()
        # Worker threads: Arrow kernels release the GIL, so they run beside this thread's HMACs. ``_workers``
        # computes a batch's columns and input checks; ``_keeper`` (one thread: batches stay in order) hands
        # transformed batches to the leak scan, the class counts and the spool or output.
        self._workers: ThreadPoolExecutor | None = None
        self._keeper: ThreadPoolExecutor | None = None
        self._kept: deque[Future[None]] = deque()

    # --- pass 1 -------------------------------------------------------------------------------------

    def begin(self, schema: ExportSchema) -> None:
        """Plan the columns for this header (refuses unknown columns under ``on_unknown_column = fail``)."""
        plan = plan_columns(self.policy, self.export_type, schema)
        self._schema = schema
        self._plan = plan
        self._transformer = BatchTransformer(plan, self._tokenizer)
        self._tracker = AnonymisationTracker(schema)
        disclosure = self.policy.disclosure
        self._qis = tuple(q for q in disclosure.quasi_identifiers if q in plan.names)
        self._text_columns = frozenset(c.name for c in plan.outputs if not c.numeric)
        self._plain_columns = frozenset(c.name for c in plan.outputs if c.plain)
        if not disclosure.per_person_rows:
            person = next((c.name for c in plan.outputs if c.subject), None)
            grouped = any(name in plan.names for name in ("model", "source", "deployment"))
            self._aggregator = Aggregator(
                dimensions=tuple(d for d in DIMENSIONS if d in plan.names),
                figures=tuple(c.name for c in plan.outputs if c.numeric),
                person=person if grouped else None,
            )
            self._sink.write_header(["dimension", "group", "people", *self._aggregator.figures])
        else:
            self._sink.write_header(plan.names)
            if self._qis:
                self._spool = EncryptedSpool(self._spool_dir)
            if self._want_group_figures:
                # grouped figures before the k gate: the gate may generalise a dimension away in the rows,
                # while its groups of at least k people can still be published (with small-group rules)
                self._group_figures = Aggregator(
                    dimensions=tuple(d for d in DIMENSIONS if d in plan.names),
                    figures=tuple(c.name for c in plan.outputs if c.numeric),
                    person=None,
                )
        self._workers = ThreadPoolExecutor(max_workers=3, thread_name_prefix="policy-columns")
        self._keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-keep")

    def feed(self, batch: pa.RecordBatch) -> None:
        """Transform one text batch (columns as in the header given to :meth:`begin`)."""
        plan, transformer, tracker = self._plan, self._transformer, self._tracker
        if plan is None or transformer is None or tracker is None or self._schema is None:
            msg = "begin() must be called first"
            raise RuntimeError(msg)
        workers, keeper = self._workers, self._keeper
        assert workers is not None
        assert keeper is not None
        offset = self._rows
        observed = workers.submit(self._observe_input, batch)
        try:
            result = transformer.transform(batch, row_offset=offset, pool=workers)
        finally:
            wait([observed])
        observed.result()
        self._rows += batch.num_rows
        self._kept.append(keeper.submit(self._keep, result, offset))
        while len(self._kept) > 1:  # at most one batch in the keeper's hands while the next is made
            self._kept.popleft().result()

    def _observe_input(self, batch: pa.RecordBatch) -> None:
        """What the raw batch tells beyond the output: upstream anonymisation, identifying values."""
        assert self._tracker is not None
        assert self._schema is not None
        assert self._plan is not None
        self._tracker.observe(
            ExportBatch(
                self._schema.columns,
                {c.name: batch.column(c.name) for c in self._schema.columns},
                {},
                batch.num_rows,
            )
        )
        for name in self._plan.identifying:
            self._scanner.add_identifying(batch.column(name))

    def _keep(self, result: TransformedBatch, offset: int) -> None:
        """One transformed batch to the leak scan and on to the spool, the aggregates or the output."""
        assert self._plan is not None
        data = result.data
        for column in self._plan.outputs:
            if column.scanned:
                self._scanner.observe_column(column.name, data.column(column.name), row_offset=offset)
        for name, keys in result.map_keys.items():
            self._scanner.observe_keys(name, keys, row_offset=offset)
        if self._aggregator is not None:
            self._aggregator.observe(data)
            return
        if self._group_figures is not None:
            self._group_figures.observe(data)
        if self._spool is not None:
            self._count_classes(data)
            self._spool.append(data)
        else:
            self._sink.write(
                data,
                text_columns=self._text_columns,
                plain_columns=self._plain_columns,
            )

    def _count_classes(self, data: pa.RecordBatch) -> None:
        _count_into(self._class_counts, data, self._qis)

    # --- gate, pass 2 and the manifest ------------------------------------------------------------

    def finish(
        self, *, upstream: ExportReport | None = None, input_facts: dict[str, Any] | None = None
    ) -> RunResult:
        """Leak scan, k gate, write pass and the sealed manifest. The caller commits the sink."""
        plan = self._plan
        if plan is None or self._tracker is None or self._transformer is None:
            msg = "begin() must be called first"
            raise RuntimeError(msg)
        while self._kept:
            self._kept.popleft().result()
        self._scanner.verify()
        disclosure = self.policy.disclosure
        k = disclosure.min_group_size
        gate: dict[str, Any]
        kplan: KAnonymityPlan | None = None
        if self._aggregator is not None:
            rows, groups = self._aggregator.table(k=k)
            texts = frozenset({"dimension", "group"})
            names = ["dimension", "group", "people", *self._aggregator.figures]
            if rows:
                arrays = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(names))]
                self._sink.write(pa.RecordBatch.from_arrays(arrays, names=names), text_columns=texts)
            gate = {"mode": "aggregates", "k": k, "groups": groups}
        elif self._spool is not None:
            kplan = plan_k_anonymity(
                self._class_counts,
                quasi_identifiers=self._qis,
                k=k,
                suppression_limit=disclosure.suppression_limit,
                hierarchy=disclosure.hierarchy,
            )
            self._write_gated(kplan, k)
            gate = _gate_report(kplan, k, disclosure.suppression_limit)
        else:
            gate = {
                "mode": "rows",
                "k": k,
                "k_anonymity": "not applicable: no quasi-identifier in the output",
            }
        anonymised = upstream.anonymised if upstream is not None else self._tracker.report()
        unknown = list(plan.unknown)
        body = {
            "engine_version": __version__,
            "policy": {
                "name": self.policy.name,
                "version": self.policy.version,
                "hash": policy_hash(self.policy),
            },
            "export_type": self.export_type.value,
            "input": {"rows": self._rows, **(input_facts or {})},
            "output": {
                "kind": "aggregates" if self._aggregator is not None else "rows",
                "rows": self._sink.rows,
                "sha256": self._sink.sha256,
                "columns": (
                    ["dimension", "group", "people", *self._aggregator.figures]
                    if self._aggregator is not None
                    else list(plan.names)
                ),
            },
            "pseudonymization": {
                "domain": self.policy.pseudonymization.domain,
                "linkability": self.policy.pseudonymization.linkability.value,
                "epoch": self._keys.context.epoch,
                "report_salt": self._keys.context.report_salt.hex()
                if self._keys.context.report_salt
                else None,
            },
            "columns": self._column_entries(anonymised, kplan),
            **self._group_figures_entry(k),
            "unknown_columns_dropped": unknown,
            "upstream_anonymised": [
                {
                    "column": a.column,
                    "how": a.how.value,
                    "cells": a.cells,
                    "rows": a.rows,
                    "complete": a.complete,
                }
                for a in anonymised
            ],
            "disclosure": gate,
            "leak_scan": {
                "result": "pass",
                "identifying_values_checked": self._scanner.values_registered,
                "distinct_output_texts_read": self._scanner.texts_read,
                "rule": (
                    f"word n-grams up to {MAX_WORDS} words, any letter case; values of at least {MIN_CHARS} "
                    f"characters (digits only: {MIN_DIGITS}); upstream placeholders never count"
                ),
            },
        }
        manifest = seal(body, key=self._keys.manifest_key, key_id=self._keys.manifest_key_id)
        self._stop_workers()
        return RunResult(manifest=manifest, rows_in=self._rows, rows_out=self._sink.rows)

    def _write_gated(self, kplan: KAnonymityPlan, k: int) -> None:
        """Pass 2: the gate's generalisation and suppression on every spooled batch, then the CSV.

        Three stages at once, so that both cores work: a reader thread decrypts the spool ahead; the worker
        threads take each batch through the gate and make its CSV lines (a few batches at a time); this
        thread writes (and hashes) the lines in order and adds up the counts.
        """
        assert self._spool is not None
        assert self._workers is not None
        gate = _Gate(kplan, self._text_columns, self._plain_columns)
        output_counts: Counter[tuple[Any, ...]] = Counter()
        transformer = self._transformer
        assert transformer is not None
        made: deque[Future[_GatedBatch]] = deque()

        def write(done: _GatedBatch) -> None:
            self._sink.put_lines(done.lines, done.rows)
            output_counts.update(done.classes)
            for name in done.columns:
                counts = transformer.counts[name]
                counts.suppressed += done.rows_suppressed + done.values_suppressed.get(name, 0)

        for data in prefetch(self._spool.batches, depth=2):
            made.append(self._workers.submit(gate.apply, data))
            while len(made) > _LINES_AHEAD:  # earlier batches' lines, written (and hashed) in order
                write(made.popleft().result())
        while made:
            write(made.popleft().result())
        self._spool.close()
        small = [count for count in output_counts.values() if count < k]
        if small:  # the plan guarantees this never happens; checked because the output must never hold it
            msg = f"k-anonymity check of the output failed: {len(small)} class(es) under k={k}"
            raise KAnonymityError(msg)

    def _column_entries(
        self, anonymised: tuple[ColumnAnonymisation, ...], kplan: KAnonymityPlan | None
    ) -> list[dict[str, Any]]:
        plan = self._plan
        transformer = self._transformer
        assert plan is not None
        assert transformer is not None
        upstream = {a.column: a for a in anonymised}
        present = set(plan.names) | set(plan.dropped)
        entries: list[dict[str, Any]] = []
        for name, rule in self.policy.rules_for(self.export_type).columns.items():
            found = upstream.get(name)
            if name not in present and found is None:
                continue  # a column this export did not carry (e.g. BYOK-only, or another group_by)
            form = operation_form(rule)
            domain, key_id = self._key_of(rule, name)
            counts = transformer.counts.get(name)
            entry: dict[str, Any] = {
                "column": name,
                "operation": rule.op,
                "parameters": {k: v for k, v in form.items() if k not in ("op", "reason")},
                "reason": rule.reason,
                "domain": domain,
                "key_id": key_id,
                "effective": _effective(rule, found),
                "upstream": None
                if found is None
                else {"how": found.how.value, "cells": found.cells, "complete": found.complete},
                "transformed": counts.transformed if counts else 0,
                "kept": counts.kept if counts else 0,
                "empty": counts.empty if counts else 0,
                "upstream_anonymised_kept": counts.upstream_anonymised if counts else 0,
                "suppressed": counts.suppressed if counts else 0,
                "dropped": counts.dropped if counts else 0,
            }
            if kplan is not None and name in kplan.levels:
                level = kplan.levels[name]
                entry["k_gate_level"] = None if level is None else level.label
            entries.append(entry)
        return entries

    def _group_figures_entry(self, k: int) -> dict[str, Any]:
        """``group_figures`` for the manifest: the aggregates table of the per-person rows (asked for by
        the report flow), each group of at least k people, with complementary suppression."""
        if self._group_figures is None:
            return {}
        rows, groups = self._group_figures.table(k=k)
        columns = ["dimension", "group", "people", *self._group_figures.figures]
        return {"group_figures": {"k": k, "columns": columns, "rows": rows, "groups": groups}}

    def _key_of(self, rule: Any, column: str) -> tuple[str | None, str | None]:
        if isinstance(rule, Pseudonymize):
            label = token_label(rule.domain, column)
            return rule.domain.value, self._tokenizer.key_id(purpose="pseudonymize", label=label)
        if isinstance(rule, MapKeys) and rule.keys is KeyAction.PSEUDONYMIZE:
            domain = rule.domain or TokenDomain.COLUMN
            label = token_label(domain, column)
            return domain.value, self._tokenizer.key_id(purpose="pseudonymize", label=label)
        if isinstance(rule, Encrypt):
            return ENCRYPT_LABEL, self._tokenizer.key_id(purpose="encrypt", label=ENCRYPT_LABEL)
        return None, None

    def _stop_workers(self) -> None:
        """Wait for the worker threads' last jobs (their errors no longer matter) and end the threads."""
        wait(self._kept)
        self._kept.clear()
        for pool in (self._workers, self._keeper):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._workers = self._keeper = None

    def abort(self) -> None:
        """Drop the spool and the unfinished output."""
        self._stop_workers()
        if self._spool is not None:
            self._spool.close()
        self._sink.abort()


def _effective(rule: Any, found: ColumnAnonymisation | None) -> str:
    """The stricter of the policy's rule and what Odeus did (see docs/policy.md)."""
    if found is None:
        return str(rule.op)
    if found.how.value == "removed":
        return "removed upstream"
    if isinstance(rule, Drop):
        return "drop"
    if found.how.value == "empty":
        return (
            "empty upstream, kept empty" if found.complete else f"{rule.op}; cells empty upstream kept empty"
        )
    if found.how.value == "placeholder":
        return f"{rule.op}; upstream placeholders kept as they came"
    return f"{rule.op} of upstream opaque ids (never linked to e-mails or names)"


def _gate_report(kplan: KAnonymityPlan, k: int, limit: Decimal) -> dict[str, Any]:
    share = Decimal(kplan.suppressed_rows) / Decimal(kplan.rows) if kplan.rows else Decimal(0)
    return {
        "mode": "rows",
        "k": k,
        "k_anonymity": "pass",
        "quasi_identifiers": list(kplan.quasi_identifiers),
        "levels": {q: (None if level is None else level.label) for q, level in kplan.levels.items()},
        "classes": kplan.classes,
        "smallest_class": kplan.min_class_size,
        "rows_suppressed": kplan.suppressed_rows,
        "share_suppressed": format_number(share.quantize(Decimal("0.000001"))),
        "suppression_limit": format_number(limit),
    }


def _generalised(array: Any, level: DateLevel, column: str) -> Any:
    return per_distinct(
        array, lambda v: generalize_quasi_identifier(v, level, column=column), column=column, row_offset=0
    )


def _count_into(counts: Counter[tuple[Any, ...]], data: pa.RecordBatch, qis: tuple[str, ...]) -> None:
    """Add the batch's rows per class (tuple of quasi-identifier values, ``None`` for empty) to ``counts``."""
    if data.num_rows == 0:
        return
    table = pa.table({q: data.column(q) for q in qis})
    counted = table.group_by(list(qis)).aggregate([([], "count_all")])
    columns = [counted.column(q).to_pylist() for q in qis]
    sizes: list[Any] = counted.column("count_all").to_pylist()
    for values, rows in zip(zip(*columns, strict=True), sizes, strict=True):
        counts[values] += rows


@dataclass(frozen=True, slots=True)
class _GatedBatch:
    """One spooled batch after the gate: its CSV lines and what the gate did to it."""

    lines: pa.Buffer
    rows: int  # rows written
    columns: tuple[str, ...]
    rows_suppressed: int  # whole rows dropped (counted in every column)
    values_suppressed: dict[str, int]  # values blanked by a SUPPRESSED generalisation level, per column
    classes: Counter[tuple[Any, ...]]  # the written rows per class


class _Gate:
    """The k-anonymity plan applied to one batch at a time; safe to call from several threads at once."""

    def __init__(
        self, kplan: KAnonymityPlan, text_columns: frozenset[str], plain_columns: frozenset[str]
    ) -> None:
        self._kplan = kplan
        self._suppressed = _Suppressed(kplan.suppressed_classes, kplan.quasi_identifiers)
        self._text_columns = text_columns
        self._plain_columns = plain_columns

    def apply(self, data: pa.RecordBatch) -> _GatedBatch:
        qis = self._kplan.quasi_identifiers
        columns = {name: data.column(name) for name in data.schema.names}
        blanked: dict[str, int] = {}
        for q in qis:
            level = self._kplan.levels[q]
            if level is not None:
                columns[q] = _generalised(columns[q], level, q)
                if level is DateLevel.SUPPRESSED:
                    blanked[q] = len(columns[q]) - columns[q].null_count
        batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
        dropped_rows = self._suppressed.rows_of(columns)
        dropped = 0
        if dropped_rows is not None:
            keep = pc.invert(dropped_rows)
            dropped = batch.num_rows - int(pc.sum(keep).as_py() or 0)
            if dropped:
                batch = batch.filter(keep)
        classes: Counter[tuple[Any, ...]] = Counter()
        _count_into(classes, batch, qis)
        formats = [
            CellFormat.PLAIN
            if name in self._plain_columns
            else CellFormat.TEXT
            if name in self._text_columns
            else CellFormat.QUOTED
            for name in batch.schema.names
        ]
        lines = batch_lines(batch.columns, formats)
        return _GatedBatch(lines, batch.num_rows, tuple(batch.schema.names), dropped, blanked, classes)


class _Suppressed:
    """The rows of a batch that belong to the gate's suppressed classes.

    Each quasi-identifier's value becomes its position among the values the suppressed classes have there
    (``index_in``: absent means the row is in no suppressed class), and the positions of a row one number
    (mixed radix) that is looked up among the suppressed classes' numbers. Numeric kernels only; when the
    numbers would not fit 62 bits, each candidate row's class is compared as text instead.
    """

    def __init__(self, classes: frozenset[tuple[Any, ...]], qis: tuple[str, ...]) -> None:
        self._qis = qis
        self._keys = pa.array(sorted(_class_key(c) for c in classes), pa.string())
        values = [
            sorted({c[i] for c in classes}, key=lambda v: (v is None, v or "")) for i in range(len(qis))
        ]
        self._values = [pa.array(v, pa.string()) for v in values]
        self._radix = [len(v) for v in values]
        span = 1
        for size in self._radix:
            span *= max(size, 1)
        self._numeric = span < 1 << 62
        numbers: list[int] = []
        if self._numeric:
            positions = [{v: i for i, v in enumerate(vs)} for vs in values]
            for c in classes:
                number = 0
                for i, value in enumerate(c):
                    number = number * self._radix[i] + positions[i][value]
                numbers.append(number)
        self._numbers = pa.array(sorted(numbers), pa.int64())

    def rows_of(self, columns: dict[str, Any]) -> Any:
        """A mask of the suppressed rows, or ``None`` when no class is suppressed."""
        if not len(self._keys):
            return None
        number: Any = None
        for q, value_set, size in zip(self._qis, self._values, self._radix, strict=True):
            position = pc.cast(pc.index_in(columns[q], value_set=value_set, skip_nulls=False), pa.int64())
            number = position if number is None else pc.add(pc.multiply(number, size), position)
        candidate = pc.is_valid(number)  # null: some value no suppressed class has
        if self._numeric:
            return pc.fill_null(pc.is_in(number, value_set=self._numbers), False)
        places = pc.indices_nonzero(candidate)
        if not len(places):
            return candidate
        keys = _class_keys([pc.take(columns[q], places) for q in self._qis])
        return pc.replace_with_mask(candidate, candidate, pc.is_in(keys, value_set=self._keys))


def _class_key(values: tuple[Any, ...]) -> str:
    """One class as text, unambiguously (length-prefixed values, ``N`` for empty)."""
    return "|".join("N" if v is None else f"V{len(v)}:{v}" for v in values)


def _class_keys(columns: list[Any]) -> Any:
    """:func:`_class_key` for every row, in Arrow."""
    parts = [
        pc.if_else(
            pc.is_null(c),
            "N",
            pc.binary_join_element_wise("V", pc.cast(pc.utf8_length(c), pa.string()), ":", c, ""),
        )
        for c in columns
    ]
    return pc.binary_join_element_wise(*parts, "|") if len(parts) > 1 else parts[0]


# --- drivers -------------------------------------------------------------------------------------------


def apply_policy(
    policy: Policy,
    export_type: ExportType,
    batches: Iterable[ExportBatch],
    *,
    keys: EngineKeys,
    sink: CsvSink,
    upstream: ExportReport | None = None,
    spool_dir: Path | None = None,
    group_figures: bool = False,
) -> RunResult:
    """Run the engine over the upstream client's typed batches. The caller commits ``sink`` on success."""
    run = PolicyRun(
        policy, export_type, keys=keys, sink=sink, spool_dir=spool_dir, group_figures=group_figures
    )
    try:
        begun = False
        for batch in batches:
            if not begun:
                run.begin(ExportSchema.from_header(export_type, batch.column_names))
                begun = True
            run.feed(text_batch(batch))
        if not begun:
            run.begin(ExportSchema.from_header(export_type, _header(upstream, export_type)))
        return run.finish(upstream=upstream, input_facts={"source": "upstream"})
    except BaseException:
        run.abort()
        raise


async def apply_policy_async(
    policy: Policy,
    export_type: ExportType,
    batches: AsyncIterable[ExportBatch],
    *,
    keys: EngineKeys,
    sink: CsvSink,
    upstream: ExportReport | None = None,
    spool_dir: Path | None = None,
    group_figures: bool = False,
) -> RunResult:
    """:func:`apply_policy` over an async stream (``ExportStream.batches()``); CPU work runs in a thread.

    ``upstream`` may be a callable-free report known only at the end: pass ``None`` and the engine detects
    upstream anonymisation itself, with the same tracker the client uses.
    """
    run = PolicyRun(
        policy, export_type, keys=keys, sink=sink, spool_dir=spool_dir, group_figures=group_figures
    )
    try:
        begun = False
        async for batch in batches:
            if not begun:
                run.begin(ExportSchema.from_header(export_type, batch.column_names))
                begun = True
            await asyncio.to_thread(run.feed, text_batch(batch))
        if not begun:
            run.begin(ExportSchema.from_header(export_type, _header(upstream, export_type)))
        return await asyncio.to_thread(run.finish, upstream=upstream, input_facts={"source": "upstream"})
    except BaseException:
        run.abort()
        raise


def _header(upstream: ExportReport | None, export_type: ExportType) -> tuple[str, ...]:
    if upstream is not None and upstream.columns:
        return upstream.columns
    return ("period_start", "period_end", "org_id")


def apply_to_file(
    policy: Policy,
    export_type: ExportType,
    *,
    source: Path,
    out: Path,
    manifest_path: Path,
    keys: EngineKeys,
) -> RunResult:
    """``policy apply``: a CSV file in, the CSV and its manifest out; on any failure neither appears."""
    reader = CsvFileInput(source, export_type)
    sink = CsvSink(out)
    run = PolicyRun(policy, export_type, keys=keys, sink=sink, spool_dir=out.parent)
    try:
        run.begin(reader.schema)
        for batch in reader.batches():
            run.feed(batch)
        result = run.finish(input_facts={"source": "file", "sha256": reader.sha256, "bytes": reader.size})
    except BaseException:
        run.abort()
        raise
    sink.commit()
    try:
        write_json_atomically(manifest_path, dumps(result.manifest))
    except BaseException:
        out.unlink(missing_ok=True)  # an output without its manifest must not stay
        raise
    return result
