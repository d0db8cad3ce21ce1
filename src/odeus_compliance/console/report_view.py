"""What one report's page shows, prepared for its template: the job's facts (times in the report's zone
with their offset) and its figures as the report stored them (``figures.json``, the figures-only PDF's own
figures), with the same charts and the same number formats as the PDF. Nothing per person is read here:
the stored figures never hold a per-person row."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import datetime
from typing import Final

from markupsafe import Markup

from odeus_compliance.core.periods import zone
from odeus_compliance.reports.content import DIMENSION_LABELS, channel_chart, department_chart, model_chart
from odeus_compliance.reports.figures import CHANNELS, TOKENS, ReportFigures
from odeus_compliance.reports.jobs import ReportRecord, ReportStatus
from odeus_compliance.reports.render import format_amount, format_count
from odeus_compliance.reports.store import (
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactShredded,
    ArtifactStore,
)

__all__ = [
    "BREAKDOWN_COLUMNS",
    "FIGURES_FILE",
    "FiguresView",
    "ReportFacts",
    "local_stamp",
    "report_facts",
    "stored_figures",
]

FIGURES_FILE: Final = "figures.json"
BREAKDOWN_COLUMNS: Final = (
    ("messages_total", "Messages"),
    ("messages_chat", "Chat"),
    ("messages_assistants", "Agents"),
    ("messages_projects", "Projects"),
    ("action_messages", "Actions"),
)
"""The message columns of a breakdown table, in the PDF's order."""
_LIVE: Final = frozenset({ReportStatus.QUEUED, ReportStatus.RUNNING})


def local_stamp(moment: datetime, timezone: str) -> str:
    """``2026-10-31 23:59 +01:00``: a time in the report's zone with its offset."""
    local = moment.astimezone(zone(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.isoformat()[-6:]}"


@dataclasses.dataclass(frozen=True, slots=True)
class ReportFacts:
    """The job's status and provenance as the page shows them (what ``GET /api/v1/reports/{id}`` says)."""

    record: ReportRecord
    current: bool
    period_from: str
    period_to: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    data_until: str | None
    progress_percent: int

    @property
    def live(self) -> bool:
        """Queued or running: the page keeps asking for its status."""
        return self.record.status in _LIVE

    @property
    def succeeded(self) -> bool:
        """Finished with files."""
        return self.record.status is ReportStatus.SUCCEEDED


def report_facts(record: ReportRecord, *, current: bool) -> ReportFacts:
    """The page's facts of ``record`` (``current``: the newest succeeded version of its period)."""
    tz = record.period.timezone

    def stamp(moment: datetime | None) -> str | None:
        return None if moment is None else local_stamp(moment, tz)

    return ReportFacts(
        record=record,
        current=current,
        period_from=local_stamp(record.period.start, tz),
        period_to=local_stamp(record.period.end, tz),
        requested_at=local_stamp(record.requested_at, tz),
        started_at=stamp(record.started_at),
        finished_at=stamp(record.finished_at),
        data_until=stamp(record.data_until),
        progress_percent=max(0, min(100, round(record.progress * 100))),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class FiguresView:
    """A succeeded report's figures with the PDF's charts, or why they cannot be shown (``missing``)."""

    figures: ReportFigures | None
    missing: str | None = None

    @property
    def channel_chart(self) -> Markup | None:
        """Messages by channel, as in the PDF."""
        return None if self.figures is None else channel_chart(self.figures)

    @property
    def department_chart(self) -> Markup | None:
        """Messages by department, as in the PDF."""
        return None if self.figures is None else department_chart(self.figures)

    @property
    def model_chart(self) -> Markup | None:
        """Model shares, as in the PDF."""
        return None if self.figures is None else model_chart(self.figures)

    @property
    def dimension_labels(self) -> dict[str, str]:
        """Dimension -> heading."""
        return dict(DIMENSION_LABELS)

    @staticmethod
    def count(value: object) -> str:
        """A count as the PDF prints it."""
        return format_count(value)

    @staticmethod
    def amount(value: object) -> str:
        """An amount as the PDF prints it."""
        return format_amount(value)


def _in_order(values: dict[str, int], order: tuple[str, ...]) -> dict[str, int]:
    """``values`` in the PDF's order (stored JSON has sorted keys); any other key after them."""
    return {
        **{key: values[key] for key in order if key in values},
        **{key: n for key, n in values.items() if key not in order},
    }


def _as_rendered(figures: ReportFigures) -> ReportFigures:
    """The stored figures with channels and token columns in the order the PDF lists them."""
    return dataclasses.replace(
        figures,
        messages=_in_order(figures.messages, tuple(label for label, _ in CHANNELS)),
        tokens=_in_order(figures.tokens, TOKENS),
    )


async def stored_figures(store: ArtifactStore, record: ReportRecord) -> FiguresView:
    """The figures the report stored with its PDF (never recomputed: the PDF was rendered from exactly
    these); a notice instead when retention removed them or they fail their integrity check."""
    try:
        data = await store.read(record.id, FIGURES_FILE)
    except (ArtifactMissing, ArtifactShredded):
        return FiguresView(None, "The report's figures are no longer kept (retention).")
    except ArtifactCorrupt:
        return FiguresView(None, "The report's stored figures failed their integrity check.")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return FiguresView(_as_rendered(ReportFigures.from_json(json.loads(data))))
    return FiguresView(None, "The report's stored figures cannot be read.")
