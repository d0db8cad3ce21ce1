"""A real report's inputs for tests and benchmarks: a simulator users export, a policy run, the meta.

The export is what the simulator serves (same tables, same CSV writer), built without its HTTP servers; the
policy run is the real engine (``apply_to_file``); nothing is stubbed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.engine import apply_to_file
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.model import Policy
from odeus_compliance.reports.content import ReportMeta
from odeus_compliance.reports.render import Attachment
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.render import select, to_csv, visible_columns
from odeus_compliance.upstream.simulator.usage import Period, Privacy, build_table
from odeus_compliance.upstream.simulator.workspace import generate_workspace

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
TEMPLATES = ROOT / "report_templates"
MASTER = bytes(range(32))
TODAY = date(2026, 11, 15)
BERLIN = ZoneInfo("Europe/Berlin")


def _ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


OCTOBER = Period(_ms(2026, 10, 1), _ms(2026, 11, 1) - 1, date(2026, 10, 1), date(2026, 10, 31))


def simulator_export(path: Path, *, users: int, byok: bool, seed: int = 1) -> Path:
    """The simulator's October users export as CSV bytes at ``path``."""
    config = SimulatorConfig(users=users, seed=seed, byok=byok, today=TODAY)
    workspace = generate_workspace(users=users, seed=seed, today=TODAY, age_days=300)
    table = build_table(workspace, ExportType.USERS, OCTOBER, byok=byok, group_by=None, privacy=Privacy())
    path.write_bytes(to_csv(select(table, visible_columns(ExportType.USERS, None, config)), config))
    return path


@dataclass(frozen=True)
class PolicyRunFiles:
    """The engine's output for one export: the dataset CSV and the sealed manifest."""

    raw: Path
    dataset: Path
    manifest: dict[str, Any]
    manifest_path: Path


def run_policy(policy: Policy, raw: Path, out_dir: Path) -> PolicyRunFiles:
    """The real policy engine over ``raw``."""
    dataset = out_dir / "data.csv"
    manifest_path = out_dir / "transformation.json"
    apply_to_file(
        policy,
        ExportType.USERS,
        source=raw,
        out=dataset,
        manifest_path=manifest_path,
        keys=engine_keys(MASTER, policy),
    )
    return PolicyRunFiles(raw, dataset, json.loads(manifest_path.read_text(encoding="utf-8")), manifest_path)


def meta_for(
    policy: Policy, *, workspace: str = "Nordlicht workspace", report_id: str = "rpt_0001"
) -> ReportMeta:
    """Cover facts of an October 2026 report in Europe/Berlin."""
    return ReportMeta(
        report_id=report_id,
        workspace=workspace,
        period_from=datetime(2026, 10, 1, tzinfo=BERLIN),
        period_to=datetime(2026, 11, 1, tzinfo=BERLIN),
        timezone="Europe/Berlin",
        policy_name=policy.name,
        policy_version=policy.version,
        policy_hash=policy_hash(policy),
        generated_at=datetime(2026, 11, 2, 6, 0, 0, tzinfo=UTC),
        audit_checkpoint="odeus-compliance.example/audit\n42\nq2v3Zm9vYmFyYmF6cXV4\n",
        retention={"report": "until 2036-11-30", "dataset": "until 2027-04-30"},
        software_version="0.1.0",
    )


def attachments_for(run: PolicyRunFiles, policy_text: bytes) -> list[Attachment]:
    """The dataset, the policy and a manifest, as the flow embeds them."""
    return [
        Attachment("data.csv", run.dataset.read_bytes(), "text/csv", "Pseudonymised dataset"),
        Attachment("policy.toml", policy_text, "application/toml", "The policy in force"),
        Attachment(
            "manifest.json", run.manifest_path.read_bytes(), "application/json", "Transformation manifest"
        ),
    ]
