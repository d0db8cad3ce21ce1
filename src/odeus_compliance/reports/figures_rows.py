"""The figures of a dataset of pseudonymous per-person rows (``kind = rows``), read and summed in Arrow.

One read of the columns a figure uses (every cell as text: the engine wrote them, nothing is inferred), sums
and group sums by Arrow kernels, the JSON count maps (agents, projects, actions, models) split in Arrow when
they have the engine's compact shape, parsed once per distinct cell otherwise.

Small groups: the groups of each dimension are formed here and
:func:`~odeus_compliance.policy.disclosure.suppress_small_groups` hides those under k and, complementarily,
enough others that "total minus visible" never reveals one group; the hidden groups are published only as
one pooled sum of at least k people. The capped per-person table is ordered by pseudonym, never by a
person's usage (no rankings).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.csv as pa_csv

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.aggregates import DIMENSIONS, EMPTY_GROUP, LINKED_FIGURES, SUPPRESSED_GROUP
from odeus_compliance.policy.disclosure import DisclosureError, Suppression
from odeus_compliance.policy.operations import format_number
from odeus_compliance.policy.release_audit import ReleasePlan, audit_release
from odeus_compliance.reports.figures import (
    ACTIVE,
    CHANNELS,
    COST,
    EXTRA_USAGE,
    GROUP_FIGURES,
    MODEL_MAP,
    PERSON,
    TOKENS,
    TOTAL_MESSAGES,
    USED_MAPS,
    Breakdown,
    DatasetError,
    DatasetSource,
    GroupRow,
    PersonRow,
    ReportFigures,
    dataset_lines,
)
from odeus_compliance.upstream.batches import DECIMAL_TYPE


@dataclass(slots=True)
class _Group:
    people: int = 0
    active: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)


_PERSON_ATTRIBUTES = ("department", "role", "license_type")
_PERSON_FIGURES = (TOTAL_MESSAGES, *(c for _, c in CHANNELS), EXTRA_USAGE, COST)
_READ = frozenset(
    {*DIMENSIONS, *GROUP_FIGURES, *TOKENS, *USED_MAPS.values(), MODEL_MAP, PERSON, *_PERSON_ATTRIBUTES}
)


def _read_table(path: DatasetSource) -> pa.Table:
    """The dataset with every column as text (the engine wrote it; nothing is inferred)."""
    header = next(dataset_lines(path), None)
    if not header:
        msg = "the dataset has no header"
        raise DatasetError(msg)
    if len(set(header)) != len(header):
        msg = "the dataset names a column twice"
        raise DatasetError(msg)
    try:
        return pa_csv.read_csv(
            path if isinstance(path, Path) else io.BytesIO(path),
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
    cells = ac.if_else(ac.equal(column, ""), pa.scalar(None, pa.string()), column)
    try:
        return ac.cast(cells, DECIMAL_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _sum(values: Any) -> Decimal:
    total = ac.sum(values).as_py()
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
    cells = ac.filter(column, ac.invert(ac.is_in(column, value_set=pa.array(["", "{}"]))))
    if len(cells) == 0:
        return pa.array([], pa.string()), pa.array([], pa.int64())
    if not ac.all(ac.match_substring_regex(cells, _SIMPLE_MAP)).as_py():
        return None
    pairs = ac.extract_regex(ac.list_flatten(ac.split_pattern(cells, ",")), _SIMPLE_PAIR)
    return ac.struct_field(pairs, "key"), ac.cast(ac.struct_field(pairs, "count"), pa.int64())


def _used_keys(column: Any) -> set[str]:
    """Keys with a positive count somewhere in a JSON count-map column (agents, projects, actions used)."""
    pairs = _simple_pairs(column)
    if pairs is None:
        return _count_maps_parsed(column)[0]
    keys, counts = pairs
    used = ac.unique(ac.filter(keys, ac.greater(counts, 0))).to_pylist()
    return set(cast("list[str]", used))  # the key of a matched pair is never null


def _per_person_counts(column: Any, people: Any) -> pa.Table:
    """``k`` (key), ``p`` (person), ``n`` (their summed count) of a JSON count-map column: in Arrow when
    every cell is a compact map with simple keys, else each cell parsed."""
    used = ac.invert(ac.is_in(column, value_set=pa.array(["", "{}"])))
    cells, owners = ac.filter(column, used), ac.filter(people, used)
    if len(cells) and ac.all(ac.match_substring_regex(cells, _SIMPLE_MAP)).as_py():
        lists = ac.split_pattern(cells, ",")
        pairs = ac.extract_regex(ac.list_flatten(lists), _SIMPLE_PAIR)
        table = pa.table(
            {
                "k": ac.struct_field(pairs, "key"),
                "p": ac.take(owners, ac.list_parent_indices(lists)),
                "n": ac.cast(ac.struct_field(pairs, "count"), pa.int64()),
            }
        )
        return table.group_by(["k", "p"]).aggregate([("n", "sum")]).rename_columns(["k", "p", "n"])
    persons: list[str] = []
    keys: list[str] = []
    counts: list[int] = []
    for person, cell in zip(people.to_pylist(), column.to_pylist(), strict=True):
        if cell in ("", "{}"):
            continue
        try:
            parsed = json.loads(cell)
        except json.JSONDecodeError:
            raise DatasetError(_NOT_A_MAP) from None
        if not isinstance(parsed, dict) or not all(type(n) is int for n in parsed.values()):
            raise DatasetError(_NOT_A_MAP)
        for key, n in parsed.items():
            persons.append(person)
            keys.append(key)
            counts.append(n)
    table = pa.table(
        {
            "k": pa.array(keys, pa.string()),
            "p": pa.array(persons, pa.string()),
            "n": pa.array(counts, pa.int64()),
        }
    )
    return table.group_by(["k", "p"]).aggregate([("n", "sum")]).rename_columns(["k", "p", "n"])


OTHER_MODELS = "(other models together)"


@dataclass(frozen=True, slots=True)
class _Use:
    messages: int
    people: int
    top: int  # the largest count of one person


def _use(counts: pa.Table, keys: set[str]) -> _Use:
    """Messages, distinct people with a positive count and the largest single count, over ``keys``."""
    chosen = counts.filter(ac.is_in(counts.column("k"), value_set=pa.array(sorted(keys), pa.string())))
    per_person = chosen.group_by("p").aggregate([("n", "sum")])
    values = per_person.column("n_sum")
    positive = per_person.filter(ac.greater(values, 0))
    return _Use(
        messages=int(ac.sum(values).as_py() or 0),
        people=positive.num_rows,
        top=int(ac.max(values).as_py() or 0) if per_person.num_rows else 0,
    )


def model_table(counts: pa.Table, *, k: int, dominance: float) -> tuple[tuple[str, int], ...]:
    """Messages per model where each shown model has k people behind it and no person holds more than
    ``dominance`` of its messages; the rest pooled into one row that meets the same rules (else more
    models join it, smallest first); nothing at all when only the pool would remain."""

    def safe(use: _Use) -> bool:  # no one (a model nobody used), or k people and no dominant one
        return (use.people == 0 or use.people >= k) and not (
            use.messages > 0 and use.top > dominance * use.messages
        )

    names = sorted(set(cast("list[str]", counts.column("k").to_pylist())))
    uses = {name: _use(counts, {name}) for name in names}
    pooled = {name for name in names if not safe(uses[name])}
    visible = sorted((n for n in names if n not in pooled), key=lambda n: (uses[n].people, n))
    while pooled and visible and not safe(_use(counts, pooled)):
        pooled.add(visible.pop(0))
    if pooled and not visible:
        return ()  # one pooled row would only repeat the total of messages
    shown = sorted(((n, uses[n].messages) for n in visible), key=lambda item: (-item[1], item[0]))
    if pooled:
        shown.append((OTHER_MODELS, _use(counts, pooled).messages))
    return tuple(shown)


def _count_maps_parsed(column: Any) -> tuple[set[str], dict[str, int]]:
    """Keys with a positive count and the summed count per key, for any JSON: each distinct cell parsed
    once, weighted by its occurrences.

    All distinct cells go through one ``json.loads`` of a list; a cell that is not exactly one JSON object
    changes the list's length and is refused.
    """
    counted = ac.value_counts_list(column)
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


def figures_from_rows(
    path: DatasetSource, *, k: int, person_cap: int, dominance: float = 1.0
) -> tuple[ReportFigures, tuple[PersonRow, ...]]:
    """The figures of a per-person dataset, and its first ``person_cap`` people by pseudonym."""
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
        ac.cast(ac.greater(ac.fill_null(numbers[TOTAL_MESSAGES], 0), 0), pa.int64())
        if TOTAL_MESSAGES in numbers
        else None
    )
    used: dict[str, set[str]] = {}
    for label, column in USED_MAPS.items():
        if column in header:
            used[label] = _used_keys(table.column(column))
    people = table.num_rows
    if PERSON in header:  # distinct people, however often the dataset names one
        people = int(ac.count_distinct(table.column(PERSON)).as_py())
    model_rows: tuple[tuple[str, int], ...] = ()
    if MODEL_MAP in header and PERSON in header:
        counts = _per_person_counts(table.column(MODEL_MAP), table.column(PERSON))
        model_rows = model_table(counts, k=k, dominance=dominance)
    extra = numbers.get(EXTRA_USAGE)
    dims = [d for d in DIMENSIONS if d in header]
    figures_cols = [c for c in GROUP_FIGURES if c in numbers]
    audited = [*figures_cols, *(t for t in TOKENS if t in numbers)]  # every published sum
    plan, persons_table = _release_plan(table, numbers, dims, audited, k=k, dominance=dominance)
    withheld = plan.withheld_figures
    sums = {c: value for c, value in sums.items() if c not in withheld}
    active_by = _active_by_group(persons_table, dims)
    breakdowns = tuple(
        _breakdown(
            d,
            _groups(table.column(d), numbers, active_flags, figures_cols),
            plan,
            figures=[f for f in figures_cols if f not in withheld],
            active=active_by[d],
        )
        for d in dims
    )
    active_people = active_by.get(_TOTAL, {}).get(_TOTAL)
    payers = _count_positive(persons_table, EXTRA_USAGE)
    figures = ReportFigures(
        mode="rows",
        k=k,
        summary_publishable=plan.total_published,
        people=people,
        active_users=active_people if active_flags is not None and plan.active_in_total else None,
        messages_total=int(sums[TOTAL_MESSAGES]) if TOTAL_MESSAGES in sums else None,
        messages={label: int(sums[c]) for label, c in CHANNELS if c in sums},
        agents_used=len(used["agents"]) if "agents" in used else None,
        projects_used=len(used["projects"]) if "projects" in used else None,
        actions_used=len(used["actions"]) if "actions" in used else None,
        model_messages=model_rows if people >= k else (),
        extra_usage_usd=None
        if extra is None or EXTRA_USAGE not in sums
        else format_number(sums[EXTRA_USAGE]),
        extra_usage_people=None
        if extra is None or payers is None or not _safe_split(people, payers, k)
        else payers,
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
    names = ac.if_else(ac.equal(column, ""), EMPTY_GROUP, column)
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
    order = ac.sort_indices(table.column(PERSON))[:cap]
    # the dataset is read with empty cells as "" (never null), so its text columns hold only str
    tokens = cast("list[str]", ac.take(table.column(PERSON), order).to_pylist())
    attributes = {
        a: cast("list[str]", ac.take(table.column(a), order).to_pylist())
        for a in _PERSON_ATTRIBUTES
        if a in table.column_names
    }
    figures = {f: ac.take(numbers[f], order).to_pylist() for f in _PERSON_FIGURES if f in numbers}
    return tuple(
        PersonRow(
            token=token,
            attributes={a: values[n] for a, values in attributes.items()},
            figures={f: format_number(values[n]) for f, values in figures.items() if values[n] is not None},
        )
        for n, token in enumerate(tokens)
    )


def _release_plan(
    table: pa.Table,
    numbers: Mapping[str, Any],
    dims: Sequence[str],
    figures: Sequence[str],
    *,
    k: int,
    dominance: float,
) -> tuple[ReleasePlan, pa.Table]:
    """The release audit over the dataset's distinct people (rows merged by pseudonym; a person in two
    groups of one dimension is refused), and that table of people."""
    person = (
        table.column(PERSON)
        if PERSON in table.column_names
        else pa.array([f"#{i}" for i in range(table.num_rows)], pa.string())
    )
    columns: dict[str, Any] = {"p": person}
    for dimension in dims:
        columns[dimension] = ac.if_else(
            ac.equal(table.column(dimension), ""), EMPTY_GROUP, table.column(dimension)
        )
    for figure in figures:
        columns[figure] = ac.fill_null(ac.cast(numbers[figure], pa.float64()), 0.0)
    merged = (
        pa.table(columns)
        .group_by("p")
        .aggregate(
            [
                *((d, "min") for d in dims),
                *((d, "count_distinct") for d in dims),
                *((f, "sum") for f in figures),
            ]
        )
    )
    people = merged.select([*(f"{d}_min" for d in dims), *(f"{f}_sum" for f in figures)]).rename_columns(
        [*dims, *figures]
    )
    for dimension in dims:
        if merged.num_rows and ac.max(merged.column(f"{dimension}_count_distinct")).as_py() > 1:
            msg = f"the dataset names one person in more than one {dimension} group"
            raise DatasetError(msg)
    active = None
    if TOTAL_MESSAGES in figures:
        people = people.append_column(
            _ACTIVE, ac.cast(ac.greater(people.column(TOTAL_MESSAGES), 0), pa.float64())
        )
        active = _ACTIVE
    try:
        plan = audit_release(
            people,
            dimensions=dims,
            figures=figures,
            k=k,
            dominance=dominance,
            linked=LINKED_FIGURES,
            active=active,
        )
    except DisclosureError as exc:
        raise DatasetError(str(exc)) from None
    return plan, people


_ACTIVE = "__active"
_TOTAL = "__total"


def _active_by_group(people: pa.Table, dims: Sequence[str]) -> dict[str, dict[str, int]]:
    """Active people (at least one message) per group of each dimension, and in all (``_TOTAL``), counted
    over distinct people."""
    if _ACTIVE not in people.column_names:
        return {d: {} for d in (*dims, _TOTAL)}
    out = {_TOTAL: {_TOTAL: int(ac.sum(people.column(_ACTIVE)).as_py() or 0)}}
    for dimension in dims:
        summed = people.group_by(dimension).aggregate([(_ACTIVE, "sum")]).to_pylist()
        out[dimension] = {row[dimension]: int(row[f"{_ACTIVE}_sum"] or 0) for row in summed}
    return out


def _count_positive(people: pa.Table, figure: str) -> int | None:
    if figure not in people.column_names:
        return None
    return int(ac.sum(ac.greater(people.column(figure), 0)).as_py() or 0)


def _safe_split(size: int, part: int, k: int) -> bool:
    """Both the part and the rest are nobody or at least k people."""
    return all(n == 0 or n >= k for n in (part, size - part))


def _breakdown(
    dimension: str,
    groups: dict[str, _Group],
    plan: ReleasePlan,
    *,
    figures: Sequence[str],
    active: Mapping[str, int],
) -> Breakdown:
    """One dimension's table as the release audit allows it (the active count only where it may)."""
    release = plan.tables[dimension]
    shown = plan.total_published and release.published
    rows: list[GroupRow] = []
    if shown:
        for name in sorted(groups):
            why = release.suppressed.get(name)
            if why is None:
                rows.append(
                    _group_row(
                        name, release.groups[name], _figures(groups[name], figures, plan, active.get(name, 0))
                    )
                )
            else:
                rows.append(
                    GroupRow(name=name, people=None, active_users=None, figures={}, suppression=why.value)
                )
        if release.suppressed:
            pooled: dict[str, Decimal | int] = {}
            for name in release.suppressed:
                for figure, value in _figures(groups[name], figures, plan, active.get(name, 0)).items():
                    pooled[figure] = pooled.get(figure, 0) + value
            rows.append(_group_row(SUPPRESSED_GROUP, plan.pooled_people[dimension], pooled, "pooled"))
    counts = dict.fromkeys(Suppression, 0)
    for why in release.suppressed.values():
        counts[why] += 1
    return Breakdown(
        dimension=dimension,
        rows=tuple(rows),
        groups=len(release.groups),
        suppressed_primary=counts[Suppression.PRIMARY],
        suppressed_complementary=counts[Suppression.COMPLEMENTARY],
        total_publishable=shown,
        suppressed_difference=counts[Suppression.DIFFERENCE],
        suppressed_dominance=counts[Suppression.DOMINANCE],
    )


def _figures(
    group: _Group, figures: Sequence[str], plan: ReleasePlan, active: int
) -> dict[str, Decimal | int]:
    values: dict[str, Decimal | int] = {f: group.sums.get(f, Decimal(0)) for f in figures}
    if plan.active_in_tables:
        values[ACTIVE] = active  # distinct active people of the group, as the audit counted them
    return values


def _group_row(
    name: str, people: int, values: Mapping[str, Decimal | int], suppression: str | None = None
) -> GroupRow:
    return GroupRow(
        name=name,
        people=people,
        active_users=int(values[ACTIVE]) if ACTIVE in values else None,
        figures={f: format_number(Decimal(v)) for f, v in values.items() if f != ACTIVE},
        suppression=suppression,
    )
