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

The manifest (what the run did, per column and as a whole, sealed with a MAC) is put together by
:func:`~odeus_compliance.policy.engine_manifest.run_manifest` from what the run collected.

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
from pathlib import Path
from typing import Any

import pyarrow as pa

from odeus_compliance.core.files import write_atomically
from odeus_compliance.policy.aggregates import DIMENSIONS, Aggregator
from odeus_compliance.policy.columnar import (
    BatchTransformer,
    ColumnPlan,
    TransformedBatch,
    plan_columns,
)
from odeus_compliance.policy.crypto import Tokenizer
from odeus_compliance.policy.csvlines import CellFormat, batch_lines_with_ends
from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.policy.disclosure import (
    KAnonymityError,
    KAnonymityPlan,
    plan_k_anonymity,
)
from odeus_compliance.policy.engine_manifest import run_manifest
from odeus_compliance.policy.gated import ClassIndex, GatedBatch, LineGate, SpooledBatch
from odeus_compliance.policy.keys import EngineKeys
from odeus_compliance.policy.leakscan import LeakScanner
from odeus_compliance.policy.manifest import dumps
from odeus_compliance.policy.model import Policy
from odeus_compliance.policy.order import ShuffledSpool
from odeus_compliance.policy.source import CsvFileInput, text_batch
from odeus_compliance.upstream.anonymisation import AnonymisationTracker
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.result import ExportReport
from odeus_compliance.upstream.schema import ExportSchema

_GATED_AHEAD = 2  # batches going through the gate while earlier ones are written (pass 2)

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
        self._classes: ClassIndex | None = None
        self._formats: list[CellFormat] = []
        self._rows = 0
        self._plan: ColumnPlan | None = None
        self._transformer: BatchTransformer | None = None
        self._tracker: AnonymisationTracker | None = None
        self._schema: ExportSchema | None = None
        self._spool: ShuffledSpool | None = None
        self._aggregator: Aggregator | None = None
        self._qis: tuple[str, ...] = ()
        self._text_columns: frozenset[str] = frozenset()
        self._formatted_columns: frozenset[str] = frozenset()
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
        self._text_columns = frozenset(c.name for c in plan.outputs if c.free_text)
        self._formatted_columns = frozenset(c.name for c in plan.outputs if c.formatted)
        self._formats = [
            CellFormat.FORMATTED
            if name in self._formatted_columns
            else CellFormat.TEXT
            if name in self._text_columns
            else CellFormat.QUOTED
            for name in plan.names
        ]
        if not disclosure.per_person_rows:
            # people are distinct subjects (canonical ids), whatever repeats them: model rows, duplicates
            person = next((c.name for c in plan.outputs if c.subject), None)
            self._aggregator = Aggregator(
                dimensions=tuple(d for d in DIMENSIONS if d in plan.names),
                figures=tuple(c.name for c in plan.outputs if c.numeric),
                person=person,
                active="messages_total",
                spool_dir=self._spool_dir,
            )
            self._sink.write_header(["dimension", "group", "people", *self._aggregator.figures])
        else:
            self._sink.write_header(plan.names)
            # per-person rows are spooled in any case: they leave in keyed order, never input order
            self._spool = ShuffledSpool(self._tokenizer.row_order_key(), self._spool_dir)
            if self._qis:
                self._classes = ClassIndex(self._qis)
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
            self._scanner.add_identifying(batch.column(name), column=name)

    def _keep(self, result: TransformedBatch, offset: int) -> None:
        """One transformed batch to the leak scan and on to the spool, the aggregates or the output."""
        plan = self._plan
        assert plan is not None
        data = result.data
        for column in plan.outputs:
            if column.scanned:
                self._scanner.observe_column(column.name, data.column(column.name), row_offset=offset)
        for name, keys in result.map_keys.items():
            self._scanner.observe_keys(name, keys, row_offset=offset)
        if self._aggregator is not None:
            self._aggregator.observe(data)
            return
        if self._spool is not None:
            # pass 2 only orders lines and leaves some out (see ``gated``): the lines are made now
            numbers = (
                self._classes.number(data)
                if self._classes is not None
                else pa.nulls(data.num_rows, pa.int32()).fill_null(0)
            )
            lines, ends = batch_lines_with_ends([data.column(name) for name in plan.names], self._formats)
            self._spool.append(SpooledBatch(lines, ends, numbers), self._order_keys(data))

    def _order_keys(self, data: pa.RecordBatch) -> Any | None:
        """What orders the rows (see ``order``): the subject tokens, where every row has one."""
        plan = self._plan
        subject = next((c.name for c in plan.outputs if c.subject), None) if plan is not None else None
        if subject is None:
            return None
        tokens = data.column(subject)
        return tokens if tokens.null_count == 0 else None

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
        kplan: KAnonymityPlan | None = None
        aggregate_groups: dict[str, Any] | None = None
        if self._aggregator is not None:
            rows, aggregate_groups = self._aggregator.table(k=k, dominance=float(disclosure.dominance_limit))
            texts = frozenset({"dimension", "group"})
            names = ["dimension", "group", "people", *self._aggregator.figures]
            if rows:
                arrays = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(names))]
                self._sink.write(pa.RecordBatch.from_arrays(arrays, names=names), text_columns=texts)
        elif self._spool is not None and self._classes is not None:
            kplan = plan_k_anonymity(
                self._classes.counts(),
                quasi_identifiers=self._qis,
                k=k,
                suppression_limit=disclosure.suppression_limit,
                hierarchy=disclosure.hierarchy,
                search=disclosure.gate_searches,
            )
            self._write_gated(kplan, k)
        elif self._spool is not None:
            for ordered in self._spool.batches():
                self._sink.put_lines(ordered.lines, len(ordered.line_ends))
            self._spool.close()
        manifest = run_manifest(
            policy=self.policy,
            export_type=self.export_type,
            keys=self._keys,
            tokenizer=self._tokenizer,
            plan=plan,
            counts=self._transformer.counts,
            rows_in=self._rows,
            input_facts=input_facts,
            output_rows=self._sink.rows,
            output_sha256=self._sink.sha256,
            aggregates=self._aggregator,
            aggregate_groups=aggregate_groups,
            kplan=kplan,
            anonymised=upstream.anonymised if upstream is not None else self._tracker.report(),
            leak_scan=self._scanner,
        )
        self._stop_workers()
        return RunResult(manifest=manifest, rows_in=self._rows, rows_out=self._sink.rows)

    def _write_gated(self, kplan: KAnonymityPlan, k: int) -> None:
        """Pass 2: the spooled lines without those of suppressed classes (generalised first if the plan
        says so), written in order.

        Three stages at once: a reader thread decrypts the spool ahead; the worker threads apply the gate
        to a few batches at a time; this thread writes the lines in order (the sink digests them on its own
        thread) and adds up the counts.
        """
        assert self._spool is not None
        assert self._workers is not None
        assert self._classes is not None
        plan = self._plan
        transformer = self._transformer
        assert plan is not None
        assert transformer is not None
        gate = LineGate(kplan, self._classes, plan.names, self._formats)
        output_counts: Counter[int] = Counter()
        made: deque[Future[GatedBatch]] = deque()

        def write(done: GatedBatch) -> None:
            for number, piece in enumerate(done.pieces):
                self._sink.put_lines(piece, done.rows if number == 0 else 0)
            output_counts.update(done.output_classes)
            for name in plan.names:
                counts = transformer.counts[name]
                counts.suppressed += done.rows_suppressed + done.values_suppressed.get(name, 0)

        for batch in self._spool.batches():
            made.append(self._workers.submit(gate.apply, batch))
            while len(made) > _GATED_AHEAD:  # earlier batches written in order
                write(made.popleft().result())
        while made:
            write(made.popleft().result())
        self._spool.close()
        small = [count for count in output_counts.values() if count < k]
        if small:  # the plan guarantees this never happens; checked because the output must never hold it
            msg = f"k-anonymity check of the output failed: {len(small)} class(es) under k={k}"
            raise KAnonymityError(msg)

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
        if self._aggregator is not None:
            self._aggregator.close()
        self._sink.abort()


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
) -> RunResult:
    """Run the engine over the upstream client's typed batches. The caller commits ``sink`` on success."""
    run = PolicyRun(policy, export_type, keys=keys, sink=sink, spool_dir=spool_dir)
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
) -> RunResult:
    """:func:`apply_policy` over an async stream (``ExportStream.batches()``); CPU work runs in a thread.

    ``upstream`` may be a callable-free report known only at the end: pass ``None`` and the engine detects
    upstream anonymisation itself, with the same tracker the client uses.
    """
    run = PolicyRun(policy, export_type, keys=keys, sink=sink, spool_dir=spool_dir)
    # the run's steps go to a thread of their own, so that a cancelled caller can wait for the step in
    # progress before aborting (abort closes the spool and the sink the step is using)
    steps = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-run")
    step: Future[Any] | None = None
    try:
        begun = False
        async for batch in batches:
            if not begun:
                run.begin(ExportSchema.from_header(export_type, batch.column_names))
                begun = True
            step = steps.submit(run.feed, text_batch(batch))
            await asyncio.wrap_future(step)
        if not begun:
            run.begin(ExportSchema.from_header(export_type, _header(upstream, export_type)))
        step = steps.submit(run.finish, upstream=upstream, input_facts={"source": "upstream"})
        result: RunResult = await asyncio.wrap_future(step)
        return result
    except BaseException:
        try:
            if step is not None and not step.done():
                await asyncio.shield(asyncio.to_thread(wait, [step]))
        finally:
            run.abort()
        raise
    finally:
        steps.shutdown(wait=False)


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
    sink.commit()  # on failure it removes what it wrote
    try:
        write_atomically(manifest_path, dumps(result.manifest), mode=0o666)  # the umask decides
    except BaseException:
        out.unlink(missing_ok=True)  # an output without its manifest must not stay
        raise
    return result
