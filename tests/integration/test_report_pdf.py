"""A real report end to end: simulator export -> policy engine -> content -> PDF/A-3b, read with poppler.

The figures are recomputed here, independently, from the dataset CSV (plain ``csv``/``json``, no report
code) and must appear in ``pdftotext``'s output; the PDF text and every attachment are searched for the raw
export's names, e-mail addresses and ids.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.policy.loader import load_policy, parse_policy
from odeus_compliance.policy.model import Policy
from odeus_compliance.reports.content import ContentError, ReportMeta, build_content
from odeus_compliance.reports.figures import ReportFigures
from odeus_compliance.reports.figures_read import compute_figures
from odeus_compliance.reports.render import MISSING, render_pdf
from tests.support.policies import GATED_ROWS
from tests.support.reportdata import (
    POLICIES,
    TEMPLATES,
    PolicyRunFiles,
    attachments_for,
    meta_for,
    run_policy,
    simulator_export,
)

pytestmark = pytest.mark.slow

EARLIER = ReportFigures(
    mode="rows",
    k=5,
    summary_publishable=True,
    people=100,
    active_users=90,
    messages_total=1000,
    messages={},
    agents_used=None,
    projects_used=None,
    actions_used=None,
    model_messages=(),
    extra_usage_usd="10",
    extra_usage_people=None,
    byok=False,
    tokens={},
    cost_usd=None,
    breakdowns=(),
)


@dataclass(frozen=True)
class Rendered:
    run: PolicyRunFiles
    policy: Policy
    pdf: Path
    text: str


def _render(
    tmp: Path,
    policy: Policy,
    policy_text: str,
    *,
    users: int = 200,
    byok: bool = True,
    history: Sequence[tuple[str, ReportFigures]] = (),
) -> Rendered:
    raw = simulator_export(tmp / "raw.csv", users=users, byok=byok)
    run = run_policy(policy, raw, tmp)
    content = build_content(
        dataset_csv=run.dataset, manifest=run.manifest, policy=policy, meta=meta_for(policy), history=history
    )
    pdf = tmp / "report.pdf"
    pdf.write_bytes(
        render_pdf(content, template_dir=TEMPLATES, attachments=attachments_for(run, policy_text.encode()))
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return Rendered(run, policy, pdf, text)


@pytest.fixture(scope="module")
def default_report(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    path = GATED_ROWS
    return _render(tmp_path_factory.mktemp("default"), load_policy(path), path.read_text(encoding="utf-8"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _n(value: int | Decimal) -> str:
    return f"{value:,}"


def _line_with(text: str, *cells: str) -> bool:
    """Some line holds ``cells`` in this order, separated only by blanks."""
    pattern = r"(?m)^.*?(?<![\d,.])" + r"\s+".join(re.escape(c) for c in cells) + r"(?![\d,.])"
    return re.search(pattern, text) is not None


def test_summary_and_model_figures_equal_the_dataset(default_report: Rendered) -> None:
    rows = _rows(default_report.run.dataset)
    text = default_report.text
    people = len(rows)
    active = sum(1 for r in rows if int(r["messages_total"]) > 0)
    assert _line_with(text, "People in the dataset", _n(people))
    assert _line_with(text, "Active users", _n(active))
    for label, column in [
        ("Messages, all channels", "messages_total"),
        ("Messages: chat", "messages_chat"),
        ("Messages: agents", "messages_assistants"),
        ("Messages: projects", "messages_projects"),
        ("Messages: actions", "action_messages"),
        ("Tokens: total_input_tokens", "total_input_tokens"),
        ("Tokens: no_cache_tokens", "no_cache_tokens"),
    ]:
        assert _line_with(text, label, _n(sum(int(r[column]) for r in rows))), label
    extra = sum(Decimal(r["payg_consumption_in_period"]) for r in rows)
    assert _line_with(text, "Extra usage (pay as you go), USD", _n(extra))
    assert _line_with(
        text, "Cost (own provider keys), USD", _n(sum(Decimal(r["total_cost_usd"]) for r in rows))
    )
    for label, column in [
        ("Agents used", "assistants_to_messages"),
        ("Projects used", "projects_to_messages"),
    ]:
        used = {key for r in rows for key, n in json.loads(r[column]).items() if n > 0}
        assert _line_with(text, label, _n(len(used))), label
    models: Counter[str] = Counter()
    for r in rows:
        models.update(json.loads(r["model_to_messages_total"]))
    total = sum(models.values())
    for model, n in models.items():
        share = (Decimal(n) * 100 / total).quantize(Decimal("0.1"))
        assert _line_with(text, model, _n(n), f"{share} %"), model


def test_breakdowns_equal_the_dataset(default_report: Rendered) -> None:
    rows = _rows(default_report.run.dataset)
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[r["company_name"]].append(r)
    assert len(groups) >= 3
    policy = default_report.policy
    figures, _ = compute_figures(
        default_report.run.dataset,
        kind="rows",
        k=policy.disclosure.min_group_size,
        dominance=float(policy.disclosure.dominance_limit),
    )
    (table,) = [b for b in figures.breakdowns if b.dimension == "company_name"]
    shown = {row.name: row for row in table.rows if row.suppression is None}
    assert len(shown) >= 2  # the release audit leaves most companies visible
    for name, members in groups.items():
        assert len(members) >= 5, name  # the k gate made every class hold 5
        if name not in shown:
            continue  # hidden by the release audit: only in "Hidden groups together"
        active = sum(1 for m in members if int(m["messages_total"]) > 0)
        cells = [_n(len(members)), "\u2013" if shown[name].active_users is None else _n(active)]
        channels = (
            "messages_total",
            "messages_chat",
            "messages_assistants",
            "messages_projects",
            "action_messages",
        )
        cells.extend(_n(sum(int(m[column]) for m in members)) for column in channels)
        cells.append(_n(sum(Decimal(m["payg_consumption_in_period"]) for m in members)))
        cells.append(_n(sum(Decimal(m["total_cost_usd"]) for m in members)))
        assert _line_with(default_report.text, *cells), name


def test_cover_header_footer_and_annex(default_report: Rendered) -> None:
    text = default_report.text
    manifest = default_report.run.manifest
    assert "AI usage report 2026-10: Nordlicht workspace" in text
    assert "2026-10-01 00:00 to 2026-11-01 00:00 (Europe/Berlin, UTC+0200; end" in text
    assert manifest["policy"]["hash"][:40] in text.replace("\n", "")
    assert "2026-11-02 06:00:00 UTC" in text
    pages = int(re.search(r"Pages:\s+(\d+)", _pdfinfo(default_report.pdf)).group(1))  # type: ignore[union-attr]
    assert pages >= 3
    assert f"Page {pages} of {pages}" in text
    assert text.count("rpt_0001") >= pages  # the running header on every page but the cover, plus the cover
    assert _line_with(text, "Rows suppressed by the k gate", _n(manifest["disclosure"]["rows_suppressed"]))
    assert _line_with(text, "Smallest class", _n(manifest["disclosure"]["smallest_class"]), "rows")
    assert "until 2036-11-30" in text
    assert "odeus-compliance.example/audit" in text
    assert "individual rankings are" in text  # a rule's reason, quoted from the policy


def _pdfinfo(pdf: Path, *args: str) -> str:
    return subprocess.run(
        ["pdfinfo", *args, str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_pdf_a3b_metadata_fonts_and_attachments(default_report: Rendered, tmp_path: Path) -> None:
    pdf = default_report.pdf
    info = _pdfinfo(pdf)
    assert "Title:           AI usage report 2026-10, Nordlicht workspace (rpt_0001)" in info
    assert "report-id:rpt_0001" in info
    assert "Producer" not in info  # a signer writes it, the same in Info and XMP
    xmp = _pdfinfo(pdf, "-meta")
    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="B"' in xmp
    assert "rpt_0001" in xmp
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    font_lines = fonts.splitlines()[2:]
    assert font_lines
    assert all(" yes yes yes " in line for line in font_lines), fonts  # embedded, subset, unicode
    listing = subprocess.run(
        ["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    assert listing.splitlines()[1:] == ["1: data.csv", "2: manifest.json", "3: policy.toml"]
    subprocess.run(["pdfdetach", "-saveall", "-o", str(tmp_path), str(pdf)], check=True, timeout=60)
    assert (tmp_path / "data.csv").read_bytes() == default_report.run.dataset.read_bytes()
    expanded = tmp_path / "expanded.pdf"
    subprocess.run(["qpdf", "--qdf", "--object-streams=disable", str(pdf), str(expanded)], check=True)
    raw = expanded.read_bytes()
    assert raw.count(b"/AFRelationship /Data") == 1
    assert raw.count(b"/AFRelationship /Source") == 2
    assert b"/Subtype /text#2fcsv" in raw
    assert b"/Subtype /application#2fjson" in raw
    assert b"/OutputIntents" in raw
    assert b"/JavaScript" not in raw
    assert b"<image" not in raw.lower()  # charts are vector; no raster image XObject either
    assert b"/Subtype /Image" not in raw


def _identifying_values(raw: Path) -> set[str]:
    values: set[str] = set()
    for row in _rows(raw):
        values.update({row["user_id"], row["name"], row["email"], row["email"].split("@")[0]})
        for column in ("assistants_to_messages", "projects_to_messages", "action_to_messages"):
            values.update(json.loads(row[column]))
    return {v for v in values if len(v) >= 4}


def test_no_identifying_value_of_the_raw_export_appears_anywhere(
    default_report: Rendered, tmp_path: Path
) -> None:
    values = _identifying_values(default_report.run.raw)
    assert len(values) > 400
    subprocess.run(["pdfdetach", "-saveall", "-o", str(tmp_path), str(default_report.pdf)], check=True)
    haystacks = {"pdf text": default_report.text.casefold()}
    for attachment in tmp_path.iterdir():
        haystacks[attachment.name] = attachment.read_text(encoding="utf-8").casefold()
    assert set(haystacks) == {"pdf text", "data.csv", "policy.toml", "manifest.json"}
    for where, haystack in haystacks.items():
        found = [v for v in values if v.casefold() in haystack]
        assert not found, f"{len(found)} identifying value(s) in {where}"


def _with_report_section(section: str, *, drop: str | None = None) -> str:
    text = (GATED_ROWS).read_text(encoding="utf-8")
    start = text.index("[report]")
    end = text.index("[columns.users]")
    text = text[:start] + section + "\n\n" + text[end:]
    if drop is not None:
        text = text.replace(drop, "")
    return text


def test_person_rows_only_when_allowed_capped_and_ordered_by_pseudonym(tmp_path: Path) -> None:
    text = _with_report_section("[report]\nperson_rows = true\nperson_rows_cap = 7")
    policy = parse_policy(text, source="allowed.toml")
    september = ReportFigures.from_json(
        {**EARLIER.to_json(), "active_users": 111, "messages_total": 22222, "extra_usage_usd": "333"}
    )
    report = _render(tmp_path, policy, text, users=120, history=[("2026-09", september)])
    assert _line_with(report.text, "2026-09", "111", "22,222", "333")
    assert "2026-10 (this report)" in report.text
    rows = _rows(report.run.dataset)
    tokens = sorted(r["user_id"] for r in rows)
    assert f"7 of {len(rows):,} people" in report.text
    shown = [t for t in tokens if t in report.text]
    assert shown == tokens[:7]
    first = next(r for r in rows if r["user_id"] == tokens[0])
    assert _line_with(report.text, tokens[0], first["department"], first["role"])


def test_default_policy_prints_no_person_row(default_report: Rendered) -> None:
    tokens = [r["user_id"] for r in _rows(default_report.run.dataset)]
    assert not [t for t in tokens if t in default_report.text]
    assert "Per-person rows (pseudonymous)" not in default_report.text
    assert _line_with(default_report.text, "Per-person rows printed in this PDF", "0")


def test_small_groups_say_fewer_than_k_and_totals_reveal_no_hidden_group(tmp_path: Path) -> None:
    # department is not a quasi-identifier here, so the dataset keeps departments of 1-4 people
    text = _with_report_section("[report]\nperson_rows = false").replace(
        'quasi_identifiers = ["department", "company_name", "role", "license_type", "joined_at"]',
        'quasi_identifiers = ["joined_at"]',
    )
    text = re.sub(r"(?ms)^\[disclosure\.hierarchy\].*?(?=^\[report\])", "", text)
    policy = parse_policy(text, source="departments.toml")
    report = _render(tmp_path, policy, text)
    rows = _rows(report.run.dataset)
    sizes = Counter(r["department"] for r in rows)
    small = {name for name, n in sizes.items() if n < 5}
    assert small, "the simulator makes departments of one to four people"
    table = report.text[report.text.index("By department") : report.text.index("By company")]
    lines = table.splitlines()
    hidden: set[str] = set()
    for name, n in sizes.items():
        line = next(line for line in lines if line.strip().startswith(name[:10]))
        if "fewer than 5" in line or "hidden (" in line:
            hidden.add(name)
            assert not re.search(rf"(?<![\d,]){n}(?![\d,])", line.replace(name, "")), name
        else:
            assert re.search(rf"\s{n}\s", line), name  # a visible group shows its people
    assert small <= hidden
    pooled = re.search(r"Hidden groups(?: together)?\s+([\d,]+)", table)
    assert pooled is not None
    hidden_people = int(pooled.group(1).replace(",", ""))
    assert hidden_people == sum(sizes[name] for name in hidden)
    assert hidden_people >= 5  # "total minus the visible groups" only ever gives this pooled sum
    assert "fewer than 5" in report.text


def test_strict_policy_reports_aggregates_only(tmp_path: Path) -> None:
    path = POLICIES / "strict.toml"
    report = _render(tmp_path, load_policy(path), path.read_text(encoding="utf-8"), byok=False)
    rows = _rows(report.run.dataset)
    total = next(r for r in rows if r["dimension"] == "total")
    assert _line_with(report.text, "People in the dataset", _n(int(total["people"])))
    assert _line_with(report.text, "Messages, all channels", _n(int(total["messages_total"])))
    for r in rows:
        if r["dimension"] == "department" and r["group"] != "(suppressed)":
            assert _line_with(report.text, _n(int(r["people"])), _n(int(r["messages_total"]))), r["group"]
    assert "fewer than 10 people" in report.text
    assert _line_with(report.text, "Active users", MISSING)  # sums cannot tell who was active
    assert "Per-person rows (pseudonymous)" not in report.text
    assert "Cost (own provider keys)" not in report.text


def test_a_dataset_that_is_not_the_manifests_is_refused(tmp_path: Path) -> None:
    policy = load_policy(GATED_ROWS)
    run = run_policy(policy, simulator_export(tmp_path / "raw.csv", users=60, byok=False), tmp_path)
    data = run.dataset.read_bytes()
    run.dataset.write_bytes(data.replace(b",member,", b",owner,", 1))
    with pytest.raises(ContentError, match="SHA-256"):
        build_content(dataset_csv=run.dataset, manifest=run.manifest, policy=policy, meta=meta_for(policy))


def test_inputs_that_do_not_belong_together_are_refused(tmp_path: Path) -> None:
    policy = load_policy(GATED_ROWS)
    strict = load_policy(POLICIES / "strict.toml")
    run = run_policy(policy, simulator_export(tmp_path / "raw.csv", users=60, byok=False), tmp_path)
    meta = meta_for(policy)
    cases: list[tuple[dict[str, Any], Policy, ReportMeta, str]] = [
        ({k: v for k, v in run.manifest.items() if k != "output"}, policy, meta, "lacks its output"),
        (run.manifest, strict, meta, "same policy hash"),
        (run.manifest, policy, replace(meta, policy_hash="sha256:" + "0" * 64), "same policy hash"),
        (run.manifest, policy, replace(meta, period_to=meta.period_from), "end after it starts"),
    ]
    for manifest, used_policy, used_meta, message in cases:
        with pytest.raises(ContentError, match=message):
            build_content(dataset_csv=run.dataset, manifest=manifest, policy=used_policy, meta=used_meta)
    with pytest.raises(ContentError, match="cannot be read"):
        build_content(dataset_csv=tmp_path / "missing.csv", manifest=run.manifest, policy=policy, meta=meta)
