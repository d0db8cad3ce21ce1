"""Benchmark: the cost of rendering one report (content + PDF/A-3b), against a one-page WeasyPrint baseline.

Each measurement is a fresh process; its peak RSS is the kernel's high-water mark of that process
(``VmHWM``, reset by ``exec``; ``ru_maxrss`` would inherit the parent's). The time is measured inside the
child around the work only (imports excluded, they are the same for every case):

- ``baseline``: WeasyPrint rendering a minimal one-page HTML as PDF/A-3b (the floor of any render).
- ``report``: :func:`build_content` over the policy engine's dataset and manifest, then :func:`render_pdf`
  with the three attachments (dataset CSV, policy, manifest), for

  * 0, 50 and the capped number (500) of per-person rows, on a 10,000-user workspace, and
  * 0 person rows on 1,000, 10,000 and 100,000-user workspaces (the PDF stays bounded in pages).

Inputs are made once per case with the simulator's generator (users export of the month before 2026-11-25,
BYOK on, seed 1) and the real policy engine, under ``bench/results/reports/``; the engine's time is not
measured here. Cases are interleaved and repeated; the README reports medians as ratios to the baseline.

Run: ``.venv/bin/python bench/reports/render.py [--repeat 3] [--users 1000,10000,100000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "reports"
sys.path.insert(0, str(ROOT / "bench" / "policy"))

from export_file import users_export_csv  # noqa: E402 - the policy benchmark's simulator export writer

from odeus_compliance.policy.engine import apply_to_file  # noqa: E402
from odeus_compliance.policy.keys import engine_keys  # noqa: E402
from odeus_compliance.policy.loader import parse_policy  # noqa: E402
from odeus_compliance.policy.model import PERSON_ROWS_CAP_LIMIT  # noqa: E402
from odeus_compliance.upstream.columns import ExportType  # noqa: E402
from odeus_compliance.upstream.simulator.config import SimulatorConfig  # noqa: E402

MASTER = bytes(range(32))

_BASELINE = """
import json, sys, time
from io import BytesIO
import weasyprint
start = time.perf_counter()
html = "<html><head><title>Baseline</title></head><body><h1>Baseline</h1><p>One page.</p></body></html>"
pdf = weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")
seconds = time.perf_counter() - start
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "bytes": len(pdf)}))
"""

_REPORT = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo
from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.loader import parse_policy
from odeus_compliance.reports.content import ReportMeta, build_content
from odeus_compliance.reports.render import Attachment, render_pdf
folder, templates = Path(sys.argv[1]), Path(sys.argv[2])
policy_text = (folder / "policy.toml").read_text(encoding="utf-8")
policy = parse_policy(policy_text, source="policy.toml")
berlin = ZoneInfo("Europe/Berlin")
meta = ReportMeta(
    report_id="rpt_bench", workspace="Bench workspace",
    period_from=datetime(2026, 10, 1, tzinfo=berlin), period_to=datetime(2026, 11, 1, tzinfo=berlin),
    timezone="Europe/Berlin", policy_name=policy.name, policy_version=policy.version,
    policy_hash=policy_hash(policy), generated_at=datetime(2026, 11, 2, tzinfo=UTC),
    audit_checkpoint="bench/audit\\n1\\nAAAA\\n", retention={"report": "until 2036-11-30"},
    software_version="bench",
)
start = time.perf_counter()
manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
content = build_content(dataset_csv=folder / "data.csv", manifest=manifest, policy=policy, meta=meta)
built = time.perf_counter()
attachments = [
    Attachment("data.csv", (folder / "data.csv").read_bytes(), "text/csv", "dataset"),
    Attachment("policy.toml", policy_text.encode(), "application/toml", "policy"),
    Attachment("manifest.json", (folder / "manifest.json").read_bytes(), "application/json", "manifest"),
]
pdf = render_pdf(content, template_dir=templates, attachments=attachments)
done = time.perf_counter()
(folder / "report.pdf").write_bytes(pdf)
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": done - start, "content_seconds": built - start, "rss_mb": rss,
                  "bytes": len(pdf), "person_rows": len(content.person_rows)}))
"""


def _policy_text(person_rows: int) -> str:
    text = (ROOT / "policies" / "default.toml").read_text(encoding="utf-8")
    start, end = text.index("[report]"), text.index("[columns.users]")
    section = (
        f"[report]\nperson_rows = true\nperson_rows_cap = {person_rows}\n\n"
        if person_rows
        else "[report]\nperson_rows = false\n\n"
    )
    return text[:start] + section + text[end:]


def prepare(users: int, person_rows: int) -> Path:
    """The engine's dataset and manifest for one case (cached)."""
    folder = RESULTS / f"users-{users}-rows-{person_rows}"
    if (folder / "manifest.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"users-{users}-byok.csv"
    if not raw.exists():
        raw.write_bytes(users_export_csv(SimulatorConfig(users=users, byok=True)))
    text = _policy_text(person_rows)
    (folder / "policy.toml").write_text(text, encoding="utf-8")
    policy = parse_policy(text, source="policy.toml")
    apply_to_file(
        policy,
        ExportType.USERS,
        source=raw,
        out=folder / "data.csv",
        manifest_path=folder / "manifest.json",
        keys=engine_keys(MASTER, policy),
    )
    return folder


def measure(script: str, *args: str) -> dict[str, Any]:
    """One fresh child process; its own figures as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=900
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _case(name: str) -> tuple[int, int]:
    users, rows = (part.split("=")[1] for part in name.split())
    return int(users), int(rows)


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def main() -> None:
    """Measure every case ``--repeat`` times, interleaved, and write bench/results/reports.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", default="1000,10000,100000", help="workspace sizes for the 0-row cases")
    args = parser.parse_args()
    sizes = [int(n) for n in args.users.split(",")]
    cases = [(10_000, rows) for rows in (0, 50, PERSON_ROWS_CAP_LIMIT)]
    cases += [(users, 0) for users in sizes if (users, 0) not in cases]
    folders = {case: prepare(*case) for case in cases}
    templates = str(ROOT / "report_templates")
    runs: dict[str, list[dict[str, Any]]] = {"baseline": []}
    for _ in range(args.repeat):
        runs["baseline"].append(measure(_BASELINE))
        for case, folder in folders.items():
            runs.setdefault(f"users={case[0]} rows={case[1]}", []).append(
                measure(_REPORT, str(folder), templates)
            )
    base_s = statistics.median(r["seconds"] for r in runs["baseline"])
    base_mb = statistics.median(r["rss_mb"] for r in runs["baseline"])
    summary: dict[str, Any] = {}
    print(f"{'case':<26} {'time s':>8} {'x base':>7} {'RSS MB':>8} {'x base':>7} {'pages':>6} {'KB':>7}")
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["rss_mb"] for r in results)
        pages = _pages(folders[_case(name)] / "report.pdf") if name != "baseline" else 1
        size = results[0]["bytes"] / 1024
        summary[name] = {
            "seconds": round(seconds, 3),
            "time_ratio": round(seconds / base_s, 2),
            "rss_mb": round(rss, 1),
            "rss_ratio": round(rss / base_mb, 2),
            "pages": pages,
            "kb": round(size, 1),
            "runs": results,
        }
        print(
            f"{name:<26} {seconds:8.3f} {seconds / base_s:7.2f} {rss:8.1f} {rss / base_mb:7.2f} "
            f"{pages:6} {size:7.1f}"
        )
    load = Path("/proc/loadavg").read_text(encoding="ascii").strip()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS.parent / "reports.json"
    out.write_text(
        json.dumps({"at": datetime.now(UTC).isoformat(), "loadavg": load, "cases": summary}, indent=1),
        encoding="utf-8",
    )
    print(f"loadavg {load}; written {out}")


if __name__ == "__main__":
    main()
