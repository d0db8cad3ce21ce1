"""The figures of a dataset of grouped aggregates (``kind = aggregates``).

Both are tables of ``dimension, group, people, figures...`` rows that the engine has already put through
small-group suppression (groups under k and their complementary groups published only as one pooled
``(suppressed)`` row of at least k people, the ``total`` row only when it holds k): this module reads them
as they are, with Python's ``csv`` module (they are a few rows per dimension).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from odeus_compliance.policy.aggregates import DIMENSIONS, SUPPRESSED_GROUP, TOTAL
from odeus_compliance.reports.figures import (
    CHANNELS,
    COST,
    EXTRA_USAGE,
    GROUP_FIGURES,
    TOKENS,
    TOTAL_MESSAGES,
    Breakdown,
    DatasetError,
    DatasetSource,
    GroupRow,
    ReportFigures,
    dataset_lines,
)


def _number(text: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def figures_from_aggregates(
    path: DatasetSource, *, k: int, manifest_groups: Mapping[str, Any]
) -> ReportFigures:
    """The figures of an aggregates dataset; ``manifest_groups`` is the manifest's suppression report per
    dimension (``disclosure.groups``)."""
    reader = dataset_lines(path)
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
) -> Breakdown:
    return Breakdown(
        dimension=dimension,
        rows=tuple(rows),
        groups=int(facts.get("groups", len(rows))),
        suppressed_primary=int(facts.get("suppressed_primary", 0)),
        suppressed_complementary=int(facts.get("suppressed_complementary", 0)),
        total_publishable=publishable,
        suppressed_difference=int(facts.get("suppressed_difference", 0)),
        suppressed_dominance=int(facts.get("suppressed_dominance", 0)),
    )


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
