"""``odeus-compliance policy apply`` as a real subprocess: exit codes, one-line errors, no leftovers."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

from odeus_compliance.upstream.columns import ExportType, columns_for
from tests.support.policies import GATED_ROWS

POLICIES = Path(__file__).resolve().parents[2] / "policies"
HEADER = [c.name for c in columns_for(ExportType.USERS, byok=False)]
KEY = base64.b64encode(bytes(range(32))).decode()


def export(path: Path, *, leak: bool = False) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for n in range(12):
        row = dict.fromkeys(HEADER, "2")
        row.update(period_start="2026-10-01", period_end="2026-10-31", org_id="org_x", user_id=f"usr_{n:06d}")
        row.update(name=f"Given{n} Family{n}", email=f"given{n}@corp.example", role="member")
        row.update(joined_at="2026-02-01", department="=1+2", company_name="Corp", license_type="pro")
        row.update(
            payg_limit_current="1.00", payg_consumption_in_period="0.5", payg_utilization_pct_current="50"
        )
        for column in ("assistants_to_messages", "projects_to_messages", "action_to_messages"):
            row[column] = '{"k1":2}'
        row["model_to_messages_total"] = '{"GIVEN3@CORP.EXAMPLE":2}' if leak and n == 7 else '{"gpt-4o":2}'
        writer.writerow([row[name] for name in HEADER])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def cli(*args: str, key: str | None = KEY, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ODEUS_", "ODEUS_COMPLIANCE_"))}
    if key is not None:
        env["ODEUS_COMPLIANCE_MASTER_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "odeus_compliance", "policy", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _tokens_masked(csv_text: str) -> list[str]:
    return sorted(re.sub(r"\b[a-z][0-9]+_[a-z2-7]+\b", "TOKEN", line) for line in csv_text.splitlines())


def test_apply_writes_the_csv_and_manifest(tmp_path: Path) -> None:
    raw = export(tmp_path / "raw.csv")
    out = tmp_path / "out.csv"
    # per-person rows with quasi-identifiers (the test policy): every row written, formula cells neutralised
    args = ("apply", "--policy", str(GATED_ROWS), "--in", str(raw), "--out", str(out))
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "12 of 12 row(s) written" in done.stderr
    text = out.read_text(encoding="utf-8")
    assert "'=1+2" in text
    assert "usr_" not in text
    assert "Given" not in text
    assert (tmp_path / "out.manifest.json").is_file()
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0
    # tokens are fresh per run (linkability per_report), and rows are ordered by them; all else is the same
    second = out.read_text(encoding="utf-8")
    assert second != text
    assert _tokens_masked(second) == _tokens_masked(text)
    assert KEY not in done.stderr + done.stdout


def test_a_leak_exits_1_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    raw = export(tmp_path / "raw.csv", leak=True)
    done = cli(
        "apply",
        "--policy",
        str(POLICIES / "default.toml"),
        "--in",
        str(raw),
        "--out",
        str(tmp_path / "o.csv"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert "model_to_messages_total" in done.stderr
    assert "row 8" in done.stderr
    assert "given3" not in done.stderr.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]


def test_a_missing_master_key_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = export(tmp_path / "raw.csv")
    done = cli(
        "apply",
        "--policy",
        str(POLICIES / "default.toml"),
        "--in",
        str(raw),
        "--out",
        str(tmp_path / "o.csv"),
        key=None,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "ODEUS_COMPLIANCE_MASTER_KEY" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "o.csv").exists()


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = cli(
        "apply",
        "--policy",
        str(POLICIES / "default.toml"),
        "--in",
        str(tmp_path / "missing.csv"),
        "--out",
        "o.csv",
        cwd=tmp_path,
    )
    assert done.returncode == 2
