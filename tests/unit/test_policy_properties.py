"""Property tests: tokens injective within a domain, distinct across domains, stable across processes;
count-map totals preserved; k-anonymity holds on every output; suppressed groups never singled out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.crypto import KeyContext, Tokenizer
from odeus_compliance.policy.disclosure import (
    GroupFigures,
    KAnonymityError,
    enforce_k_anonymity,
    suppress_small_groups,
)
from odeus_compliance.policy.model import DateLevel, KeyAction, MapKeys, TokenDomain
from odeus_compliance.policy.operations import Cell, map_keys, pseudonymize
from odeus_compliance.policy.subjects import canonical_id

ROOT = bytes(range(100, 132))
ids = st.text(min_size=1, max_size=40).filter(lambda s: canonical_id(s) != "")


def tokenizer(domain: str = "props", epoch: int = 1, salt: bytes | None = None) -> Tokenizer:
    return Tokenizer(KeyContext(root_key=ROOT, epoch=epoch, policy_domain=domain, report_salt=salt))


@given(st.lists(ids, min_size=2, max_size=50, unique_by=canonical_id))
def test_tokens_are_injective_within_a_domain(values: list[str]) -> None:
    t = tokenizer()
    tokens = {pseudonymize(v, domain=TokenDomain.AGENT, column="assistant_id", tokenizer=t) for v in values}
    assert len(tokens) == len(values)


@given(ids)
def test_tokens_differ_across_domains_epochs_and_reports(value: str) -> None:
    def tok(t: Tokenizer, domain: TokenDomain = TokenDomain.AGENT) -> object:
        return pseudonymize(value, domain=domain, column="c", tokenizer=t)

    base = tok(tokenizer())
    body = str(base).split("_", 1)[1]
    others = [
        tok(tokenizer(domain="other-recipient")),
        tok(tokenizer(), TokenDomain.PROJECT),
        tok(tokenizer(epoch=2)),
        tok(tokenizer(salt=b"r" * 32)),
    ]
    assert all(str(o).split("_", 1)[1] != body for o in others)


@given(ids)
def test_tokens_are_stable_within_a_run(value: str) -> None:
    t = tokenizer()
    first = pseudonymize(value, domain=TokenDomain.SUBJECT, column="user_id", tokenizer=t)
    assert first == pseudonymize(value, domain=TokenDomain.SUBJECT, column="user_id", tokenizer=tokenizer())


def test_tokens_are_the_same_across_processes() -> None:
    values = ["u-1", "Ünïcode-ß", "anna@example.com", "  padded  "]
    here = [
        pseudonymize(v, domain=TokenDomain.SUBJECT, column="user_id", tokenizer=tokenizer()) for v in values
    ]
    script = (
        "import json, sys\n"
        "from odeus_compliance.policy.crypto import KeyContext, Tokenizer\n"
        "from odeus_compliance.policy.model import TokenDomain\n"
        "from odeus_compliance.policy.operations import pseudonymize\n"
        "t = Tokenizer(KeyContext(root_key=bytes(range(100, 132)), epoch=1, policy_domain='props'))\n"
        "vals = json.loads(sys.stdin.read())\n"
        "out = [pseudonymize(v, domain=TokenDomain.SUBJECT, column='user_id', tokenizer=t) for v in vals]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(values), capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == here


count_maps = st.dictionaries(st.text(max_size=12), st.integers(min_value=0, max_value=10**9), max_size=12)


@given(count_maps, st.sampled_from(["pseudonymize", "keep", "allow"]))
def test_count_map_totals_are_preserved_and_json_stays_valid(counts: dict[str, int], mode: str) -> None:
    if mode == "pseudonymize":
        rule = MapKeys(keys=KeyAction.PSEUDONYMIZE, domain=TokenDomain.AGENT)
    elif mode == "keep":
        rule = MapKeys(keys=KeyAction.KEEP)
    else:
        rule = MapKeys(keys=KeyAction.KEEP, allow=frozenset(list(counts)[:1]))
    out = map_keys(json.dumps(counts), rule, column="assistants_to_messages", tokenizer=tokenizer())
    assert isinstance(out, str)
    parsed = json.loads(out)
    assert isinstance(parsed, dict)
    assert sum(parsed.values()) == sum(counts.values())


departments = st.sampled_from(["sales", "it", "legal", "hr", "ops"])
quarters = st.sampled_from(["2023-Q4", "2024-Q1", "2024-Q2", "2024-Q3", "2025-Q1"])
roles = st.sampled_from(["dev", "lead", "admin"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(departments, quarters, roles), max_size=60),
    st.integers(min_value=2, max_value=6),
    st.sampled_from([Decimal(0), Decimal("0.05"), Decimal("0.2")]),
)
def test_k_anonymity_holds_on_every_output(
    records: list[tuple[str, str, str]], k: int, limit: Decimal
) -> None:
    data: list[dict[str, Cell]] = [{"department": d, "joined_at": q, "role": r} for d, q, r in records]
    qis = ["department", "joined_at", "role"]
    hierarchy = {
        "department": [DateLevel.SUPPRESSED],
        "joined_at": [DateLevel.YEAR, DateLevel.SUPPRESSED],
        "role": [DateLevel.SUPPRESSED],
    }
    try:
        result = enforce_k_anonymity(
            data, quasi_identifiers=qis, k=k, suppression_limit=limit, hierarchy=hierarchy
        )
    except KAnonymityError:
        return
    classes = Counter(tuple(row[q] for q in qis) for row in result.rows)
    assert all(size >= k for size in classes.values())
    assert len(result.suppressed_rows) <= int(limit * len(data))
    assert len(result.rows) + len(result.suppressed_rows) == len(data)


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=30), max_size=10),
    st.integers(2, 10),
)
def test_suppressed_groups_cannot_be_recovered_from_the_total(people: dict[str, int], k: int) -> None:
    table = {name: GroupFigures(people=n, figures={"messages": n}) for name, n in people.items()}
    result = suppress_small_groups(table, k=k)
    assert all(group.people >= k for group in result.visible.values())
    if result.suppressed and result.total_publishable:
        # total minus the visible groups is a sum over the suppressed ones: never one group, never < k people
        assert len(result.suppressed) >= 2
        assert result.suppressed_people >= k
    if not result.total_publishable:
        assert not result.visible
