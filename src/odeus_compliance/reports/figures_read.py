"""The figures of one report from the policy engine's output CSV: the readers' entry point.

:func:`compute_figures` reads a dataset as the engine's manifest says it was written: pseudonymous
per-person rows (:mod:`~odeus_compliance.reports.figures_rows`, with the breakdowns of withheld
dimensions from the engine's grouped figures) or grouped aggregates
(:mod:`~odeus_compliance.reports.figures_aggregates`), and gives
:class:`~odeus_compliance.reports.figures.ReportFigures` either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odeus_compliance.reports.figures import DatasetError, PersonRow, ReportFigures
from odeus_compliance.reports.figures_aggregates import figures_from_aggregates, with_group_figures
from odeus_compliance.reports.figures_rows import figures_from_rows


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
        figures, persons = figures_from_rows(dataset_csv, k=k, person_cap=person_rows_cap)
        if group_figures:
            figures = with_group_figures(figures, group_figures)
        return figures, persons
    if kind == "aggregates":
        return figures_from_aggregates(dataset_csv, k=k, manifest_groups=manifest_groups or {}), ()
    msg = f"unknown dataset kind {kind!r}"
    raise DatasetError(msg)
