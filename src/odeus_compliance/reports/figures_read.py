"""The figures of one report from the policy engine's output CSV: the readers' entry point.

:func:`compute_figures` reads a dataset as the engine's manifest says it was written: pseudonymous
per-person rows (:mod:`~odeus_compliance.reports.figures_rows`) or grouped aggregates
(:mod:`~odeus_compliance.reports.figures_aggregates`), and gives
:class:`~odeus_compliance.reports.figures.ReportFigures` either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odeus_compliance.reports.figures import DatasetError, DatasetSource, PersonRow, ReportFigures
from odeus_compliance.reports.figures_aggregates import figures_from_aggregates
from odeus_compliance.reports.figures_rows import figures_from_rows


def compute_figures(
    dataset_csv: DatasetSource,
    *,
    kind: str,
    k: int,
    dominance: float = 1.0,
    manifest_groups: Mapping[str, Any] | None = None,
    person_rows_cap: int = 0,
) -> tuple[ReportFigures, tuple[PersonRow, ...]]:
    """The report's figures, and up to ``person_rows_cap`` per-person rows (rows mode only). Every figure
    comes from the released rows (one population): nothing from before the k gate is published."""
    if kind == "rows":
        return figures_from_rows(dataset_csv, k=k, person_cap=person_rows_cap, dominance=dominance)
    if kind == "aggregates":
        return figures_from_aggregates(dataset_csv, k=k, manifest_groups=manifest_groups or {}), ()
    msg = f"unknown dataset kind {kind!r}"
    raise DatasetError(msg)
