"""``odeus-compliance retention ...`` as an operator runs it: a dry run on a far-future clock, the run,
``audit verify`` afterwards (pruned by policy), the receipts, legal holds, and one-line refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from odeus_compliance.db.models import utcnow
from odeus_compliance.settings import Settings
from tests.support.audit import cli
from tests.support.retention import FAR, World, run


def test_dry_run_then_run_then_audit_verify_and_receipts(migrated_settings: Settings) -> None:
    async def make(w: World) -> list[str]:
        return [await w.report(9), await w.report(10)]

    reports = run(make, migrated_settings)
    far = (utcnow() + FAR).isoformat()

    held = cli(
        migrated_settings, "retention", "hold", "add", "--class", "reports", "--report-id", reports[0],
        "--reason", "Case 12/2026 (Jane Roe v. ACME)",
    )  # fmt: skip
    assert held.returncode == 0, held.stderr
    hold_id = held.stdout.strip()
    listed = json.loads(cli(migrated_settings, "retention", "hold", "list", "--json").stdout)
    assert [h["id"] for h in listed] == [hold_id]

    dry = cli(migrated_settings, "retention", "run", "--dry-run", "--now", far, "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["due"]["reports"] == [reports[1]]
    assert planned["held"]["reports"] == 1
    assert json.loads(cli(migrated_settings, "retention", "receipts", "--json").stdout) == []

    done = cli(migrated_settings, "retention", "run", "--now", far)
    assert done.returncode == 0, done.stderr
    assert (
        f"reports: deleted 1 (delete-ciphertext-and-rows), 1 kept by legal holds: {reports[1]}" in done.stdout
    )
    assert "Jane Roe" not in done.stdout + done.stderr

    verified = cli(migrated_settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "pruned by policy" in verified.stdout

    receipts = cli(migrated_settings, "retention", "receipts", "--json")
    assert receipts.returncode == 0, receipts.stderr
    body = json.loads(receipts.stdout)
    (vkey,) = {r["vkey"] for r in body}
    assert vkey.startswith("odeus-compliance/")
    assert {r["data_class"] for r in body} >= {"reports", "audit-payloads", "datasets"}
    assert all(r["signature_valid"] and r["status"] == "done" for r in body)
    # the offline check of docs/retention.md, run as an auditor would: the note, the items, the vkey
    doc = (Path(__file__).parents[2] / "docs" / "retention.md").read_text(encoding="utf-8")
    section = doc.split("### Checking a receipt offline", 1)[1]
    script = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert script is not None
    checker = migrated_settings.data_dir.parent / "check_receipt.py"
    checker.write_text(script.group(1), encoding="utf-8")
    for number, receipt in enumerate(body):
        path = checker.with_name(f"receipt-{number}.json")
        path.write_text(json.dumps(receipt), encoding="utf-8")
        checked = subprocess.run(
            [sys.executable, str(checker), str(path), vkey],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.split() == [receipt["id"], "done", receipt["data_class"], str(receipt["count"]),
                                          receipt["method"], "OK"]  # fmt: skip
        tampered = dict(receipt, items=[*receipt["items"][1:], "rpt_someone_else"])
        path.write_text(json.dumps(tampered), encoding="utf-8")
        refused = subprocess.run(
            [sys.executable, str(checker), str(path), vkey],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
    text = cli(migrated_settings, "retention", "receipts")
    assert text.returncode == 0
    header, *lines = text.stdout.splitlines()
    assert header.split("\t")[-1] == "signature_valid"
    assert [line.split("\t")[-1] for line in lines] == ["yes"] * len(body)
    assert f"vkey: {vkey}" in text.stderr

    archive = json.loads(cli(migrated_settings, "report", "list", "--json").stdout)
    assert [r["id"] for r in archive] == [reports[0]]

    released = cli(migrated_settings, "retention", "hold", "release", hold_id)
    assert released.returncode == 0, released.stderr
    again = cli(migrated_settings, "retention", "hold", "release", hold_id)
    assert again.returncode == 1
    assert again.stderr.strip() == "Error: there is no unreleased hold with that id"


def test_bad_usage_is_refused_in_one_line(migrated_settings: Settings) -> None:
    no_offset = cli(migrated_settings, "retention", "run", "--now", "2036-01-01T00:00")
    assert no_offset.returncode == 2
    assert "UTC offset" in no_offset.stderr
    cases = [
        (("--class", "reports", "--reason", " "), "a hold needs a reason"),
        (("--class", "reports", "--reason", "x", "--expires", "2001-01-01T00:00:00Z"), "expiry must be in"),
        (
            (
                "--class",
                "reports",
                "--reason",
                "x",
                "--from",
                "2026-02-01T00:00Z",
                "--to",
                "2026-01-01T00:00Z",
            ),
            "must end after it starts",
        ),
    ]
    for extra, message in cases:
        result = cli(migrated_settings, "retention", "hold", "add", *extra)
        assert result.returncode == 2, result.stderr  # bad usage: nothing stored
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    raw = cli(migrated_settings, "retention", "hold", "add", "--class", "raw-exports", "--reason", "x")
    assert raw.returncode == 2  # not a choice: raw exports are never stored
