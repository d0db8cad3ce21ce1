"""The README's main job, run as a user runs it: the installed command in a subprocess.

Its totals are checked against figures computed independently from the simulator's JSON route for the same
workspace and month, and its output is searched for every name and e-mail of that workspace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from odeus_compliance.demo import last_month
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.request import ExportFormat, ExportRequest
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import run_simulator

USERS, SEED, ZONE = 80, 7, "Europe/Berlin"


def _run_demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "odeus_compliance", "demo", "--out", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS")}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def _reference_rows() -> tuple[list[dict[str, Any]], list[str]]:
    """The month's rows from the simulator's JSON route, and every identifying string of the workspace."""
    year, month = last_month(ZONE)
    request = ExportRequest.for_month(ExportType.USERS, year, month, ZONE, export_format=ExportFormat.JSON)
    with run_simulator(SimulatorConfig(users=USERS, seed=SEED)) as sim:
        response = httpx.post(
            sim.base_url + request.path,
            json=request.body(),
            headers={"Authorization": f"Bearer {sim.api_key}"},
            timeout=30,
        )
        identifying = [*sim.workspace.users.names, *sim.workspace.users.emails, *sim.workspace.users.ids]
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["data"]["rows"]
    return rows, identifying


def test_demo_prints_and_writes_the_true_totals_and_nothing_personal(tmp_path: Path) -> None:
    result = _run_demo(tmp_path / "out", "--users", str(USERS), "--seed", str(SEED), "--timezone", ZONE)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    rows, identifying = _reference_rows()

    assert summary["export"]["rows_read"] == summary["export"]["record_count"] == len(rows)
    assert summary["users"]["active"] == sum(1 for row in rows if row["messages_total"] > 0)
    assert summary["messages"]["messages_total"] == sum(row["messages_total"] for row in rows)
    assert summary["messages"]["messages_chat"] == sum(row["messages_chat"] for row in rows)
    models: Counter[str] = Counter()
    for row in rows:
        models.update(row["model_to_messages_total"])
    assert {m["model"]: m["messages"] for m in summary["models"]} == {k: v for k, v in models.items() if v}
    agents = {key for row in rows for key, count in row["assistants_to_messages"].items() if count}
    assert summary["agents_used"] == len(agents)
    payg = sum((Decimal(str(row["payg_consumption_in_period"])) for row in rows), Decimal(0))
    assert Decimal(summary["payg_consumption"]) == payg.quantize(Decimal("0.01"))

    everything = result.stdout + result.stderr + (tmp_path / "out" / "summary.json").read_text("utf-8")
    leaked = [value for value in identifying if value and value.lower() in everything.lower()]
    assert leaked == []


def test_demo_refuses_an_unknown_time_zone_with_one_line(tmp_path: Path) -> None:
    result = _run_demo(tmp_path / "out", "--timezone", "Mars/Olympus_Mons")

    assert result.returncode == 2
    assert "Mars/Olympus_Mons" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
