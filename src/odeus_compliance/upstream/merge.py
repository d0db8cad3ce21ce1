"""Merging the parts of an export that Odeus refused as too large and the client fetched in pieces.

When Odeus answers 400 "Export too large", the client splits the period at local midnights, fetches each
part (splitting again where needed, down to single days) and merges the parts into the export that the
whole period would have given. The rules, shared with the simulator so both compute the same figures:

* Rows are matched by their identity: users by ``user_id``, assistants/agents by ``assistant_id``, api-keys
  by ``api_key_id``, projects by ``project_id``, models by ``name`` + ``provider``; plus the grouping column
  (``model``, ``source`` or ``deployment``) when the export is grouped. A row missing from a part counts as
  zero activity there.
* Counts, tokens and money are summed (exactly: ints and Decimals). A cell missing in every part stays
  missing.
* ``period_start`` is the earliest and ``period_end`` the latest of all parts, on every row (a row absent
  from some parts still covers the whole period, as in the unsplit export).
* JSON maps (``*_to_messages*``) are merged by key, counts added.
* Distinct counts are recounted from the merged maps: ``assistants_messaged`` = keys with a count above 0
  in ``assistants_to_messages``; ``projects_messaged`` likewise from ``projects_to_messages`` and
  ``action_messaged`` from ``action_to_messages``.
* ``*_rank`` columns are recomputed over all merged rows as competition ranking ("1224"): 1 is the highest
  figure of the column without ``_rank`` (``messages_total_rank`` ranks ``messages_total``); a row's rank is
  1 + the number of rows with a strictly higher figure; a row without a figure has no rank.
* ``payg_utilization_pct_current`` = ``round(100 * payg_consumption_in_period / payg_limit_current, 2)``
  (Decimal, half up), 0 when the limit is 0, missing when the limit is missing.
* Descriptive, "current" columns (names, e-mail, role, department, company, licence, ``joined_at``,
  ``payg_limit_current``, ``org_id``, model and provider names, ``bring_your_keys``, any other text,
  date or boolean column) come from the latest part in which the row appears.

Columns that cannot be merged exactly make the split refuse with :class:`UpstreamTooLarge` instead of
inventing numbers: the assistants' ``unique_users``, ``active_users`` and ``messages_per_user`` (a user
active in two parts would be counted twice), the ``avg_``/``min_``/``max_`` token columns, and any column
this client does not know (its meaning, and so its merge, is unknown).

Memory: merging holds the merged key space, one row per entity (user, assistant, key, project or model,
times model when grouped), never the parts' rows: each part is folded in as it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from odeus_compliance.upstream.batches import Row
from odeus_compliance.upstream.columns import COLUMNS, GROUP_COLUMN, Column, ExportType, Kind, known_columns
from odeus_compliance.upstream.errors import UpstreamProtocolError, UpstreamTooLarge

IDENTITY: dict[ExportType, tuple[str, ...]] = {
    ExportType.USERS: ("user_id",),
    ExportType.ASSISTANTS: ("assistant_id",),
    ExportType.AGENTS: ("assistant_id",),
    ExportType.API_KEYS: ("api_key_id",),
    ExportType.PROJECTS: ("project_id",),
    ExportType.MODELS: ("name", "provider"),
}
GROUP_NAMES = frozenset(column.name for column in GROUP_COLUMN.values())

DISTINCT_FROM = {
    "assistants_messaged": "assistants_to_messages",
    "projects_messaged": "projects_to_messages",
    "action_messaged": "action_to_messages",
}
UTILISATION = "payg_utilization_pct_current"
UTILISATION_INPUTS = ("payg_consumption_in_period", "payg_limit_current")
LATEST_NUMBERS = frozenset({"payg_limit_current"})
NOT_EXACT = frozenset({"unique_users", "active_users", "messages_per_user"})
NOT_EXACT_PREFIXES = ("avg_", "min_", "max_")
_CENT = Decimal("0.01")


def not_exact_reason(name: str, known: bool) -> str | None:
    """Why the column ``name`` cannot be merged exactly, or ``None`` when it can."""
    if not known:
        return "the client does not know this column, so it cannot know how to merge it"
    if name in NOT_EXACT:
        return "it counts distinct users or averages over them, which parts cannot add up"
    if name.startswith(NOT_EXACT_PREFIXES):
        return "averages, minima and maxima of parts do not give the whole period's exactly"
    return None


def refuse_unmergeable(export_type: ExportType, names: Iterable[str], *, why_split: str) -> None:
    """Raise :class:`UpstreamTooLarge` if any of ``names`` cannot be merged exactly."""
    known = known_columns(export_type)
    for name in names:
        reason = not_exact_reason(name, name in known)
        if reason is not None:
            label = f"column {name!r}" if name in known else "a column the client does not know"
            msg = (
                f"{why_split}; splitting the period is not possible because {label} cannot be "
                f"merged exactly ({reason}). Request a shorter period."
            )
            raise UpstreamTooLarge(msg)


def refuse_unmergeable_type(export_type: ExportType, *, why_split: str) -> None:
    """Refuse at once for export types that always carry a column that cannot be merged exactly."""
    always = [c.name for c in COLUMNS[export_type] if not c.byok_only]
    refuse_unmergeable(export_type, always, why_split=why_split)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How each column of the export is merged."""

    key: tuple[str, ...]
    sums: tuple[str, ...]
    maps: tuple[str, ...]
    latest: tuple[str, ...]
    ranks: tuple[tuple[str, str], ...]  # (rank column, figure column)
    distinct: tuple[tuple[str, str], ...]  # (count column, map column)
    utilisation: bool


def _plan(export_type: ExportType, columns: Sequence[Column]) -> _Plan:
    names = {c.name for c in columns}
    key = tuple(n for n in IDENTITY[export_type] if n in names) + tuple(n for n in GROUP_NAMES if n in names)
    if len(key) < len(IDENTITY[export_type]):
        msg = f"the {export_type.value} export lacks its identity column(s), so parts cannot be matched"
        raise UpstreamTooLarge(msg)
    sums, maps, latest, ranks, distinct = [], [], [], [], []
    for column in columns:
        name = column.name
        if name in key or name in {"period_start", "period_end"}:
            continue
        if column.rank:
            figure = name.removesuffix("_rank")
            if figure not in names:
                msg = f"rank column {name!r} arrived without {figure!r}, so it cannot be recomputed"
                raise UpstreamTooLarge(msg)
            ranks.append((name, figure))
        elif name in DISTINCT_FROM:
            if DISTINCT_FROM[name] not in names:
                msg = f"column {name!r} arrived without {DISTINCT_FROM[name]!r}, so it cannot be recounted"
                raise UpstreamTooLarge(msg)
            distinct.append((name, DISTINCT_FROM[name]))
        elif column.kind is Kind.JSON_MAP:
            maps.append(name)
        elif name == UTILISATION:
            continue
        elif column.kind in (Kind.INT, Kind.DECIMAL) and name not in LATEST_NUMBERS:
            sums.append(name)
        else:
            latest.append(name)
    utilisation = UTILISATION in names and all(n in names for n in UTILISATION_INPUTS)
    if UTILISATION in names and not utilisation:
        msg = f"{UTILISATION!r} arrived without the columns it is computed from"
        raise UpstreamTooLarge(msg)
    return _Plan(key, tuple(sums), tuple(maps), tuple(latest), tuple(ranks), tuple(distinct), utilisation)


class ExportMerger:
    """Folds the parts of one export, in chronological order, into the whole period's rows."""

    def __init__(self, export_type: ExportType, columns: Sequence[Column]) -> None:
        self.export_type = export_type
        self.columns = tuple(columns)
        refuse_unmergeable(export_type, [c.name for c in self.columns], why_split="the export is too large")
        self._plan = _plan(export_type, self.columns)
        self._rows: dict[tuple[Any, ...], Row] = {}
        self._start: Any = None
        self._end: Any = None
        self.parts = 0

    def add_part(self, columns: Sequence[Column], rows: Iterable[Row]) -> None:
        """Fold in the next whole part (later than every part added before)."""
        self.add_rows(columns, rows)
        self.end_part()

    def end_part(self) -> None:
        """Mark the end of a part whose rows were folded in with :meth:`add_rows`."""
        self.parts += 1

    def add_rows(self, columns: Sequence[Column], rows: Iterable[Row]) -> None:
        """Fold in rows of the current part (parts in chronological order; a part may come in batches)."""
        if {c.name for c in columns} != {c.name for c in self.columns}:
            msg = f"the parts of the split {self.export_type.value} export arrived with different columns"
            raise UpstreamProtocolError(msg)
        plan = self._plan
        for row in rows:
            self._start = _least(self._start, row.get("period_start"))
            self._end = _greatest(self._end, row.get("period_end"))
            key = tuple(row[name] for name in plan.key)
            merged = self._rows.get(key)
            if merged is None:
                self._rows[key] = {name: _copy(value) for name, value in row.items()}
                continue
            for name in plan.sums:
                merged[name] = _add(merged.get(name), row.get(name))
            for name in plan.maps:
                merged[name] = _add_maps(merged.get(name), row.get(name))
            for name in plan.latest:
                merged[name] = row.get(name)

    def result(self) -> list[Row]:
        """The merged rows, in order of first appearance, with derived columns recomputed."""
        plan = self._plan
        rows = list(self._rows.values())
        for row in rows:
            row["period_start"], row["period_end"] = self._start, self._end
            for count, source in plan.distinct:
                counts = row.get(source)
                row[count] = None if counts is None else sum(1 for v in counts.values() if v > 0)
            if plan.utilisation:
                row[UTILISATION] = utilisation_pct(
                    row["payg_consumption_in_period"], row["payg_limit_current"]
                )
        for rank, figure in plan.ranks:
            assign_competition_ranks(rows, figure, rank)
        order = [c.name for c in self.columns]
        return [{name: row.get(name) for name in order} for row in rows]


def utilisation_pct(consumption: Decimal | None, limit: Decimal | None) -> Decimal | None:
    """``round(100 * consumption / limit, 2)``; 0 for a zero limit; ``None`` without a limit."""
    if limit is None:
        return None
    if limit == 0:
        return Decimal(0)
    return (Decimal(100) * (consumption or Decimal(0)) / limit).quantize(_CENT, rounding=ROUND_HALF_UP)


def assign_competition_ranks(rows: Sequence[Row], figure: str, rank: str) -> None:
    """Set ``row[rank]`` to the competition rank ("1224") of ``row[figure]``, 1 = highest; no figure, no
    rank."""
    ordered = sorted((row[figure] for row in rows if row.get(figure) is not None), reverse=True)
    ranks: dict[Any, int] = {}
    for position, value in enumerate(ordered, start=1):
        ranks.setdefault(value, position)
    for row in rows:
        value = row.get(figure)
        row[rank] = None if value is None else ranks[value]


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _add(left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None:
        return left
    return left + right


def _add_maps(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int] | None:
    if left is None:
        return None if right is None else dict(right)
    if right is None:
        return left
    for key, count in right.items():
        left[key] = left.get(key, 0) + count
    return left


def _least(left: Any, right: Any) -> Any:
    return right if left is None or (right is not None and right < left) else left


def _greatest(left: Any, right: Any) -> Any:
    return right if left is None or (right is not None and right > left) else left
