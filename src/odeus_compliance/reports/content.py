"""What one report says: cover facts, figures, charts, the capped person table and the data-protection annex.

Built only from the policy engine's output (the pseudonymised dataset CSV and its transformation manifest)
and the policy: never from the raw export. Before anything is computed the dataset is checked against the
manifest (same SHA-256, same row count) and the manifest against the policy (same hash), so the figures in
the PDF are provably those of the dataset that travels with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from odeus_compliance.policy.aggregates import DIMENSIONS, SUPPRESSED_GROUP
from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.model import Policy
from odeus_compliance.reports.charts import bar_chart, share_chart
from odeus_compliance.reports.figures import DatasetError, DatasetSource, PersonRow, ReportFigures
from odeus_compliance.reports.figures_read import compute_figures

DIMENSION_LABELS = {
    "department": "Department",
    "company_name": "Company",
    "role": "Role",
    "license_type": "Licence type",
}
CHART_BARS = 12  # the department chart shows the largest visible groups; the table shows all


class ContentError(ValueError):
    """The dataset, manifest, policy and meta do not belong together (the message quotes no cell)."""


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """The cover facts of one report (see docs/report-content.md)."""

    report_id: str
    workspace: str  # org id / name from the export, or "Odeus workspace"
    period_from: datetime  # aware, in the report's timezone
    period_to: datetime  # aware, exclusive end
    timezone: str  # IANA name
    policy_name: str
    policy_version: str
    policy_hash: str
    generated_at: datetime  # aware UTC
    audit_checkpoint: str | None  # C2SP note text of the checkpoint at generation
    retention: Mapping[str, str]  # data class -> human-readable rule or date
    software_version: str
    demo_signature: bool = False  # signed with the self-signed demo certificate (the cover says so)
    data_until: datetime | None = None  # aware UTC; set when the period had not ended at the fetch

    @property
    def partial(self) -> bool:
        """Whether the report covers only the part of its period before ``data_until``."""
        return self.data_until is not None

    @property
    def period_label(self) -> str:
        """``YYYY-MM`` of the period's start (the key of the trend)."""
        return self.period_from.strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One month of the trend table."""

    label: str
    active_users: int | None
    messages_total: int | None
    extra_usage_usd: str | None
    cost_usd: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class ColumnTreatment:
    """What happened to one column: the policy's rule, Odeus's own anonymisation, and the counts."""

    column: str
    operation: str
    parameters: str
    reason: str
    effective: str
    upstream: str
    transformed: int
    kept: int
    dropped: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class Annex:
    """The data-protection annex."""

    columns: tuple[ColumnTreatment, ...]
    unknown_columns_dropped: tuple[str, ...]
    upstream_anonymised: tuple[tuple[str, str, int], ...]  # (column, how, cells)
    risk: tuple[tuple[str, str], ...]  # (measure, value)
    pseudonymisation: tuple[tuple[str, str], ...]
    leak_scan: tuple[tuple[str, str], ...]
    retention: tuple[tuple[str, str], ...]
    audit_checkpoint: str | None
    input_rows: int
    output_rows: int


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """The policy as the cover and the annex cite it."""

    name: str
    version: str
    hash: str
    works_agreement: str
    description: str | None
    k: int
    per_person_rows: bool
    person_rows: bool
    person_rows_cap: int


@dataclass(frozen=True, slots=True)
class ReportContent:
    """Everything the template renders. ``figures`` is what is kept for later trends."""

    meta: ReportMeta
    policy: PolicyFacts
    figures: ReportFigures
    trend: tuple[TrendPoint, ...]
    person_rows: tuple[PersonRow, ...]
    person_rows_total: int
    annex: Annex
    channel_chart: Markup | None
    department_chart: Markup | None
    model_chart: Markup | None
    dimension_labels: Mapping[str, str]

    @property
    def title(self) -> str:
        """The document title (also the PDF's Info and XMP title)."""
        meta = self.meta
        partial = ", partial period" if meta.partial else ""
        return f"AI usage report {meta.period_label}{partial}, {meta.workspace} ({meta.report_id})"


def build_content(
    *,
    dataset_csv: DatasetSource,
    manifest: Mapping[str, Any],
    policy: Policy,
    meta: ReportMeta,
    history: Sequence[tuple[str, ReportFigures]] = (),
    figures_only: bool = False,
) -> ReportContent:
    """The report's content; raises :class:`ContentError` when the inputs do not belong together.
    ``figures_only``: no per-person row, whatever the policy allows (the variant every role may read)."""
    kind = _check_inputs(dataset_csv, manifest, policy, meta)
    disclosure = manifest.get("disclosure", {})
    allowed = (
        not figures_only
        and policy.report.person_rows
        and policy.disclosure.per_person_rows
        and kind == "rows"
    )
    cap = policy.report.person_rows_cap if allowed else 0
    try:
        figures, persons = compute_figures(
            dataset_csv,
            kind=kind,
            k=policy.disclosure.min_group_size,
            dominance=float(policy.disclosure.dominance_limit),
            manifest_groups=disclosure.get("groups") if isinstance(disclosure, Mapping) else None,
            person_rows_cap=cap,
        )
    except DatasetError as exc:
        raise ContentError(str(exc)) from None
    return ReportContent(
        meta=meta,
        policy=PolicyFacts(
            name=policy.name,
            version=policy.version,
            hash=meta.policy_hash,
            works_agreement=policy.works_agreement,
            description=policy.description,
            k=policy.disclosure.min_group_size,
            per_person_rows=policy.disclosure.per_person_rows,
            person_rows=allowed,
            person_rows_cap=policy.report.person_rows_cap,
        ),
        figures=figures,
        trend=_trend(meta.period_label, figures, history),
        person_rows=persons,
        person_rows_total=(figures.people or 0) if allowed else 0,
        annex=_annex(manifest, figures, meta, persons_shown=len(persons)),
        channel_chart=channel_chart(figures),
        department_chart=department_chart(figures),
        model_chart=model_chart(figures),
        dimension_labels=DIMENSION_LABELS,
    )


def _check_inputs(
    dataset_csv: DatasetSource, manifest: Mapping[str, Any], policy: Policy, meta: ReportMeta
) -> str:
    """The dataset's kind (``rows`` or ``aggregates``) once everything belongs together."""
    try:
        output = manifest["output"]
        cited = manifest["policy"]
        expected_sha = str(output["sha256"])
        kind = str(output["kind"])
    except (KeyError, TypeError, ValueError):
        msg = "the transformation manifest lacks its output or policy section"
        raise ContentError(msg) from None
    digest = hashlib.sha256()
    try:
        if isinstance(dataset_csv, Path):
            with dataset_csv.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            digest.update(dataset_csv)
    except OSError as exc:
        msg = f"the dataset cannot be read ({type(exc).__name__})"
        raise ContentError(msg) from None
    if digest.hexdigest() != expected_sha:
        msg = "the dataset is not the one the transformation manifest describes (SHA-256 differs)"
        raise ContentError(msg)
    own = policy_hash(policy)
    if cited.get("hash") != own or meta.policy_hash != own:
        msg = "the policy, the manifest and the report meta do not cite the same policy hash"
        raise ContentError(msg)
    if meta.period_to <= meta.period_from or meta.period_from.tzinfo is None:
        msg = "the report period must be aware and end after it starts"
        raise ContentError(msg)
    return kind


def _trend(
    label: str, figures: ReportFigures, history: Sequence[tuple[str, ReportFigures]]
) -> tuple[TrendPoint, ...]:
    points = {
        old_label: TrendPoint(
            old_label,
            old.active_users if old.summary_publishable else None,
            old.messages_total if old.summary_publishable else None,
            old.extra_usage_usd if old.summary_publishable else None,
            old.cost_usd if old.summary_publishable else None,
            current=False,
        )
        for old_label, old in history
        if old_label < label
    }
    if not points:
        return ()
    current = figures if figures.summary_publishable else None
    points[label] = TrendPoint(
        label,
        current.active_users if current else None,
        current.messages_total if current else None,
        current.extra_usage_usd if current else None,
        current.cost_usd if current else None,
        current=True,
    )
    return tuple(points[key] for key in sorted(points)[-13:])


# the charts are public: the console draws the same ones from a report's stored figures


def channel_chart(figures: ReportFigures) -> Markup | None:
    """Messages per channel (none when the summary is hidden)."""
    if not figures.summary_publishable or not figures.messages:
        return None
    return bar_chart("Messages by channel", list(figures.messages.items()))


def department_chart(figures: ReportFigures) -> Markup | None:
    """Messages of the largest visible departments (none with fewer than two)."""
    table = next((b for b in figures.breakdowns if b.dimension == DIMENSIONS[0]), None)
    if table is None:
        return None
    bars = [
        (row.name, int(row.figures["messages_total"]))
        for row in table.rows
        if row.people is not None and row.name != SUPPRESSED_GROUP and "messages_total" in row.figures
    ]
    if len(bars) < 2:
        return None
    bars.sort(key=lambda bar: (-bar[1], bar[0]))
    return bar_chart("Messages by department", bars[:CHART_BARS])


def model_chart(figures: ReportFigures) -> Markup | None:
    """Each model's share of the messages (none without model figures)."""
    return share_chart("Messages by model", figures.model_messages) if figures.model_messages else None


# --- the data-protection annex -------------------------------------------------------------------------


def _parameters(parameters: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in parameters.items() if v not in (None, False, [], {})}
    return ", ".join(f"{k} = {v}" for k, v in sorted(shown.items()))


def _annex(
    manifest: Mapping[str, Any], figures: ReportFigures, meta: ReportMeta, *, persons_shown: int
) -> Annex:
    columns = tuple(
        ColumnTreatment(
            column=str(entry.get("column", "")),
            operation=str(entry.get("operation", "")),
            parameters=_parameters(entry.get("parameters") or {}),
            reason=str(entry.get("reason") or ""),
            effective=str(entry.get("effective", "")),
            upstream=_upstream(entry.get("upstream")),
            transformed=int(entry.get("transformed", 0)),
            kept=int(entry.get("kept", 0)),
            dropped=int(entry.get("dropped", 0)),
            suppressed=int(entry.get("suppressed", 0)),
        )
        for entry in manifest.get("columns", ())
    )
    pseudo = manifest.get("pseudonymization", {})
    scan = manifest.get("leak_scan", {})
    return Annex(
        columns=columns,
        unknown_columns_dropped=tuple(str(c) for c in manifest.get("unknown_columns_dropped", ())),
        upstream_anonymised=tuple(
            (str(a.get("column")), str(a.get("how")), int(a.get("cells", 0)))
            for a in manifest.get("upstream_anonymised", ())
        ),
        risk=_risk(manifest.get("disclosure", {}), figures, persons_shown),
        pseudonymisation=(
            ("Pseudonymisation domain", str(pseudo.get("domain", ""))),
            ("Linkability", _linkability(str(pseudo.get("linkability", "")))),
            ("Key epoch", str(pseudo.get("epoch", ""))),
        ),
        leak_scan=(
            ("Result", str(scan.get("result", "not run"))),
            ("Identifying input values checked", f"{int(scan.get('identifying_values_checked', 0)):,}"),
            ("Distinct output texts read", f"{int(scan.get('distinct_output_texts_read', 0)):,}"),
        ),
        retention=tuple(sorted(meta.retention.items())),
        audit_checkpoint=meta.audit_checkpoint,
        input_rows=int(manifest.get("input", {}).get("rows", 0)),
        output_rows=int(manifest.get("output", {}).get("rows", 0)),
    )


def _upstream(found: Any) -> str:
    if not isinstance(found, Mapping):
        return "nothing"
    how = str(found.get("how", ""))
    cells = int(found.get("cells", 0))
    scope = "every cell" if found.get("complete") else f"{cells:,} cells"
    return f"{how} ({scope})"


def _linkability(value: str) -> str:
    if value == "per_report":
        return "per report: tokens of two reports cannot be joined"
    if value == "stable":
        return "stable within the key epoch: the same person keeps the same token"
    return value


def _risk(gate: Any, figures: ReportFigures, persons_shown: int) -> tuple[tuple[str, str], ...]:
    gate = gate if isinstance(gate, Mapping) else {}
    k = figures.k
    risk: list[tuple[str, str]] = [("Minimum group size k", str(k))]
    if figures.mode == "aggregates":
        return tuple(risk + _aggregate_risk(gate, figures))
    smallest_class = gate.get("smallest_class")
    risk.append(("Dataset", "pseudonymous per-person rows, k-anonymous in its quasi-identifiers"))
    if gate.get("k_anonymity") == "pass":
        qis = ", ".join(str(q) for q in gate.get("quasi_identifiers", ()))
        levels = ", ".join(f"{q}: {lv or 'as is'}" for q, lv in dict(gate.get("levels", {})).items())
        risk += [
            ("Quasi-identifiers", qis or "none"),
            ("Generalisation applied by the k gate", levels or "none"),
            ("Equivalence classes", f"{int(gate.get('classes', 0)):,}"),
            ("Smallest class", "none" if smallest_class is None else f"{int(smallest_class):,} rows"),
            ("Rows suppressed by the k gate", f"{int(gate.get('rows_suppressed', 0)):,}"),
            (
                "Share suppressed (limit)",
                f"{gate.get('share_suppressed', '0')} ({gate.get('suppression_limit', '0')})",
            ),
        ]
        if smallest_class:
            risk.append(
                (
                    "Highest re-identification chance per row (1 / smallest class)",
                    _percent(1, int(smallest_class)),
                )
            )
    else:
        risk.append(("k-anonymity", str(gate.get("k_anonymity", "not applicable"))))
    primary = sum(b.suppressed_primary for b in figures.breakdowns)
    risk.append(
        (
            "Report groups suppressed (fewer than k) / complementarily",
            f"{primary} / {sum(b.suppressed_complementary for b in figures.breakdowns)}",
        )
    )
    risk.append(("Per-person rows printed in this PDF", str(persons_shown)))
    return tuple(risk)


def _aggregate_risk(gate: Mapping[str, Any], figures: ReportFigures) -> list[tuple[str, str]]:
    """The annex's residual risk of a grouped-figures report, from what the release audit released."""
    found = gate.get("audit")
    audit: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    published = [row.people for b in figures.breakdowns for row in b.rows if row.people is not None] + (
        [figures.people] if figures.summary_publishable and figures.people else []
    )
    smallest = audit.get("smallest_published_cell", min(published, default=None))
    hidden = {
        "fewer than k": sum(b.suppressed_primary for b in figures.breakdowns),
        "difference of two published groups under k": sum(
            b.suppressed_difference for b in figures.breakdowns
        ),
        "one person dominating a figure": sum(b.suppressed_dominance for b in figures.breakdowns),
        "complementary": sum(b.suppressed_complementary for b in figures.breakdowns),
    }
    share = audit.get("largest_share")
    withheld = audit.get("figures_withheld_for_dominance") or []
    risk = [
        ("Dataset", "grouped figures only: no per-person row left the engine"),
        ("People counted", "distinct people (canonical ids), not rows"),
        ("Smallest published cell", "none" if smallest is None else f"{int(smallest):,} people"),
        ("Groups hidden, by reason", "; ".join(f"{why}: {n}" for why, n in hidden.items())),
        (
            "Largest share of one person in a published sum (limit)",
            f"{'none' if share is None else _percent_of(float(share))} ({audit.get('dominance_limit', '-')})",
        ),
        ("Figures withheld because one person dominates the total", ", ".join(withheld) or "none"),
        (
            "Differences of published figures",
            "every difference of two nested published groups, across tables too, is 0 or at least k people",
        ),
        (
            "Across reports",
            (
                "a re-run of a period that would change a published group by fewer than k people is "
                "refused; different months are separate releases, not checked against each other"
            ),
        ),
    ]
    if smallest:
        risk.append(("Highest chance of singling out one person in a cell", _percent(1, int(smallest))))
    return risk


def _percent_of(share: float) -> str:
    return f"{share * 100:.1f} %"


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f} %"
