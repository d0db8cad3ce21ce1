"""The streaming engine on small export files: hostile cells, leaks, k gate, atomic output, manifest."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.policy import manifest as manifest_module
from odeus_compliance.policy.disclosure import KAnonymityError
from odeus_compliance.policy.engine import PolicyRun, apply_to_file
from odeus_compliance.policy.keys import engine_keys, manifest_key
from odeus_compliance.policy.leakscan import LeakFound
from odeus_compliance.policy.loader import load_policy, parse_policy
from odeus_compliance.policy.model import Policy
from odeus_compliance.policy.rows import UnknownColumnError
from odeus_compliance.upstream.columns import ExportType, columns_for
from odeus_compliance.upstream.errors import MalformedExport
from tests.support.policies import stable_tokens

POLICIES = Path(__file__).resolve().parents[2] / "policies"
# per-person rows behind the k-anonymity gate: the shipped policies release no such rows any more
GATED_ROWS = Path(__file__).resolve().parents[1] / "support" / "policies" / "gated_rows.toml"
MASTER = bytes(range(32))
HEADER = [c.name for c in columns_for(ExportType.USERS, byok=False)]


def default_policy() -> Policy:
    return load_policy(GATED_ROWS)


def user_row(n: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(HEADER, "0")
    row.update(
        period_start="2026-10-01",
        period_end="2026-10-31",
        org_id="org_abc123",
        user_id=f"usr_{n:012x}",
        name=f"Person{n} Example{n}",
        email=f"person{n}.example{n}@corp.example",
        role="member",
        joined_at="2026-01-15",
        department="Sales",
        company_name="Corp GmbH",
        license_type="enterprise",
        payg_limit_current="25.00",
        payg_consumption_in_period="3.66",
        payg_utilization_pct_current="14.64",
        assistants_to_messages='{"asst_1":3,"asst_2":4}',
        projects_to_messages="{}",
        model_to_messages_total='{"gpt-4o":7}',
        action_to_messages='{"web-search":1}',
    )
    row.update(changes)
    return row


def write_export(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    names = header or HEADER
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # so that a lone CR in a cell gets quoted
    writer.writerow(names)
    for row in rows:
        writer.writerow([row.get(name, "") for name in names])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


def _stable_policy() -> Policy:
    return parse_policy(stable_tokens(GATED_ROWS.read_text(encoding="utf-8")), source="gated_rows.toml")


def test_with_stable_tokens_the_gate_keeps_the_policys_levels_and_only_suppresses(tmp_path: Path) -> None:
    # four quarters of 3 rows each: a searching gate would publish years; with stable tokens the levels are
    # the policy's (quarters), so the classes under k are refused (or suppressed within the limit), the
    # same way every month
    rows = [user_row(n, joined_at=["2026-01-15", "2026-04-15"][n % 2]) for n in range(12)]
    rows += [user_row(n, joined_at="2026-07-15") for n in range(12, 14)]
    with pytest.raises(KAnonymityError, match="column rules"):
        run(tmp_path, rows, _stable_policy())
    written = read_rows(run(tmp_path, rows))
    assert {row["joined_at"] for row in written} == {"2026"}


def run(tmp_path: Path, rows: list[dict[str, Any]], policy: Policy | None = None, **kw: Any) -> Path:
    policy = policy or default_policy()
    source = write_export(tmp_path / "raw.csv", rows, kw.pop("header", None))
    out = tmp_path / "out.csv"
    apply_to_file(
        policy,
        ExportType.USERS,
        source=source,
        out=out,
        manifest_path=tmp_path / "out.manifest.json",
        keys=engine_keys(MASTER, policy),
    )
    return out


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_are_pseudonymised_in_input_order_and_identifiers_are_gone(tmp_path: Path) -> None:
    rows = [user_row(n) for n in range(12)]
    out = run(tmp_path, rows)
    written = read_rows(out)
    assert len(written) == 12
    assert "name" not in written[0]
    assert "email" not in written[0]
    assert "messages_total_rank" not in written[0]
    tokens = [r["user_id"] for r in written]
    assert len(set(tokens)) == 12
    assert all(t.startswith("u1_") and len(t) == 29 for t in tokens)
    text = out.read_text(encoding="utf-8")
    for row in rows:
        assert row["user_id"] not in text
        assert row["email"] not in text
        assert row["name"] not in text
    assert written[0]["joined_at"] == "2026-Q1"
    assert json.loads(written[0]["assistants_to_messages"]) == {
        k: v for k, v in json.loads(written[0]["assistants_to_messages"]).items() if k.startswith("a1_")
    }
    assert sum(json.loads(written[0]["assistants_to_messages"]).values()) == 7


def test_reruns_are_byte_identical_and_the_manifest_verifies(tmp_path: Path) -> None:
    rows = [user_row(n) for n in range(10)]
    first = run(tmp_path, rows, _stable_policy()).read_bytes()
    manifest_one = (tmp_path / "out.manifest.json").read_bytes()
    second = run(tmp_path, rows, _stable_policy()).read_bytes()
    assert first == second
    assert manifest_one == (tmp_path / "out.manifest.json").read_bytes()
    key, key_id = manifest_key(MASTER)
    manifest = manifest_module.loads(manifest_one)
    manifest_module.verify(manifest, key=key)
    assert manifest["mac_key_id"] == key_id
    assert MASTER.hex() not in manifest_one.decode()
    assert key.hex() not in manifest_one.decode()
    tampered = {**manifest, "input": {**manifest["input"], "rows": 11}}
    with pytest.raises(manifest_module.ManifestError):
        manifest_module.verify(tampered, key=key)
    user_id = next(c for c in manifest["columns"] if c["column"] == "user_id")
    assert user_id["operation"] == "pseudonymize"
    assert user_id["domain"] == "subject"
    assert len(user_id["key_id"]) == 16
    assert user_id["transformed"] == 10
    email = next(c for c in manifest["columns"] if c["column"] == "email")
    assert email["dropped"] == 10
    assert email["key_id"] is None


def test_formula_injection_is_neutralised_in_text_but_negative_numbers_stay(tmp_path: Path) -> None:
    hostile = ['=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
    hostile += ["x;=cmd|' /C calc'!A0", "\u00a0=1+1", "\ufeff+1", "\u200b@x", "\uff1d1+1", " -2"]
    rows = [user_row(n, department=hostile[n % len(hostile)]) for n in range(36)]
    rows += [user_row(100 + n, department="Plain", messages_total="-5") for n in range(5)]
    policy = parse_policy(
        (GATED_ROWS).read_text(encoding="utf-8").replace("min_group_size = 5", "min_group_size = 2"),
        source="t",
    )
    written = read_rows(run(tmp_path, rows, policy))
    departments = {r["department"] for r in written}
    assert all(d == "Plain" or d.startswith("'") for d in departments - {"x;'=cmd|' /C calc'!A0"})
    assert {'\'=HYPERLINK("x")', "x;'=cmd|' /C calc'!A0", "'\u00a0=1+1", "'\uff1d1+1"} <= departments
    # a German-locale spreadsheet splits at ';': no cell it reads starts a formula either
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=";"):
        assert not any(cell.lstrip().startswith(("=", "+", "@", "\uff1d")) for cell in row), row
    assert {r["messages_total"] for r in written if r["department"] == "Plain"} == {"-5"}


def test_quotes_and_newlines_in_names_round_trip_and_never_leak(tmp_path: Path) -> None:
    rows = [user_row(n, name=f'Robert "Bob"\nSmith{n}') for n in range(6)]
    out = run(tmp_path, rows)
    assert len(read_rows(out)) == 6
    assert "Bob" not in out.read_text(encoding="utf-8")


def test_a_name_inside_another_columns_free_text_fails_the_run(tmp_path: Path) -> None:
    rows = [user_row(n) for n in range(8)]
    rows[5]["department"] = "Team of PERSON3   example3 (lead)"
    with pytest.raises(LeakFound) as caught:
        run(tmp_path, rows)
    assert caught.value.column == "department"
    assert caught.value.row == 6
    assert "person3" not in str(caught.value).lower()
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["raw.csv"]


def test_an_upper_cased_email_as_a_json_key_fails_the_run(tmp_path: Path) -> None:
    rows = [user_row(n) for n in range(8)]
    rows[2]["model_to_messages_total"] = '{"PERSON7.EXAMPLE7@CORP.EXAMPLE":3}'
    with pytest.raises(LeakFound) as caught:
        run(tmp_path, rows)
    assert caught.value.column == "model_to_messages_total"
    assert caught.value.row == 3
    assert not (tmp_path / "out.csv").exists()


def test_short_and_placeholder_values_do_not_fail_runs(tmp_path: Path) -> None:
    rows = [user_row(n, user_id=str(n), name="Al") for n in range(8)]
    rows[0]["department"] = "1"  # equals a (too short) user id
    rows[1]["name"] = "Anonymous"
    rows[1]["department"] = "Anonymous"
    out = run(tmp_path, rows)
    assert len(read_rows(out)) >= 6


def test_k_anonymity_suppresses_small_classes_and_holds_on_the_output(tmp_path: Path) -> None:
    rows = [user_row(n) for n in range(40)]
    rows.append(user_row(99, department="Legal"))  # a class of one
    out = run(tmp_path, rows)
    written = read_rows(out)
    assert len(written) == 40
    assert "Legal" not in {r["department"] for r in written}
    classes = Counter(
        tuple(r[q] for q in ("department", "company_name", "role", "license_type", "joined_at"))
        for r in written
    )
    assert min(classes.values()) >= 5
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["disclosure"]["rows_suppressed"] == 1
    assert manifest["disclosure"]["smallest_class"] == 40


def test_the_k_gate_refuses_with_a_clear_message_and_no_output(tmp_path: Path) -> None:
    rows = [user_row(n, department=f"Dept{n}", company_name=f"Co{n}", role=f"r{n}") for n in range(4)]
    with pytest.raises(KAnonymityError, match="k-anonymity with k=5 cannot be reached"):
        run(tmp_path, rows)
    assert not (tmp_path / "out.csv").exists()


def test_malformed_input_names_the_row_and_leaves_nothing(tmp_path: Path) -> None:
    source = write_export(tmp_path / "raw.csv", [user_row(n) for n in range(6)])
    source.write_text(source.read_text() + "2026-10-01,2026-10-31,org\n", encoding="utf-8")
    with pytest.raises(MalformedExport) as caught:
        apply_to_file(
            default_policy(),
            ExportType.USERS,
            source=source,
            out=tmp_path / "out.csv",
            manifest_path=tmp_path / "m.json",
            keys=engine_keys(MASTER, default_policy()),
        )
    assert "org_abc123" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]


def test_a_cut_file_is_refused(tmp_path: Path) -> None:
    source = write_export(tmp_path / "raw.csv", [user_row(n) for n in range(6)])
    source.write_bytes(source.read_bytes()[:-1])
    with pytest.raises(MalformedExport, match="cut short"):
        apply_to_file(
            default_policy(),
            ExportType.USERS,
            source=source,
            out=tmp_path / "out.csv",
            manifest_path=tmp_path / "m.json",
            keys=engine_keys(MASTER, default_policy()),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]


def test_a_crash_mid_run_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [user_row(n) for n in range(20)]
    calls = {"n": 0}
    original = PolicyRun.feed

    def crashing(self: PolicyRun, batch: Any) -> None:
        calls["n"] += 1
        original(self, batch)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(PolicyRun, "feed", crashing)
    with pytest.raises(RuntimeError):
        run(tmp_path, rows)
    assert calls["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]


def test_unknown_columns_are_dropped_and_listed_or_refused(tmp_path: Path) -> None:
    header = [*HEADER[:10], "odeus_beta_signal", *HEADER[10:]]
    rows = [user_row(n, odeus_beta_signal="secret-ish") for n in range(6)]
    out = run(tmp_path, rows, header=header)
    assert "odeus_beta_signal" not in out.read_text().splitlines()[0]
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["unknown_columns_dropped"] == ["column 11"]  # by position: a header may be personal
    strict = load_policy(POLICIES / "strict.toml")
    with pytest.raises(UnknownColumnError):
        run(tmp_path, rows, strict, header=header)


def test_strict_policy_writes_only_grouped_aggregates(tmp_path: Path) -> None:
    rows = [user_row(n, department="Sales" if n < 12 else "Legal") for n in range(15)]
    out = run(tmp_path, rows, load_policy(POLICIES / "strict.toml"))
    written = read_rows(out)
    assert list(written[0])[:3] == ["dimension", "group", "people"]
    departments = {r["group"]: r for r in written if r["dimension"] == "department"}
    assert "Legal" not in departments  # 3 people < k = 10; complementary: Sales hidden too
    assert "Sales" not in departments
    total = next(r for r in written if r["dimension"] == "total")
    assert total["people"] == "15"
    assert "u1_" not in out.read_text()
    assert "usr_" not in out.read_text()


def test_upstream_placeholders_and_opaque_ids_stay_anonymous(tmp_path: Path) -> None:
    rows = [user_row(n, user_id=f"anon_{n:016x}", name="Anonymous", email="") for n in range(8)]
    policy = default_policy()
    out = run(tmp_path, rows, policy)
    written = read_rows(out)
    assert len({r["user_id"] for r in written}) == 8
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    hows = {a["column"]: a["how"] for a in manifest["upstream_anonymised"]}
    assert hows == {"user_id": "opaque_ids", "name": "placeholder", "email": "empty"}
    user_id = next(c for c in manifest["columns"] if c["column"] == "user_id")
    assert "opaque" in user_id["effective"]


def test_only_an_empty_cell_is_empty_in_a_file_na_null_and_nan_are_values(tmp_path: Path) -> None:
    # Arrow's CSV reader would read "NA", "null", "NaN" and "N/A" as missing by default
    departments = ["NA", "null", "NaN", "N/A"]
    rows = [user_row(n, department=departments[n % 4]) for n in range(20)]
    written = read_rows(run(tmp_path, rows))
    assert Counter(row["department"] for row in written) == Counter(dict.fromkeys(departments, 5))


def test_cells_an_operation_leaves_alone_cannot_break_the_csv(tmp_path: Path) -> None:
    # white space only: not tokenised or encrypted, so written as it is; CR and LF must not split the row
    policy = load_policy(POLICIES / "example.toml")
    blanks = ["\r", "\n", " \r\n ", "\t"]
    rows = [user_row(n, user_id="", name=blanks[n % 4], email=blanks[(n + 1) % 4]) for n in range(12)]
    rows += [user_row(n) for n in range(12, 40)]
    out = run(tmp_path, rows, policy)
    with out.open(encoding="utf-8", newline="") as handle:
        parsed = list(csv.reader(handle))
    assert len(parsed) == 1 + len(read_rows(out))
    assert {len(row) for row in parsed} == {len(parsed[0])}


@pytest.mark.parametrize("blank", ["\t", "\r", " \r\n "])
def test_blank_dates_survive_a_gate_that_generalises_them_further(tmp_path: Path, blank: str) -> None:
    # four quarters of 3 rows each and 6 blank dates: k = 5 needs the dates as years (pass 2 reads the
    # spooled lines back to generalise them); a blank cell is written as it came, quoted where needed
    dates = ["2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15"]
    rows = [user_row(n, joined_at=dates[n % 4]) for n in range(12)]
    rows += [user_row(n, joined_at=blank) for n in range(12, 18)]
    written = read_rows(run(tmp_path, rows))
    assert Counter(row["joined_at"] for row in written) == {"2026": 12, blank: 6}
