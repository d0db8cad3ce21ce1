"""Properties of the streaming engine's pieces (hypothesis): the vectorised paths equal the per-cell ones,
k-anonymity holds on every output, JSON map totals are preserved, runs are deterministic."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.countmaps import map_count_column
from odeus_compliance.policy.crypto import KeyContext, Tokenizer
from odeus_compliance.policy.disclosure import KAnonymityError, enforce_k_anonymity, plan_k_anonymity
from odeus_compliance.policy.engine import apply_to_file
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.loader import parse_policy
from odeus_compliance.policy.model import DateLevel, KeyAction, MapKeys, TokenDomain
from odeus_compliance.policy.operations import OperationError, map_keys
from odeus_compliance.upstream.columns import ExportType, columns_for

POLICIES = Path(__file__).resolve().parents[2] / "policies"
# per-person rows behind the k-anonymity gate: the shipped policies release no such rows any more
GATED_ROWS = Path(__file__).resolve().parents[1] / "support" / "policies" / "gated_rows.toml"
HEADER = [c.name for c in columns_for(ExportType.USERS, byok=False)]
QIS = ("department", "company_name", "role", "license_type", "joined_at")
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


_keys = st.sampled_from(["asst_1", "asst_2", "gpt-4o", " asst_1 ", "", "é", 'q"uote', "a,b", "x:y"])
_maps = st.one_of(
    st.none(),
    st.dictionaries(_keys, st.integers(min_value=0, max_value=10**6), max_size=4).map(
        lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    ),
    st.dictionaries(_keys, st.integers(min_value=0, max_value=99), max_size=3).map(json.dumps),  # spaces
    st.just('{"asst_1":1,"asst_1":2}'),
)


@given(st.lists(_maps, min_size=1, max_size=12), st.sampled_from(["keep", "pseudonymize", "allow"]))
@FAST
def test_vectorised_count_maps_equal_the_per_cell_operation(cells: list[str | None], mode: str) -> None:
    tokenizer = Tokenizer(KeyContext(root_key=bytes(32), epoch=1, policy_domain="t"))
    if mode == "pseudonymize":
        rule = MapKeys(keys=KeyAction.PSEUDONYMIZE, domain=TokenDomain.AGENT)
    elif mode == "allow":
        rule = MapKeys(keys=KeyAction.KEEP, allow=frozenset({"gpt-4o"}))
    else:
        rule = MapKeys(keys=KeyAction.KEEP)

    def mapper(keys: list[str]) -> list[str]:
        out = []
        for key in keys:
            mapped = map_keys(json.dumps({key: 0}), rule, column="c", tokenizer=tokenizer)
            out.append(next(iter(json.loads(str(mapped)))))
        return out

    expected = [None if c is None else map_keys(c, rule, column="c", tokenizer=tokenizer) for c in cells]
    result = map_count_column(pa.array(cells, pa.string()), mapper, column="c", row_offset=0).array
    assert result.to_pylist() == expected
    for before, after in zip(cells, result.to_pylist(), strict=True):  # totals preserved
        if before is not None:
            assert after is not None
            assert sum(
                json.loads(before, object_pairs_hook=lambda p: dict(enumerate(v for _, v in p))).values()
            ) == sum(json.loads(after).values())


def test_a_bad_count_map_names_column_and_row_only() -> None:
    with pytest.raises(OperationError) as caught:
        map_count_column(
            pa.array(['{"a":1}', '{"secret@x.example":-1}']), lambda keys: keys, column="c", row_offset=10
        )
    assert "row 12" in str(caught.value)
    assert "secret" not in str(caught.value)


_qi_values = st.tuples(
    st.sampled_from(["Sales", "Legal", "IT"]),
    st.sampled_from(["A", "B"]),
    st.sampled_from(["member", "admin"]),
    st.sampled_from(["pro", "enterprise"]),
    st.sampled_from(["2025-Q1", "2025-Q3", "2026-Q1", None]),
)


@given(st.lists(_qi_values, min_size=1, max_size=60), st.integers(min_value=2, max_value=6))
@FAST
def test_the_count_plan_matches_the_row_gate(rows: list[tuple[Any, ...]], k: int) -> None:
    hierarchy = {"joined_at": (DateLevel.YEAR, DateLevel.SUPPRESSED), "department": (DateLevel.SUPPRESSED,)}
    dict_rows = [dict(zip(QIS, r, strict=True)) for r in rows]
    try:
        expected = enforce_k_anonymity(
            dict_rows, quasi_identifiers=QIS, k=k, suppression_limit=Decimal("0.2"), hierarchy=hierarchy
        )
    except KAnonymityError:
        expected = None
    try:
        plan = plan_k_anonymity(
            Counter(rows), quasi_identifiers=QIS, k=k, suppression_limit=Decimal("0.2"), hierarchy=hierarchy
        )
    except KAnonymityError:
        assert expected is None
        return
    assert expected is not None
    assert dict(plan.levels) == dict(expected.levels)
    assert plan.suppressed_rows == len(expected.suppressed_rows)


def _export(rows: list[tuple[Any, ...]], maps: list[dict[str, int]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for n, (qi, counts) in enumerate(zip(rows, maps, strict=True)):
        row = dict.fromkeys(HEADER, "1")
        row.update(period_start="2026-10-01", period_end="2026-10-31", org_id="org_1", user_id=f"usr_{n:08d}")
        row.update(name=f"Name{n} Family{n}", email=f"n{n}@corp.example", payg_limit_current="1.5")
        row.update(payg_consumption_in_period="0", payg_utilization_pct_current="0")
        row.update(dict(zip(QIS, qi, strict=True)))
        row["joined_at"] = {"2025-Q1": "2025-02-03", "2025-Q3": "2025-08-01", "2026-Q1": "2026-01-10"}.get(
            str(qi[4]), ""
        )
        encoded = json.dumps(counts, separators=(",", ":"))
        row.update(assistants_to_messages=encoded, projects_to_messages=encoded)
        row.update(model_to_messages_total=encoded, action_to_messages=encoded)
        writer.writerow([row[name] for name in HEADER])
    return buffer.getvalue().encode()


@given(
    st.lists(_qi_values, min_size=5, max_size=50),
    st.data(),
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_output_is_k_anonymous_preserves_map_totals_and_is_deterministic(
    tmp_path_factory: Any, rows: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    maps = data.draw(
        st.lists(
            st.dictionaries(st.sampled_from(["asst_a", "asst_b", "x"]), st.integers(0, 50), max_size=3),
            min_size=len(rows),
            max_size=len(rows),
        )
    )
    folder = tmp_path_factory.mktemp("run")
    source = folder / "raw.csv"
    source.write_bytes(_export(rows, maps))
    text = (
        (GATED_ROWS)
        .read_text(encoding="utf-8")
        .replace("suppression_limit = 0.05", "suppression_limit = 0.3")
    )
    policy = parse_policy(text, source="t")
    keys = engine_keys(os.urandom(32), policy)
    outputs = []
    for attempt in range(2):
        out = folder / f"out{attempt}.csv"
        try:
            apply_to_file(
                policy, ExportType.USERS, source=source, out=out, manifest_path=folder / "m.json", keys=keys
            )
        except KAnonymityError:
            assert not out.exists()
            return
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    written = list(csv.DictReader(io.StringIO(outputs[0].decode())))
    classes = Counter(tuple(r[q] for q in QIS) for r in written)
    assert not classes or min(classes.values()) >= 5
    by_token: dict[str, int] = {}
    for row in written:
        by_token[row["user_id"]] = sum(json.loads(row["assistants_to_messages"]).values())
    originals = {sum(m.values()) for m in maps}
    assert set(by_token.values()) <= originals
