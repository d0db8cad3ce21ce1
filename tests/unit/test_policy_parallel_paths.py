"""The engine's faster paths (worker threads, fixed-width tokens, numeric class lookup, JSON cells, ASCII word
check) give exactly what the plain paths give, including which error a bad batch reports."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy import engine as engine_module
from odeus_compliance.policy.columnar import (
    _INT,
    BatchTransformer,
    CellRejected,
    _all_digits,
    _all_match,
    plan_columns,
)
from odeus_compliance.policy.countmaps import map_count_column
from odeus_compliance.policy.crypto import Tokenizer
from odeus_compliance.policy.csvlines import CellFormat, batch_lines_with_ends
from odeus_compliance.policy.csvout import CsvSink, csv_cells_direct, csv_json_cells
from odeus_compliance.policy.disclosure import KAnonymityPlan, plan_k_anonymity
from odeus_compliance.policy.engine import PolicyRun, apply_policy_async, apply_to_file
from odeus_compliance.policy.gated import ClassIndex, LineGate, SpooledBatch
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.leakscan import LeakScanner, identifying_keys
from odeus_compliance.policy.loader import load_policy, parse_policy
from odeus_compliance.policy.model import DateLevel
from odeus_compliance.policy.spool import EncryptedSpool
from odeus_compliance.upstream.columns import ExportType, columns_for
from odeus_compliance.upstream.schema import ExportSchema
from tests.support.policies import stable_tokens

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code
POLICIES = Path(__file__).resolve().parents[2] / "policies"
# per-person rows behind the k-anonymity gate: the shipped policies release no such rows any more
GATED_ROWS = Path(__file__).resolve().parents[1] / "support" / "policies" / "gated_rows.toml"
HEADER = [c.name for c in columns_for(ExportType.USERS, byok=False)]
MASTER = bytes(range(32))

_json_like = st.one_of(
    st.none(),
    st.sampled_from(["{}", '{"a":1}', '{"a,b":2,"c":3}', '{"=x":1}', '{"l\nf":1}', "{ }", "{", '{"', "=1"]),
    st.dictionaries(st.text(max_size=6), st.integers(0, 99), max_size=3).map(
        lambda d: "{" + ",".join(f'"{k}":{v}' for k, v in d.items()) + "}"
    ),
    st.text(max_size=8),
)


@given(st.lists(_json_like, max_size=40), st.integers(min_value=1, max_value=60))
@settings(max_examples=80, deadline=None)
def test_json_cells_equal_the_cell_by_cell_csv(cells: list[str | None], repeat: int) -> None:
    array = pa.array(cells * repeat, pa.string())
    assert csv_json_cells(array).to_pylist() == csv_cells_direct(array, text=True).to_pylist()


def test_identifying_values_count_by_the_stated_rule() -> None:
    scanner = LeakScanner()
    values = [" ANONYMOUS ", "anonymous.", "12345", "123456", "١٢٣٤", "abc", "Anna Meier", None]
    scanner.add_identifying(pa.array(values, pa.string()))
    scanner.observe_column("department", pa.array(["x"], pa.string()), row_offset=0)
    assert scanner.values_registered == 7  # every value is compared; which keys count is the rule
    assert sorted(identifying_keys(pa.array(values, pa.string())).to_pylist()) == [
        "123456",  # "12345" is too short a number, "abc" too short, "١٢٣٤" folds to 4 digits
        "annameier",
        "meier",
        "meieranna",
    ]
    scanner.verify()
    scanner.observe_column("role", pa.array(["Team of ANNA MEIER"], pa.string()), row_offset=7)
    with pytest.raises(Exception, match=r"output column 'role' \(data row 8\)"):
        scanner.verify()


_class_rows = st.lists(
    st.tuples(*[st.sampled_from([None, "", "a", "b|", "V1:a", "é", "N"])] * 3), max_size=60
)


@given(_class_rows, st.integers(min_value=1, max_value=4))
@settings(max_examples=120, deadline=None)
def test_class_numbers_name_each_rows_class_and_count_them(
    rows: list[tuple[str | None, ...]], parts: int
) -> None:
    qis = ("q0", "q1", "q2")
    index = ClassIndex(qis)
    numbers: list[int] = []
    size = max(1, len(rows) // parts)
    for start in range(0, len(rows), size):  # in several batches: numbers hold across them
        part = rows[start : start + size]
        batch = pa.RecordBatch.from_arrays(
            [pa.array([r[i] for r in part], pa.string()) for i in range(3)], list(qis)
        )
        numbers += index.number(batch).to_pylist()
    assert [index.classes[n] for n in numbers] == rows
    assert index.counts() == Counter(rows)
    assert len(set(index.classes)) == len(index.classes)


def test_class_numbers_hold_when_every_value_is_distinct() -> None:
    # 20,000 distinct values in each of 5 columns: their product does not fit 64 bits
    qis = tuple(f"q{i}" for i in range(5))
    rows = [tuple(f"{i}-{(n * (i + 3)) % 20000}" for i in range(5)) for n in range(20000)]
    rows += rows[:7]
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[i] for r in rows], pa.string()) for i in range(5)], list(qis)
    )
    index = ClassIndex(qis)
    numbers = index.number(batch).to_pylist()
    assert [index.classes[n] for n in numbers] == rows
    assert index.counts() == Counter(rows)


def _spooled(rows: list[tuple[str, str, str]], index: ClassIndex, formats: list[CellFormat]) -> SpooledBatch:
    names = ("q0", "q1", "text")
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[i] for r in rows], pa.string()) for i in range(3)], list(names)
    )
    lines, ends = batch_lines_with_ends(batch.columns, formats)
    return SpooledBatch.from_bytes(
        SpooledBatch(lines, ends, index.number(batch.select(["q0", "q1"]))).to_bytes()
    )


def test_the_line_gate_leaves_out_suppressed_classes_and_generalises_without_touching_other_text() -> None:
    formats = [CellFormat.QUOTED, CellFormat.TEXT, CellFormat.TEXT]
    rows = [
        ("2026-02-03", "-Ops", "=1+1"),
        ("2026-05-06", "Sales", "a,b"),
        ("2026-02-03", "-Ops", 'say "hi"'),
    ]
    rows += [("2025-12-01", "Legal", "rare")]
    index = ClassIndex(("q0", "q1"))
    spooled = _spooled(rows, index, formats)
    names = ["q0", "q1", "text"]
    plan = plan_k_anonymity(
        index.counts(), quasi_identifiers=("q0", "q1"), k=1, suppression_limit=Decimal(0), hierarchy={}
    )
    plain = KAnonymityPlan(
        ("q0", "q1"), {"q0": None, "q1": None}, frozenset({("2025-12-01", "Legal")}), 4, 1, 1, 3
    )
    gated = LineGate(plain, index, names, formats).apply(spooled)
    written = b"".join(piece.to_pybytes() for piece in gated.pieces)
    assert written == (
        b'2026-02-03,"\'-Ops","\'=1+1"\n2026-05-06,Sales,"a,b"\n2026-02-03,"\'-Ops","say ""hi"""\n'
    )
    assert (gated.rows, gated.rows_suppressed, sum(gated.output_classes.values())) == (3, 1, 3)
    assert plan.suppressed_rows == 0
    coarse = KAnonymityPlan(
        ("q0", "q1"),
        {"q0": DateLevel.YEAR, "q1": DateLevel.SUPPRESSED},
        frozenset({("2025", "*")}),
        4,
        1,
        3,
        1,
    )
    gate = LineGate(coarse, index, names, formats)
    gated = gate.apply(spooled)
    written = b"".join(piece.to_pybytes() for piece in gated.pieces)
    assert written == b'2026,*,"\'=1+1"\n2026,*,"a,b"\n2026,*,"say ""hi"""\n'
    assert gated.values_suppressed == {"q1": 4}
    assert {gate.output_classes[c]: n for c, n in gated.output_classes.items()} == {("2026", "*"): 3}


def _batch(rows: list[dict[str, str]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([r.get(name) for r in rows], pa.string()) for name in HEADER], names=HEADER
    )


def _row(n: int, **changes: str) -> dict[str, str]:
    row = dict.fromkeys(HEADER, "0")
    row.update(
        period_start="2026-10-01",
        period_end="2026-10-31",
        user_id=f"usr_{n:04d}",
        joined_at="2026-01-15",
        payg_limit_current="2.50",
        assistants_to_messages=f'{{"asst_{n % 3}":3,"asst_9":4}}',
        projects_to_messages="{}",
        model_to_messages_total='{"gpt-4o":7,"claude":1}',
        action_to_messages='{"web":1}',
    )
    row.update(changes)
    return row


def _transformer() -> BatchTransformer:
    # stable tokens: two transformers of one policy must give the same tokens
    policy = parse_policy(stable_tokens(GATED_ROWS.read_text(encoding="utf-8")), source="gated_rows.toml")
    keys = engine_keys(MASTER, policy)
    plan = plan_columns(policy, ExportType.USERS, ExportSchema.from_header(ExportType.USERS, HEADER))
    return BatchTransformer(plan, Tokenizer(keys.context))


def test_a_transform_on_worker_threads_equals_one_on_this_thread() -> None:
    batches = [_batch([_row(n + 50 * b) for n in range(50)]) for b in range(3)]
    alone, threaded = _transformer(), _transformer()
    with ThreadPoolExecutor(max_workers=3) as pool:
        for number, batch in enumerate(batches):
            one = alone.transform(batch, row_offset=50 * number)
            two = threaded.transform(batch, row_offset=50 * number, pool=pool)
            assert one.data.equals(two.data)
            assert one.map_keys == two.map_keys
    assert alone.counts == threaded.counts


@pytest.mark.parametrize("threads", [False, True])
def test_the_first_bad_column_in_output_order_is_reported(threads: bool) -> None:
    # joined_at (a date, rest group) comes before assistants_to_messages (a map, maps group)
    rows = [_row(n) for n in range(5)]
    rows[3] = _row(3, joined_at="not a date", assistants_to_messages="{broken")
    with ThreadPoolExecutor(max_workers=3) as pool, pytest.raises(CellRejected, match="'joined_at'"):
        _transformer().transform(_batch(rows), row_offset=0, pool=pool if threads else None)
    rows[3] = _row(3, assistants_to_messages="{broken", messages_projects="x")  # map before the number
    with ThreadPoolExecutor(max_workers=3) as pool, pytest.raises(Exception, match="assistants_to_messages"):
        _transformer().transform(_batch(rows), row_offset=0, pool=pool if threads else None)


def test_a_failure_on_the_keeper_thread_fails_the_run_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "raw.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for n in range(30):
            writer.writerow([_row(n).get(name, "") for name in HEADER])

    def broken(self: EncryptedSpool, chunk: bytes) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(EncryptedSpool, "append", broken)
    policy = load_policy(GATED_ROWS)
    with pytest.raises(OSError, match="simulated"):
        apply_to_file(
            policy,
            ExportType.USERS,
            source=source,
            out=tmp_path / "out.csv",
            manifest_path=tmp_path / "out.manifest.json",
            keys=engine_keys(MASTER, policy),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]


def test_lines_made_apart_and_put_in_order_equal_one_write(tmp_path: Path) -> None:
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["=1", "a,b", None]), pa.array(['{"k":1}', "{}", None])], names=["t", "m"]
    )
    one, two = CsvSink(tmp_path / "one.csv"), CsvSink(tmp_path / "two.csv")
    for sink in (one, two):
        sink.write_header(["t", "m"])
    one.write(batch, text_columns=frozenset({"t", "m"}))
    lines = CsvSink.lines(batch, text_columns=frozenset({"t", "m"}), json_columns=frozenset({"m"}))
    two.put_lines(lines, batch.num_rows)
    assert (one.sha256, one.rows) == (two.sha256, two.rows)
    for sink in (one, two):
        sink.commit()
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    assert (tmp_path / "one.csv").read_bytes().endswith(b'"\'=1","{""k"":1}"\n"a,b",{}\n,\n')


def test_a_run_stops_its_worker_threads(tmp_path: Path) -> None:
    policy = load_policy(GATED_ROWS)
    before = {t.name for t in threading.enumerate()}
    run = PolicyRun(
        policy, ExportType.USERS, keys=engine_keys(MASTER, policy), sink=CsvSink(tmp_path / "o.csv")
    )
    run.begin(ExportSchema.from_header(ExportType.USERS, HEADER))
    run.feed(_batch([_row(n) for n in range(20)]))
    assert any(t.name.startswith("policy-") for t in threading.enumerate())
    run.abort()
    after = {t.name for t in threading.enumerate() if t.name.startswith("policy-")}
    assert after <= before
    assert not list(itertools.islice((p for p in tmp_path.iterdir()), 1))


_map_keys = st.sampled_from(["asst_1", "asst_2", "gpt-4o", "", "é", 'q"uote', "a,b", "x:y", "a,"])
_map_cells = st.one_of(
    st.none(),
    st.just("{}"),
    st.dictionaries(_map_keys, st.integers(min_value=0, max_value=10**6), max_size=4).map(
        lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    ),
    st.dictionaries(_map_keys, st.integers(min_value=0, max_value=99), max_size=3).map(json.dumps),
    st.just('{"asst_1":1,"asst_1":2}'),
)
_mappers: dict[str, Callable[[list[str]], list[str]]] = {
    "same": lambda keys: keys,
    "tokens": lambda keys: [f"a1_{len(k)}x{sum(map(ord, k))}" for k in keys],
    "quoting": lambda keys: [f'k"{k}' for k in keys],  # output keys with a quote of their own
    "merging": lambda keys: ["one" for _ in keys],
}


@given(st.lists(_map_cells, min_size=1, max_size=12), st.sampled_from(sorted(_mappers)))
@settings(max_examples=120, deadline=None)
def test_count_maps_as_csv_equal_their_json_formatted(cells: list[str | None], mapper: str) -> None:
    array = pa.array(cells, pa.string())
    as_json = map_count_column(array, _mappers[mapper], column="c", row_offset=0)
    as_csv = map_count_column(array, _mappers[mapper], column="c", row_offset=0, csv=True)
    expected = csv_cells_direct(as_json.array, text=True).to_pylist()
    assert pc.fill_null(as_csv.array, "").to_pylist() == expected
    assert as_csv.keys == as_json.keys


@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789-+ \u0661.e", max_size=21)), max_size=20))
@settings(max_examples=150, deadline=None)
def test_the_digit_scan_never_accepts_what_the_integer_pattern_refuses(cells: list[str | None]) -> None:
    array = pa.array(cells, pa.string())
    if _all_digits(array):
        assert _all_match(array, _INT)
    if cells and all(c is not None and c.isascii() and c.isdigit() and len(c) <= 18 for c in cells):
        assert _all_digits(array)  # the usual case takes the scan


def test_lines_read_back_keep_empty_lines_and_a_leading_byte_order_mark() -> None:
    # generalising reads a batch's lines back: an empty line is a row, and U+FEFF is a cell's text
    index = ClassIndex(("q0",))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["2026-01-02", None, "2026-03-04"], pa.string()), pa.array(["\ufeffabc", None, "x"])],
        ["q0", "text"],
    )
    for names, formats, expected in (
        (["q0"], [CellFormat.QUOTED], "2026\n\n2026\n"),
        (["text", "q0"], [CellFormat.TEXT, CellFormat.QUOTED], "\ufeffabc,2026\n,\nx,2026\n"),
    ):
        lines, ends = batch_lines_with_ends([batch.column(name) for name in names], formats)
        spooled = SpooledBatch(lines, ends, index.number(batch.select(["q0"])))
        plan = KAnonymityPlan(("q0",), {"q0": DateLevel.YEAR}, frozenset(), 3, 0, 1, 2)
        gated = LineGate(plan, index, names, formats).apply(SpooledBatch.from_bytes(spooled.to_bytes()))
        assert b"".join(piece.to_pybytes() for piece in gated.pieces).decode() == expected
        assert gated.rows == 3


async def test_a_cancelled_stream_waits_for_the_step_in_progress_before_aborting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []
    feed, abort = PolicyRun.feed, PolicyRun.abort

    def slow_feed(self: PolicyRun, batch: pa.RecordBatch) -> None:
        entered.set()
        release.wait(10)
        feed(self, batch)
        seen.append("fed")

    def recorded_abort(self: PolicyRun) -> None:
        seen.append("abort")
        abort(self)

    monkeypatch.setattr(PolicyRun, "feed", slow_feed)
    monkeypatch.setattr(PolicyRun, "abort", recorded_abort)
    monkeypatch.setattr(engine_module, "text_batch", lambda batch: batch)  # batches are text already

    async def batches() -> Any:
        yield _batch([_row(n) for n in range(30)])
        await asyncio.Event().wait()  # the upstream never sends more

    policy = load_policy(GATED_ROWS)
    sink = CsvSink(tmp_path / "out.csv")
    task = asyncio.create_task(
        apply_policy_async(
            policy,
            ExportType.USERS,
            batches(),
            keys=engine_keys(MASTER, policy),
            sink=sink,
            spool_dir=tmp_path,
        )
    )
    assert await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    await asyncio.sleep(0.1)
    assert seen == []  # not aborted under the running step
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["fed", "abort"]
    sink.abort()
    assert list(tmp_path.iterdir()) == []
