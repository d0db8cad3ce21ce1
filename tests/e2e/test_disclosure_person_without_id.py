"""A person named twice, once by id and once by e-mail or name alone (a row whose id cell is empty), must not
count as two people.

Found by a privacy review of the release audit: the audit counts people by their subject tokens, and a token
made from an e-mail never links to the token made from the same person's id, so the row without an id
counted as a second person: a group of four was published as five, and a person holding most of a sum over
two such rows passed the dominance limit as two people. Odeus sends one row per user, each with its id (an
opaque one where user-level data is off), so a users export that mixes rows with an id and rows naming
someone without one is refused, whichever comes first and in whichever batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.engine import PolicyRun
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.source import CsvFileInput
from odeus_compliance.upstream.columns import ExportType
from tests.e2e.test_disclosure_attacks import POLICIES, _report
from tests.unit.test_policy_engine import MASTER, user_row, write_export


def test_a_persons_row_without_an_id_beside_rows_with_ids_is_refused(tmp_path: Path) -> None:
    # 4 people in Sales and 20 in Engineering; person 0 again, the id cell empty, the same e-mail and name
    rows = [user_row(n, department="Sales" if n < 4 else "Engineering") for n in range(24)]
    rows.append(user_row(0, user_id="", department="Sales"))
    with pytest.raises(DisclosureError, match="without a user id"):
        _report(tmp_path, rows, "default")
    assert not (tmp_path / "out.csv").exists()


def test_a_dominant_person_split_over_a_row_without_an_id_is_refused(tmp_path: Path) -> None:
    # Legal: 30 people with 10 messages each and person 0 with 250 + 250 (62.5 % of 800) over two rows
    rows = [user_row(n, department="Legal", messages_total="10") for n in range(1, 31)]
    rows += [user_row(n, department="Engineering", messages_total="10") for n in range(31, 60)]
    rows.append(user_row(0, department="Legal", messages_total="250"))
    rows.append(user_row(0, user_id="", email="", department="Legal", messages_total="250"))  # name only
    with pytest.raises(DisclosureError, match="without a user id"):
        _report(tmp_path, rows, "default")


def _run_in_small_batches(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    policy = load_policy(POLICIES / "default.toml")
    reader = CsvFileInput(write_export(tmp_path / "raw.csv", rows), ExportType.USERS, block_bytes=4096)
    run = PolicyRun(
        policy, ExportType.USERS, keys=engine_keys(MASTER, policy), sink=CsvSink(tmp_path / "out.csv"),
        spool_dir=tmp_path,
    )  # fmt: skip
    try:
        run.begin(reader.schema)
        batches = 0
        for batch in reader.batches():
            run.feed(batch)
            batches += 1
        assert batches > 2
        run.finish(input_facts={"source": "file"})
    finally:
        run.abort()


@pytest.mark.parametrize("first", ["without_id", "with_ids"])
def test_the_refusal_holds_whichever_kind_comes_first_in_another_batch(tmp_path: Path, first: str) -> None:
    with_ids = [user_row(n, department="Engineering") for n in range(1, 80)]
    without = [user_row(0, user_id="", department="Engineering")]
    rows = without + with_ids if first == "without_id" else with_ids + without
    with pytest.raises(DisclosureError, match="without a user id"):
        _run_in_small_batches(tmp_path, rows)


def test_rows_that_all_lack_an_id_or_name_nobody_are_not_refused(tmp_path: Path) -> None:
    # the user_id column absent (an anonymising variant Odeus may send): one row per user, counted so
    rows = [{k: v for k, v in user_row(n).items() if k != "user_id"} for n in range(30)]
    _report(tmp_path, rows, "default")
    # rows naming nobody at all beside rows with ids: nobody to count twice
    blank = [user_row(n, user_id="", name="", email="") for n in range(5)]
    (tmp_path / "b").mkdir()
    _report(tmp_path / "b", [*blank, *(user_row(n) for n in range(5, 40))], "default")


@pytest.mark.parametrize(
    "disguised", ["\u200b", "\u00a0", " \u2060 ", "Anonymous\u200b", "\uff21nonymous", "N/A"]
)
def test_an_id_that_names_nobody_once_canonical_counts_as_no_id(tmp_path: Path, disguised: str) -> None:
    # invisible characters or a disguised placeholder in the id cell: the row names its person by e-mail
    # and name only, beside rows with ids, and must be refused like an empty id (not counted as one more)
    rows = [user_row(n, department="Sales" if n < 4 else "Engineering") for n in range(24)]
    rows.append(user_row(0, user_id=disguised, department="Sales"))
    with pytest.raises(DisclosureError, match="without a user id"):
        _report(tmp_path, rows, "default")
