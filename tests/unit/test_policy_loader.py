"""Policy files: the shipped ones validate; every bad policy is explained with its line; hashes are stable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from odeus_compliance.policy.canonical import canonical_json, policy_hash
from odeus_compliance.policy.loader import check_policy_file, load_policy, parse_policy
from odeus_compliance.policy.model import (
    DateLevel,
    GeneralizeDate,
    Keep,
    Linkability,
    MapKeys,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.problems import PolicyError, Problem
from odeus_compliance.policy.sourcemap import SourceMap
from odeus_compliance.upstream.columns import ExportType, known_columns

POLICIES = Path(__file__).resolve().parents[2] / "policies"
DEFAULT = (POLICIES / "default.toml").read_text(encoding="utf-8")


def problems(text: str) -> tuple[Problem, ...]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.toml")
    return info.value.problems


def set_line(text: str, key: str, new: str, *, section: str = "[columns.users]") -> str:
    """Replace the first ``key = ...`` line after ``section`` with ``new``."""
    start = text.index(section)
    match = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE).search(text, start)
    assert match is not None, key
    return text[: match.start()] + new + text[match.end() :]


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


# --- shipped policies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "strict", "example"])
def test_shipped_policies_validate(name: str) -> None:
    assert check_policy_file(POLICIES / f"{name}.toml") == ()
    policy = load_policy(POLICIES / f"{name}.toml")
    assert policy.name == name
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", policy_hash(policy))


def test_default_policy_is_works_council_safe() -> None:
    policy = load_policy(POLICIES / "default.toml")
    users = policy.rules_for(ExportType.USERS).columns
    for export, rules in policy.exports.items():
        for name, column in known_columns(export).items():
            rule = rules.columns[name]
            if column.identifying or column.rank:
                assert not isinstance(rule, Keep), (export, name)
    assert users["user_id"] == Pseudonymize(domain=TokenDomain.SUBJECT)
    assert users["joined_at"] == GeneralizeDate(level=DateLevel.QUARTER)
    assert isinstance(users["assistants_to_messages"], MapKeys)
    assert users["assistants_to_messages"].domain is TokenDomain.AGENT
    assert policy.disclosure.min_group_size == 5
    assert policy.covers(ExportType.AGENTS)


def test_strict_policy_publishes_aggregates_only() -> None:
    policy = load_policy(POLICIES / "strict.toml")
    assert policy.disclosure.per_person_rows is False
    assert policy.pseudonymization.linkability is Linkability.PER_REPORT


def test_example_policy_uses_every_operation() -> None:
    policy = load_policy(POLICIES / "example.toml")
    ops = {rule.op for rules in policy.exports.values() for rule in rules.columns.values()}
    assert ops == {"keep", "drop", "pseudonymize", "encrypt", "generalize", "mask", "map"}


# --- hash ------------------------------------------------------------------------------------------------


def test_hash_ignores_comments_whitespace_key_order_and_number_spelling() -> None:
    base = policy_hash(parse_policy(DEFAULT, source="a"))
    reformatted = "# a new comment\n\n" + DEFAULT.replace(" = ", "=").replace("0.05", "0.050")
    reordered = set_line(DEFAULT, "period_start", 'period_end = "keep"')
    reordered = set_line(reordered, "period_end", 'period_start = "keep"', section="period_end =")
    assert policy_hash(parse_policy(reformatted, source="b")) == base
    assert policy_hash(parse_policy(reordered, source="c")) == base


def test_hash_treats_an_explicit_default_like_an_implicit_one() -> None:
    implicit = DEFAULT.replace('linkability = "stable"', "")
    assert policy_hash(parse_policy(implicit, source="a")) == policy_hash(parse_policy(DEFAULT, source="b"))


def test_hash_changes_with_meaning() -> None:
    base = policy_hash(parse_policy(DEFAULT, source="a"))
    changed = DEFAULT.replace("min_group_size = 5", "min_group_size = 6")
    assert policy_hash(parse_policy(changed, source="b")) != base
    changed = set_line(DEFAULT, "role", 'role = "drop"')
    assert policy_hash(parse_policy(changed, source="c")) != base


def test_canonical_json_is_compact_and_sorted() -> None:
    text = canonical_json(parse_policy(DEFAULT, source="a"))
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text)["format"] == "odeus-compliance-policy/1"


# --- bad policies ----------------------------------------------------------------------------------------

BAD_COLUMN_RULES = [
    ("user_id", 'user_id = "hash"', "unknown operation 'hash'", "keyed HMAC"),
    ("user_id", 'user_id = "pseudonymise"', "unknown operation", 'spell it op = "pseudonymize"'),
    ("user_id", 'user_id = "pseudonimize"', "unknown operation", "did you mean 'pseudonymize'"),
    ("user_id", 'user_id = "scramble"', "unknown operation 'scramble'", "valid operations"),
    ("user_id", 'user_id = { domain = "subject" }', "has no operation", 'add op = "..."'),
    ("user_id", "user_id = 3", "must be an operation name or a table", None),
    ("role", 'role = { op = "keep", colour = "red" }', "unknown key 'colour' in the keep rule", None),
    ("role", 'role = { op = "drop", reason = "" }', "reason must be a non-empty string", None),
    ("email", 'email = "keep"', "identifies a person", "allow_identifying = true"),
    ("email", 'email = { op = "keep", allow_identifying = true }', "identifies a person", 'reason = "..."'),
    (
        "role",
        'role = { op = "keep", allow_identifying = true, reason = "x" }',
        "'role' is not identifying",
        None,
    ),
    (
        "role",
        'role = { op = "keep", allow_identifying = "yes" }',
        "allow_identifying must be true or false",
        None,
    ),
    (
        "messages_total_rank",
        'messages_total_rank = "keep"',
        "individual performance ranking",
        "allow_ranking",
    ),
    ("role", 'role = { op = "keep", allow_ranking = true, reason = "x" }', "'role' is not a ranking", None),
    ("assistants_to_messages", 'assistants_to_messages = "keep"', "is a JSON count map", 'op = "map"'),
    ("joined_at", 'joined_at = "pseudonymize"', "pseudonymize is for identifiers", None),
    ("user_id", 'user_id = { op = "pseudonymize", domain = "agent" }', "must use the subject domain", None),
    ("role", 'role = { op = "pseudonymize", domain = "subject" }', "does not name a person", None),
    (
        "role",
        'role = { op = "pseudonymize", domain = "agnet" }',
        "unknown token domain",
        "did you mean 'agent'",
    ),
    ("messages_total", 'messages_total = "encrypt"', "encrypt is for text", None),
    ("role", 'role = "mask"', "not an e-mail column", None),
    ("role", 'role = { op = "generalize", date = "year" }', "generalize is for dates and numbers", None),
    ("joined_at", 'joined_at = { op = "generalize" }', "needs date =", None),
    (
        "joined_at",
        'joined_at = { op = "generalize", date = "quartr" }',
        "needs date =",
        "did you mean 'quarter'",
    ),
    ("joined_at", 'joined_at = { op = "generalize", round = 1 }', "is a date; round is for numbers", None),
    (
        "messages_total",
        'messages_total = { op = "generalize", date = "year" }',
        "date is for date columns",
        None,
    ),
    ("messages_total", 'messages_total = "generalize"', "needs buckets, round or top_code", None),
    (
        "messages_total",
        'messages_total = { op = "generalize", buckets = [10, 5] }',
        "strictly increasing",
        None,
    ),
    (
        "messages_total",
        'messages_total = { op = "generalize", buckets = [] }',
        "non-empty list of numbers",
        None,
    ),
    (
        "messages_total",
        'messages_total = { op = "generalize", buckets = [1], round = 1 }',
        "cannot be combined",
        None,
    ),
    ("messages_total", 'messages_total = { op = "generalize", round = 0 }', "round must be a positive", None),
    (
        "messages_total",
        'messages_total = { op = "generalize", round = "ten" }',
        "round must be a number",
        None,
    ),
    (
        "messages_total",
        'messages_total = { op = "generalize", top_code = true }',
        "top_code must be a number",
        None,
    ),
    ("messages_total", 'messages_total = { op = "map", keys = "keep" }', "not a JSON count map", None),
    ("assistants_to_messages", 'assistants_to_messages = { op = "map" }', 'needs keys = "keep"', None),
    (
        "assistants_to_messages",
        'assistants_to_messages = { op = "map", keys = "pseudonymize", allow = ["a"] }',
        "only applies with keys",
        None,
    ),
    (
        "assistants_to_messages",
        'assistants_to_messages = { op = "map", keys = "keep", domain = "agent" }',
        "domain applies only",
        None,
    ),
    (
        "assistants_to_messages",
        'assistants_to_messages = { op = "map", keys = "keep", allow = "a" }',
        "list of strings",
        None,
    ),
    (
        "assistants_to_messages",
        'assistants_to_messages = { op = "map", keys = "keep", other = "" }',
        "other must be",
        None,
    ),
]


@pytest.mark.parametrize(("key", "line", "message", "hint"), BAD_COLUMN_RULES)
def test_bad_column_rules_are_explained_at_their_line(
    key: str, line: str, message: str, hint: str | None
) -> None:
    text = set_line(DEFAULT, key, line)
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    problem = found[0]
    assert message in problem.message
    if hint is not None:
        assert problem.hint is not None
        assert hint in problem.hint
    assert problem.line == line_of(text, line)
    assert str(problem).startswith(f"p.toml:{problem.line}: ")


BAD_FILE_LEVEL = [
    (
        lambda t: t.replace("[disclosure]\n", "[disclosur]\n"),
        "unknown key 'disclosur'",
        "did you mean 'disclosure'",
    ),
    (
        lambda t: t.replace('version = "1.0"', 'version = "1.0"\ncolour = "red"'),
        "unknown key 'colour' in [policy]",
        None,
    ),
    (lambda t: t.replace('version = "1.0"\n', ""), "policy.version is missing", 'add version = "1.0"'),
    (
        lambda t: t.replace('version = "1.0"', "version = 1"),
        "policy.version must be a non-empty string",
        None,
    ),
    (
        lambda t: t.replace('name = "default"', 'name = "Default Policy"'),
        "policy.name must be lower-case",
        None,
    ),
    (
        lambda t: t.replace('on_unknown_column = "drop"', 'on_unknown_column = "dorp"'),
        "has no value 'dorp'",
        "'drop'",
    ),
    (
        lambda t: t.replace('domain = "usage-reports"', 'domain = "Usage Reports"'),
        "pseudonymization.domain",
        None,
    ),
    (lambda t: t.replace('domain = "usage-reports"', ""), "pseudonymization.domain is missing", None),
    (
        lambda t: t.replace('linkability = "stable"', 'linkability = "forever"'),
        "has no value 'forever'",
        None,
    ),
    (lambda t: t.replace("min_group_size = 5", "min_group_size = 1"), "at least 2", None),
    (lambda t: t.replace("min_group_size = 5", "min_group_size = true"), "at least 2", None),
    (
        lambda t: t.replace("min_group_size = 5", "min_group_sise = 3"),
        "unknown key 'min_group_sise'",
        "min_group_size",
    ),
    (lambda t: t.replace("suppression_limit = 0.05", "suppression_limit = 1.5"), "between 0 and 1", None),
    (lambda t: t.replace("per_person_rows = false", 'per_person_rows = "yes"'), "true or false", None),
    (
        lambda t: t.replace('["department", "company_name"', '["departmnt", "company_name"'),
        "not a users column",
        "'department'",
    ),
    (
        lambda t: t.replace('["department", "company_name"', '["email", "company_name"'),
        "cannot be a quasi-identifier",
        None,
    ),
    (
        lambda t: t.replace('["department", "company_name"', '["role", "company_name"'),
        "lists a column twice",
        None,
    ),
    (
        lambda t: t.replace('joined_at = ["year", "*"]', 'joined_at = ["month"]'),
        "step 'month' is not possible",
        "year",
    ),
    (
        lambda t: t.replace('joined_at = ["year", "*"]', 'joined_at = ["*", "year"]'),
        "coarser than the one before",
        None,
    ),
    (lambda t: t.replace('department = ["*"]', 'department = ["year"]'), "step 'year' is not possible", None),
    (lambda t: t.replace('department = ["*"]', 'department = "*"'), "a hierarchy is a list of steps", None),
    (
        lambda t: t.replace('department = ["*"]', 'department = ["*"]\nuser_id = ["*"]'),
        "not a quasi-identifier",
        None,
    ),
    (
        lambda t: t.replace("[columns.api-keys]", "[columns.api-kyes]"),
        "unknown export type 'api-kyes'",
        "'api-keys'",
    ),
    (
        lambda t: t.replace("[columns.projects]", "[columns.agents]"),
        "agents is the same export as assistants",
        None,
    ),
    (
        lambda t: t.replace('email = { op = "drop"', 'emial = { op = "drop"'),
        "column 'emial' is not a users column",
        "'email'",
    ),
    (lambda t: t.replace('role = "keep"\n', "", 1), "users column 'role' has no rule", 'add role = "drop"'),
    (lambda t: t.replace('model = "keep"\n', "", 1), "users column 'model' has no rule", None),
]


@pytest.mark.parametrize(("edit", "message", "hint"), BAD_FILE_LEVEL)
def test_bad_files_are_explained(edit: object, message: str, hint: str | None) -> None:
    text = edit(DEFAULT)  # type: ignore[operator]
    found = problems(text)
    matching = [p for p in found if message in p.message]
    assert len(matching) == 1, [str(p) for p in found]
    assert len(found) == 1, [str(p) for p in found]
    if hint is not None:
        assert matching[0].hint is not None
        assert hint in matching[0].hint


def test_missing_tables_and_empty_coverage() -> None:
    found = problems('[policy]\nname = "x"\n')
    messages = " | ".join(p.message for p in found)
    assert "policy.version is missing" in messages
    assert "policy.works_agreement is missing" in messages
    assert "the [pseudonymization] table is missing" in messages
    assert "the [columns] table is missing" in messages
    found = problems(DEFAULT[: DEFAULT.index("[columns.users]")] + "[columns]\n")
    assert any("covers no export type" in p.message for p in found)


def test_toml_syntax_errors_name_their_line() -> None:
    text = DEFAULT.replace('role = "keep"', 'role = "keep', 1)
    (problem,) = problems(text)
    assert problem.message.startswith("not valid TOML")
    assert problem.line == line_of(text, 'role = "keep')


def test_every_problem_is_collected_in_one_pass() -> None:
    text = DEFAULT.replace("min_group_size = 5", "min_group_size = 0")
    text = set_line(text, "email", 'email = "keep"')
    text = set_line(text, "role", 'role = "scramble"')
    text = text.replace('version = "1.0"', 'version = "1.0"\nextra = 1')
    found = problems(text)
    assert len(found) == 4
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_a_typo_is_reported_once_not_also_as_a_missing_column() -> None:
    found = problems(DEFAULT.replace('email = { op = "drop"', 'emial = { op = "drop"'))
    assert [p.message for p in found] == ["column 'emial' is not a users column"]


def test_problems_never_echo_string_values_beyond_words_of_the_format() -> None:
    text = DEFAULT.replace('works_agreement = "Template', 'works_agreement = "Template')
    text = set_line(text, "email", 'email = { op = "keep", reason = "secret-reason-text" }')
    (problem,) = problems(text)
    assert "secret-reason-text" not in str(problem)


def test_file_name_must_match_the_policy_name(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(DEFAULT, encoding="utf-8")
    (problem,) = check_policy_file(path)
    assert "differs from the file name 'other'" in problem.message
    assert problem.file == str(path)
    assert problem.line == line_of(DEFAULT, 'name = "default"')


def test_unreadable_files_are_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00")
    (problem,) = check_policy_file(path)
    assert "cannot be read" in problem.message


# --- source map -----------------------------------------------------------------------------------------


def test_source_map_finds_tables_dotted_and_quoted_keys() -> None:
    text = '# c\n[a]\nx = 1\n"q.k" = 2\n[b . "c"]\ny.z = 3\ns = """\nfake = 1\n"""\nw = 4\n'
    lines = SourceMap.scan(text)
    assert lines.line_of(("a",)) == 2
    assert lines.line_of(("a", "x")) == 3
    assert lines.line_of(("a", "q.k")) == 4
    assert lines.line_of(("b", "c")) == 5
    assert lines.line_of(("b", "c", "y", "z")) == 6
    assert lines.line_of(("b", "c", "fake")) == 5  # inside a multi-line string: not a key
    assert lines.line_of(("b", "c", "w")) == 10
    assert lines.line_of(("nope",)) == 1


def test_with_stable_tokens_a_gate_that_chooses_per_report_is_refused() -> None:
    from tests.support.policies import GATED_ROWS, stable_tokens  # noqa: PLC0415

    searching = GATED_ROWS.read_text(encoding="utf-8")
    assert parse_policy(searching, source="p.toml").disclosure.gate_searches
    stable = searching.replace('linkability = "per_report"', 'linkability = "stable"')
    [problem] = problems(stable)
    assert "may not choose a generalisation per report" in problem.message
    assert problem.line == line_of(stable, "[disclosure.hierarchy]")
    fixed = parse_policy(stable_tokens(searching), source="p.toml")
    assert not fixed.disclosure.gate_searches
