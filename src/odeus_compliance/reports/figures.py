"""The figures of one report, computed only from the policy engine's output CSV.

The engine writes either pseudonymous per-person rows (``kind = rows``) or grouped aggregates
(``kind = aggregates``, the strict policy); this module reads either and yields the same plain structure,
:class:`ReportFigures`, which is kept per report as JSON so later reports can show a trend.

Small groups: every grouped figure needs at least k people (the policy's ``min_group_size``). For per-person
rows the groups are formed here and :func:`~odeus_compliance.policy.disclosure.suppress_small_groups` hides
the small ones and, complementarily, enough others that "total minus visible" never reveals one group; the
hidden groups are published only as one pooled sum of at least k people. Aggregates arrive from the engine
already suppressed the same way. Rows are never ordered by a person's usage (no rankings).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.csv as pa_csv

from odeus_compliance.policy.aggregates import DIMENSIONS, EMPTY_GROUP, SUPPRESSED_GROUP, TOTAL
from odeus_compliance.policy.disclosure import GroupFigures, Suppression, suppress_small_groups
from odeus_compliance.policy.operations import format_number
from odeus_compliance.upstream.batches import DECIMAL_TYPE

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code; checked by tests

FORMAT = "odeus-compliance-report-figures/1"

# (label, dataset column) of the message channels, in the order the report shows them
CHANNELS: tuple[tuple[str, str], ...] = (
    ("chat", "messages_chat"),
    ("agents", "messages_assistants"),
    ("projects", "messages_projects"),
    ("actions", "action_messages"),
)
TOTAL_MESSAGES = "messages_total"
EXTRA_USAGE = "payg_consumption_in_period"
COST = "total_cost_usd"
TOKENS: tuple[str, ...] = (
    "total_input_tokens",
    "total_output_tokens",
    "cached_prompt_tokens",
    "cache_creation_tokens",
    "no_cache_tokens",
)
# the figures shown per group, in column order
GROUP_FIGURES: tuple[str, ...] = (TOTAL_MESSAGES, *(c for _, c in CHANNELS), EXTRA_USAGE, COST)
ACTIVE = "active_users"  # pseudo-figure: people with at least one message
USED_MAPS = {
    "agents": "assistants_to_messages",
    "projects": "projects_to_messages",
    "actions": "action_to_messages",
}
MODEL_MAP = "model_to_messages_total"
PERSON = "user_id"


class DatasetError(ValueError):
    """The dataset cannot be read as the engine's output (the message never quotes a cell)."""


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One row of a breakdown table.

    ``suppression`` is ``None`` for a visible group, ``"primary"`` (fewer than k people) or
    ``"complementary"`` for a hidden one (no figures), and ``"pooled"`` for the sum over the hidden groups.
    """

    name: str
    people: int | None
    active_users: int | None
    figures: dict[str, str]  # column -> plain decimal text; empty for a hidden group
    suppression: str | None = None


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One dimension (department, company, role, licence), one table."""

    dimension: str
    rows: tuple[GroupRow, ...]
    groups: int
    suppressed_primary: int
    suppressed_complementary: int
    total_publishable: bool
    source: str = "rows"
    """``rows``: from the dataset; ``groups``: from the engine's grouped figures, made before the k gate
    withheld this dimension from the rows (each group of at least k people, hidden ones pooled)."""


@dataclass(frozen=True, slots=True)
class ReportFigures:
    """Plain, JSON-serialisable figures of one report (decimals as plain text, counts as ints).

    ``None`` means "not in the dataset under this policy" (a dropped column, or aggregates only).
    """

    mode: str  # "rows" | "aggregates"
    k: int
    summary_publishable: bool  # the whole dataset holds at least k people
    people: int | None
    active_users: int | None
    messages_total: int | None
    messages: dict[str, int]  # channel label -> messages
    agents_used: int | None
    projects_used: int | None
    actions_used: int | None
    model_messages: tuple[tuple[str, int], ...]  # (model, messages), most used first
    extra_usage_usd: str | None
    extra_usage_people: int | None
    byok: bool
    tokens: dict[str, int]
    cost_usd: str | None
    breakdowns: tuple[Breakdown, ...]
    not_summable: tuple[str, ...] = ()  # numeric-looking columns the policy turned into labels (buckets)

    def model_share(self, messages: int) -> Decimal:
        """A model's share of all model messages, in percent with one decimal."""
        total = sum(n for _, n in self.model_messages)
        if total == 0:
            return Decimal(0)
        return (Decimal(messages) * 100 / Decimal(total)).quantize(Decimal("0.1"))

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready data (see :meth:`from_json`)."""
        return {
            "format": FORMAT,
            "mode": self.mode,
            "k": self.k,
            "summary_publishable": self.summary_publishable,
            "people": self.people,
            "active_users": self.active_users,
            "messages_total": self.messages_total,
            "messages": dict(self.messages),
            "agents_used": self.agents_used,
            "projects_used": self.projects_used,
            "actions_used": self.actions_used,
            "model_messages": [[name, n] for name, n in self.model_messages],
            "extra_usage_usd": self.extra_usage_usd,
            "extra_usage_people": self.extra_usage_people,
            "byok": self.byok,
            "tokens": dict(self.tokens),
            "cost_usd": self.cost_usd,
            "breakdowns": [
                {
                    "dimension": b.dimension,
                    "groups": b.groups,
                    "suppressed_primary": b.suppressed_primary,
                    "suppressed_complementary": b.suppressed_complementary,
                    "total_publishable": b.total_publishable,
                    "source": b.source,
                    "rows": [
                        {
                            "name": r.name,
                            "people": r.people,
                            "active_users": r.active_users,
                            "figures": dict(r.figures),
                            "suppression": r.suppression,
                        }
                        for r in b.rows
                    ],
                }
                for b in self.breakdowns
            ],
            "not_summable": list(self.not_summable),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportFigures:
        """Figures stored by :meth:`to_json`; a ``KeyError``/``ValueError`` means they are not figures."""
        if data.get("format") != FORMAT:
            msg = "not report figures of a known format"
            raise ValueError(msg)
        return cls(
            mode=str(data["mode"]),
            k=int(data["k"]),
            summary_publishable=bool(data["summary_publishable"]),
            people=_opt_int(data["people"]),
            active_users=_opt_int(data["active_users"]),
            messages_total=_opt_int(data["messages_total"]),
            messages={str(k): int(v) for k, v in data["messages"].items()},
            agents_used=_opt_int(data["agents_used"]),
            projects_used=_opt_int(data["projects_used"]),
            actions_used=_opt_int(data["actions_used"]),
            model_messages=tuple((str(name), int(n)) for name, n in data["model_messages"]),
            extra_usage_usd=_opt_str(data["extra_usage_usd"]),
            extra_usage_people=_opt_int(data["extra_usage_people"]),
            byok=bool(data["byok"]),
            tokens={str(k): int(v) for k, v in data["tokens"].items()},
            cost_usd=_opt_str(data["cost_usd"]),
            breakdowns=tuple(
                Breakdown(
                    dimension=str(b["dimension"]),
                    groups=int(b["groups"]),
                    suppressed_primary=int(b["suppressed_primary"]),
                    suppressed_complementary=int(b["suppressed_complementary"]),
                    total_publishable=bool(b["total_publishable"]),
                    source=str(b.get("source", "rows")),
                    rows=tuple(
                        GroupRow(
                            name=str(r["name"]),
                            people=_opt_int(r["people"]),
                            active_users=_opt_int(r["active_users"]),
                            figures={str(k): str(v) for k, v in r["figures"].items()},
                            suppression=_opt_str(r["suppression"]),
                        )
                        for r in b["rows"]
                    ),
                )
                for b in data["breakdowns"]
            ),
            not_summable=tuple(str(c) for c in data.get("not_summable", ())),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- reading the dataset --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One pseudonymous person in the PDF's capped per-person table (never ranked: ordered by token)."""

    token: str
    attributes: dict[str, str]  # department, role, ... as in the dataset
    figures: dict[str, str]


@dataclass(slots=True)
class _Group:
    people: int = 0
    active: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)


def _rows(path: Path) -> Iterator[list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.reader(handle)
    except (UnicodeDecodeError, csv.Error) as exc:
        msg = f"the dataset is not valid UTF-8 CSV ({type(exc).__name__})"
        raise DatasetError(msg) from None


def _number(text: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def compute_figures(
    dataset_csv: Path,
    *,
    kind: str,
    k: int,
    manifest_groups: Mapping[str, Any] | None = None,
    group_figures: Mapping[str, Any] | None = None,
    person_rows_cap: int = 0,
) -> tuple[ReportFigures, tuple[PersonRow, ...]]:
    """The report's figures, and up to ``person_rows_cap`` per-person rows (rows mode only).

    ``group_figures`` is the manifest's table of the engine's grouped figures (rows mode): a dimension the
    k gate withheld from every row is broken down from it instead.
    """
    if kind == "rows":
        figures, persons = _from_rows(dataset_csv, k=k, person_cap=person_rows_cap)
        if group_figures:
            figures = _with_group_figures(figures, group_figures)
        return figures, persons
    if kind == "aggregates":
        return _from_aggregates(dataset_csv, k=k, manifest_groups=manifest_groups or {}), ()
    msg = f"unknown dataset kind {kind!r}"
    raise DatasetError(msg)


# --- per-person rows, in Arrow (one read, vectorised sums; 100,000 rows in well under a second) -----


_PERSON_ATTRIBUTES = ("department", "role", "license_type")
_PERSON_FIGURES = (TOTAL_MESSAGES, *(c for _, c in CHANNELS), EXTRA_USAGE, COST)
_READ = frozenset(
    {*DIMENSIONS, *GROUP_FIGURES, *TOKENS, *USED_MAPS.values(), MODEL_MAP, PERSON, *_PERSON_ATTRIBUTES}
)


def _read_table(path: Path) -> pa.Table:
    """The dataset with every column as text (the engine wrote it; nothing is inferred)."""
    header = next(_rows(path), None)
    if not header:
        msg = "the dataset has no header"
        raise DatasetError(msg)
    if len(set(header)) != len(header):
        msg = "the dataset names a column twice"
        raise DatasetError(msg)
    try:
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False),  # less address space in the capped worker
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                include_columns=[h for h in header if h in _READ] or header[:1],  # skip what no figure uses
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        # Arrow's message quotes the offending row: never pass it on
        msg = f"the dataset is not valid UTF-8 CSV with one cell per header column ({type(exc).__name__})"
        raise DatasetError(msg) from None


def _decimals(column: Any) -> Any | None:
    """The column as exact decimals (empty cells null), or ``None`` if some cell is not a number."""
    cells = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    try:
        return pc.cast(cells, DECIMAL_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _sum(values: Any) -> Decimal:
    total = pc.sum(values).as_py()
    return Decimal(0) if total is None else Decimal(total)


# A count map as the engine writes it, with keys free of quotes, backslashes, commas and braces (tokens
# and model names): then splitting on "," is exact and everything runs in Arrow.
_SIMPLE_KEY = r'"[^"\\,{}]*"'
_SIMPLE_MAP = rf"^\{{(?:{_SIMPLE_KEY}:-?[0-9]+(?:,{_SIMPLE_KEY}:-?[0-9]+)*)?\}}$"
_SIMPLE_PAIR = r'^\{?"(?P<key>[^"\\,{}]*)":(?P<count>-?[0-9]+)\}?$'
_NOT_A_MAP = "a count-map cell of the dataset is not a JSON object of counts"


def _simple_pairs(column: Any) -> tuple[Any, Any] | None:
    """(key, count) of every pair of a JSON count-map column, as two Arrow arrays, when every cell is a
    compact map with simple keys (checked in Arrow): then splitting on "," is exact. ``None`` otherwise
    (the general path, :func:`_count_maps_parsed`, then reads or refuses the column)."""
    cells = pc.filter(column, pc.invert(pc.is_in(column, value_set=pa.array(["", "{}"]))))
    if len(cells) == 0:
        return pa.array([], pa.string()), pa.array([], pa.int64())
    if not pc.all(pc.match_substring_regex(cells, _SIMPLE_MAP)).as_py():
        return None
    pairs = pc.extract_regex(pc.list_flatten(pc.split_pattern(cells, ",")), _SIMPLE_PAIR)
    return pc.struct_field(pairs, "key"), pc.cast(pc.struct_field(pairs, "count"), pa.int64())


def _used_keys(column: Any) -> set[str]:
    """Keys with a positive count somewhere in a JSON count-map column (agents, projects, actions used)."""
    pairs = _simple_pairs(column)
    if pairs is None:
        return _count_maps_parsed(column)[0]
    keys, counts = pairs
    return set(pc.unique(pc.filter(keys, pc.greater(counts, 0))).to_pylist())


def _summed_counts(column: Any) -> dict[str, int]:
    """The summed count per key over a JSON count-map column (messages per model)."""
    pairs = _simple_pairs(column)
    if pairs is None:
        return _count_maps_parsed(column)[1]
    keys, counts = pairs
    summed = pa.table({"k": keys, "n": counts}).group_by("k").aggregate([("n", "sum")]).to_pylist()
    return {row["k"]: int(row["n_sum"]) for row in summed}


def _count_maps_parsed(column: Any) -> tuple[set[str], dict[str, int]]:
    """Keys with a positive count and the summed count per key, for any JSON: each distinct cell parsed
    once, weighted by its occurrences.

    All distinct cells go through one ``json.loads`` of a list; a cell that is not exactly one JSON object
    changes the list's length and is refused.
    """
    counted = pc.value_counts(column).to_pylist()
    cells = [item["values"] for item in counted if item["values"] not in ("", "{}")]
    weights = [item["counts"] for item in counted if item["values"] not in ("", "{}")]
    try:
        parsed = json.loads("[" + ",".join(cells) + "]") if cells else []
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, list) or len(parsed) != len(cells):
        raise DatasetError(_NOT_A_MAP)
    used: set[str] = set()
    totals: dict[str, int] = {}
    for counts, weight in zip(parsed, weights, strict=True):
        if not isinstance(counts, dict) or not all(type(n) is int for n in counts.values()):
            raise DatasetError(_NOT_A_MAP)
        for key, n in counts.items():
            if n > 0:
                used.add(key)
            totals[key] = totals.get(key, 0) + n * weight
    return used, totals


def _from_rows(path: Path, *, k: int, person_cap: int) -> tuple[ReportFigures, tuple[PersonRow, ...]]:
    table = _read_table(path)
    header = set(table.column_names)
    numbers: dict[str, Any] = {}
    not_summable: list[str] = []
    for column in (*GROUP_FIGURES, *TOKENS):
        if column in header:
            values = _decimals(table.column(column))
            if values is None:
                not_summable.append(column)
            else:
                numbers[column] = values
    sums = {column: _sum(values) for column, values in numbers.items()}
    active_flags = (
        pc.cast(pc.greater(pc.fill_null(numbers[TOTAL_MESSAGES], 0), 0), pa.int64())
        if TOTAL_MESSAGES in numbers
        else None
    )
    used: dict[str, set[str]] = {}
    models: dict[str, int] = {}
    for label, column in USED_MAPS.items():
        if column in header:
            used[label] = _used_keys(table.column(column))
    if MODEL_MAP in header:
        models = _summed_counts(table.column(MODEL_MAP))
    extra = numbers.get(EXTRA_USAGE)
    people = table.num_rows
    dims = [d for d in DIMENSIONS if d in header]
    figures_cols = [c for c in GROUP_FIGURES if c in numbers]
    breakdowns = tuple(
        _breakdown(
            d, _groups(table.column(d), numbers, active_flags, figures_cols), k=k, figures=figures_cols
        )
        for d in dims
    )
    figures = ReportFigures(
        mode="rows",
        k=k,
        summary_publishable=people >= k,
        people=people,
        active_users=None if active_flags is None else int(_sum(active_flags)),
        messages_total=int(sums[TOTAL_MESSAGES]) if TOTAL_MESSAGES in sums else None,
        messages={label: int(sums[c]) for label, c in CHANNELS if c in sums},
        agents_used=len(used["agents"]) if "agents" in used else None,
        projects_used=len(used["projects"]) if "projects" in used else None,
        actions_used=len(used["actions"]) if "actions" in used else None,
        model_messages=tuple(sorted(models.items(), key=lambda item: (-item[1], item[0]))),
        extra_usage_usd=None if extra is None else format_number(sums[EXTRA_USAGE]),
        extra_usage_people=None
        if extra is None
        else int(pc.sum(pc.greater(pc.fill_null(extra, 0), 0)).as_py() or 0),
        byok=COST in header or any(t in header for t in TOKENS),
        tokens={t: int(sums[t]) for t in TOKENS if t in sums},
        cost_usd=format_number(sums[COST]) if COST in sums else None,
        breakdowns=breakdowns,
        not_summable=tuple(sorted(not_summable)),
    )
    persons = _persons(table, numbers, person_cap) if person_cap and PERSON in header else ()
    return figures, persons


def _groups(
    column: Any, numbers: Mapping[str, Any], active: Any | None, figures: Sequence[str]
) -> dict[str, _Group]:
    """People, active users and sums per value of one dimension."""
    names = pc.if_else(pc.equal(column, ""), EMPTY_GROUP, column)
    data: dict[str, Any] = {"g": names, **{f: numbers[f] for f in figures}}
    if active is not None:
        data["active"] = active
    summed = (
        pa.table(data)
        .group_by("g")
        .aggregate(
            [
                ([], "count_all"),
                *((f, "sum") for f in figures),
                *((("active", "sum"),) if active is not None else ()),
            ]
        )
    )
    groups: dict[str, _Group] = {}
    for row in summed.to_pylist():
        groups[row["g"]] = _Group(
            people=row["count_all"],
            active=int(row.get("active_sum") or 0),
            sums={f: Decimal(row[f"{f}_sum"] or 0) for f in figures},
        )
    return groups


def _persons(table: pa.Table, numbers: Mapping[str, Any], cap: int) -> tuple[PersonRow, ...]:
    """The first ``cap`` people by pseudonym (never by usage: no ranking)."""
    order = pc.sort_indices(table.column(PERSON))[:cap]
    tokens = pc.take(table.column(PERSON), order).to_pylist()
    attributes = {
        a: pc.take(table.column(a), order).to_pylist() for a in _PERSON_ATTRIBUTES if a in table.column_names
    }
    figures = {f: pc.take(numbers[f], order).to_pylist() for f in _PERSON_FIGURES if f in numbers}
    return tuple(
        PersonRow(
            token=token,
            attributes={a: values[n] for a, values in attributes.items()},
            figures={f: format_number(values[n]) for f, values in figures.items() if values[n] is not None},
        )
        for n, token in enumerate(tokens)
    )


def _breakdown(dimension: str, groups: dict[str, _Group], *, k: int, figures: Sequence[str]) -> Breakdown:
    """Small-group suppression for one dimension (the active count rides along as a figure)."""
    inputs = {
        name: GroupFigures(g.people, {**{f: g.sums.get(f, Decimal(0)) for f in figures}, ACTIVE: g.active})
        for name, g in groups.items()
    }
    result = suppress_small_groups(inputs, k=k)
    rows: list[GroupRow] = []
    if result.total_publishable:
        for name in sorted(groups):
            group = inputs[name]
            why = result.suppressed.get(name)
            if why is None:
                rows.append(_group_row(name, group.people, group.figures, figures))
            else:
                rows.append(
                    GroupRow(name=name, people=None, active_users=None, figures={}, suppression=why.value)
                )
        if result.suppressed:
            pooled: dict[str, Decimal | int] = {}
            for name in result.suppressed:
                for figure, value in inputs[name].figures.items():
                    pooled[figure] = pooled.get(figure, 0) + value
            rows.append(_group_row(SUPPRESSED_GROUP, result.suppressed_people, pooled, figures, "pooled"))
    primary = sum(1 for why in result.suppressed.values() if why is Suppression.PRIMARY)
    return Breakdown(
        dimension=dimension,
        rows=tuple(rows),
        groups=len(groups),
        suppressed_primary=primary,
        suppressed_complementary=len(result.suppressed) - primary,
        total_publishable=result.total_publishable,
    )


def _group_row(
    name: str,
    people: int,
    values: Mapping[str, Decimal | int],
    figures: Sequence[str],
    suppression: str | None = None,
) -> GroupRow:
    return GroupRow(
        name=name,
        people=people,
        active_users=int(values[ACTIVE]),
        figures={f: format_number(Decimal(values[f])) for f in figures if f in values},
        suppression=suppression,
    )


# --- aggregates --------------------------------------------------------------------------------------


def _from_aggregates(path: Path, *, k: int, manifest_groups: Mapping[str, Any]) -> ReportFigures:
    reader = _rows(path)
    header = tuple(next(reader, ()))
    if header[:3] != ("dimension", "group", "people"):
        msg = "the aggregates dataset does not start with dimension,group,people"
        raise DatasetError(msg)
    figures = header[3:]
    tables, total, total_people, not_summable = _aggregate_rows(figures, enumerate(reader, start=2))
    breakdowns = []
    for dimension in DIMENSIONS:
        facts = manifest_groups.get(dimension)
        rows = tables.get(dimension, [])
        if facts is None and not rows:
            continue
        breakdowns.append(_aggregate_breakdown(dimension, rows, facts or {}, publishable=total is not None))
    return _aggregate_figures(
        total,
        people=total_people,
        columns=figures,
        k=k,
        breakdowns=tuple(breakdowns),
        not_summable=not_summable,
    )


def _aggregate_breakdown(
    dimension: str,
    rows: Sequence[GroupRow],
    facts: Mapping[str, Any],
    *,
    publishable: bool,
    source: str = "rows",
) -> Breakdown:
    return Breakdown(
        dimension=dimension,
        rows=tuple(rows),
        groups=int(facts.get("groups", len(rows))),
        suppressed_primary=int(facts.get("suppressed_primary", 0)),
        suppressed_complementary=int(facts.get("suppressed_complementary", 0)),
        total_publishable=publishable,
        source=source,
    )


def _with_group_figures(figures: ReportFigures, group_figures: Mapping[str, Any]) -> ReportFigures:
    """Breakdowns of withheld dimensions (every row ``*``) from the engine's grouped figures."""
    try:
        columns = tuple(str(c) for c in group_figures["columns"])
        raw_rows = [[str(cell) for cell in row] for row in group_figures["rows"]]
        facts: Mapping[str, Any] = group_figures.get("groups", {})
    except (KeyError, TypeError) as exc:
        msg = "the manifest's grouped figures are malformed"
        raise DatasetError(msg) from exc
    if columns[:3] != ("dimension", "group", "people"):
        msg = "the manifest's grouped figures do not start with dimension,group,people"
        raise DatasetError(msg)
    tables, total, _, _ = _aggregate_rows(columns[3:], enumerate(raw_rows, start=1))
    replaced = []
    for breakdown in figures.breakdowns:
        withheld = [r.name for r in breakdown.rows if r.suppression is None] == ["*"]
        if not (withheld and breakdown.dimension in tables):
            replaced.append(breakdown)
            continue
        replaced.append(
            _aggregate_breakdown(
                breakdown.dimension,
                tables[breakdown.dimension],
                facts.get(breakdown.dimension, {}),
                publishable=total is not None,
                source="groups",
            )
        )
    return dataclasses.replace(figures, breakdowns=tuple(replaced))


def _aggregate_rows(
    figures: Sequence[str], numbered: Iterable[tuple[int, list[str]]]
) -> tuple[dict[str, list[GroupRow]], dict[str, str] | None, int | None, set[str]]:
    """Rows ``dimension, group, people, figures...`` as breakdown rows per dimension, the total row's
    figures and people, and the figure columns that held non-numbers."""
    header_width = 3 + len(figures)
    total: dict[str, str] | None = None
    total_people: int | None = None
    tables: dict[str, list[GroupRow]] = {}
    not_summable: set[str] = set()
    for number, row in numbered:
        if len(row) != header_width:
            msg = f"line {number} of the dataset has {len(row)} cells, the header {header_width}"
            raise DatasetError(msg)
        dimension, name, people_text = row[0], row[1], row[2]
        people = _number(people_text)
        if people is None:
            msg = f"line {number} of the dataset has no people count"
            raise DatasetError(msg)
        values: dict[str, str] = {}
        for column, text in zip(figures, row[3:], strict=True):
            if text == "":
                continue
            if _number(text) is None:
                not_summable.add(column)
                continue
            values[column] = text
        if dimension == TOTAL:
            total, total_people = values, int(people)
            continue
        suppression = "pooled" if name == SUPPRESSED_GROUP else None
        tables.setdefault(dimension, []).append(
            GroupRow(
                name=name,
                people=int(people),
                active_users=None,
                figures={f: values[f] for f in GROUP_FIGURES if f in values},
                suppression=suppression,
            )
        )
    return tables, total, total_people, not_summable


def _aggregate_figures(
    total: dict[str, str] | None,
    *,
    people: int | None,
    columns: Sequence[str],
    k: int,
    breakdowns: tuple[Breakdown, ...],
    not_summable: set[str],
) -> ReportFigures:
    values = total or {}

    def count(column: str) -> int | None:
        return int(Decimal(values[column])) if column in values else None

    return ReportFigures(
        mode="aggregates",
        k=k,
        summary_publishable=total is not None,
        people=people,
        active_users=None,  # a sum of counts cannot tell who was active
        messages_total=count(TOTAL_MESSAGES),
        messages={label: int(Decimal(values[c])) for label, c in CHANNELS if c in values},
        agents_used=None,  # per-person counts cannot be summed into distinct agents
        projects_used=None,
        actions_used=None,
        model_messages=(),
        extra_usage_usd=values.get(EXTRA_USAGE),
        extra_usage_people=None,
        byok=COST in columns or any(t in columns for t in TOKENS),
        tokens={t: int(Decimal(values[t])) for t in TOKENS if t in values},
        cost_usd=values.get(COST),
        breakdowns=breakdowns,
        not_summable=tuple(sorted(not_summable)),
    )
