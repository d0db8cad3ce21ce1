"""The README's main job, run as a user runs it: the installed command in a subprocess.

Its totals are checked against figures computed independently from the simulator's JSON route for the same
workspace and month, and its output is searched for every name and e-mail of that workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
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


def test_demo_serve_keeps_the_service_up_with_one_working_key_per_role(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "odeus_compliance",
        "demo",
        "--out",
        str(tmp_path / "out"),
        "--users",
        "40",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS")}
    process = subprocess.Popen(
        [*command, "--serve", "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        keys: dict[str, str] = {}
        for line in process.stdout:
            fields = line.split()
            if len(fields) == 2 and fields[0] in {"officer", "auditor", "admin"}:
                keys[fields[0]] = fields[1]
            if len(keys) == 3:
                break
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # the server starts right after the keys are printed
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base + "/health/live", timeout=1)
                break
            time.sleep(0.1)
        for role, key in keys.items():
            me = httpx.get(base + "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}, timeout=5)
            assert me.status_code == 200
            assert me.json()["role"] == role
        assert httpx.get(base + "/api/v1/whoami", timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
    assert sorted(keys) == ["admin", "auditor", "officer"]
