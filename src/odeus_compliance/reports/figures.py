"""The figures of one report: what a report states, as plain data kept per report as JSON.

:class:`ReportFigures` (headline figures, one :class:`Breakdown` of :class:`GroupRow` per dimension) is the
one structure the PDF is rendered from and the one stored as ``figures.json``, so later reports can show a
trend (:meth:`ReportFigures.to_json`, :meth:`ReportFigures.from_json`); :class:`PersonRow` is a row of the
PDF's capped per-person table. The module also fixes the dataset's side of the contract: which engine
output columns feed which figure (:data:`CHANNELS`, :data:`GROUP_FIGURES`, ...), :class:`DatasetError`, and
:func:`dataset_lines`, the one way a dataset file is read as CSV lines.

The figures are computed only from the policy engine's output CSV, by the readers:
:mod:`~odeus_compliance.reports.figures_read` (:func:`~odeus_compliance.reports.figures_read.compute_figures`,
the entry point) picks :mod:`~odeus_compliance.reports.figures_rows` for pseudonymous per-person rows or
:mod:`~odeus_compliance.reports.figures_aggregates` for grouped aggregates (the strict policy). Every grouped
figure holds at least k people (the policy's ``min_group_size``); a hidden group has no figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

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
    suppressed_difference: int = 0
    """Groups hidden because they and another published group differed by 1 to k-1 people."""
    suppressed_dominance: int = 0
    """Groups hidden because one person held more than the policy's share of one of their figures."""


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
                    "suppressed_difference": b.suppressed_difference,
                    "suppressed_dominance": b.suppressed_dominance,
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
                    suppressed_difference=int(b.get("suppressed_difference", 0)),
                    suppressed_dominance=int(b.get("suppressed_dominance", 0)),
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


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One pseudonymous person in the PDF's capped per-person table (never ranked: ordered by token)."""

    token: str
    attributes: dict[str, str]  # department, role, ... as in the dataset
    figures: dict[str, str]


DatasetSource = Path | bytes
"""A dataset: its file, or its bytes (the report worker opens its sealed work copy into memory)."""


def dataset_lines(path: DatasetSource) -> Iterator[list[str]]:
    """The dataset's lines as CSV cells (header first); :class:`DatasetError` if it is not UTF-8 CSV."""
    try:
        with (
            path.open(encoding="utf-8", newline="")
            if isinstance(path, Path)
            else io.TextIOWrapper(io.BytesIO(path), encoding="utf-8", newline="")
        ) as handle:
            yield from csv.reader(handle)
    except (UnicodeDecodeError, csv.Error) as exc:
        msg = f"the dataset is not valid UTF-8 CSV ({type(exc).__name__})"
        raise DatasetError(msg) from None
