"""Every entry point of an audited action writes the record shape ``docs/audit-records.md`` documents.

One installation (SQLite) with the simulator as upstream is driven through the installed command, the HTTP
API served on loopback, and the scheduler (``schedule run-due``); the demo runs in an installation of its
own. The records are then read back the way an auditor reads them (``audit export`` bundles, plaintext
records) and each is checked against the table parsed from the documentation: resource, purpose, the keys
that are always there and the ones allowed, and which entry points wrote the action.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod
from odeus_compliance.security import Role
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI, cli_env
from tests.support.server import issue_keys, run_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-records.md"
MONTH = "2026-10"
PURPOSE = "record shape check"


@dataclasses.dataclass(frozen=True)
class Shape:
    resource: re.Pattern[str]
    purpose: bool
    always: frozenset[str]
    optional: frozenset[str]


PLACEHOLDERS = {
    "<report id>": "rpt_[0-9a-f]{24}",
    "<schedule id>": "[0-9a-f-]{36}",
    "<key id>": "[A-Za-z0-9:_.-]+",
}


def _keys(cell: str) -> frozenset[str]:
    """The backticked keys of a cell, leaving out what parentheses explain."""
    return frozenset(re.findall(r"`([a-z_0-9]+)`", re.sub(r"\(.*?\)", "", cell)))


def _resource_pattern(cell: str) -> re.Pattern[str]:
    alternatives = []
    for resource in re.findall(r"`([^`]+)`", cell):
        pattern = re.escape(resource)
        for placeholder, regex in PLACEHOLDERS.items():
            pattern = pattern.replace(re.escape(placeholder), regex)
        alternatives.append(pattern)
    return re.compile("|".join(alternatives))


def documented_shapes() -> dict[str, Shape]:
    """The first table of docs/audit-records.md: action -> shape."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Actions with several entry points", 1)[1].split("\n## ", 1)[0]
    shapes: dict[str, Shape] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].startswith("`"):
            continue
        action = cells[0].strip("`")
        shapes[action] = Shape(
            _resource_pattern(cells[1]), cells[2] == "yes", _keys(cells[3]), _keys(cells[4])
        )
    return shapes


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (args, result.stderr[-1500:])
    return result


def _bundle_records(env: dict[str, str], out: Path) -> list[dict[str, Any]]:
    _cli(env, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    bundle = json.loads(out.read_text(encoding="utf-8"))
    return [entry["record"] for entry in bundle["entries"] if entry["record"] is not None]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=40, seed=3)) as running:
        yield running


def _wait_succeeded(client: httpx.Client, report_id: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/reports/{report_id}", headers=headers).json()["status"]
        if status in {"succeeded", "failed"}:
            assert status == "succeeded"
            return
        time.sleep(0.3)
    pytest.fail("the report did not finish")


def _cancel_over_http(client: httpx.Client, sim: RunningSimulator, officer: dict[str, str]) -> None:
    """A job whose download stalls (or that is still queued) is cancelled: it cannot have ended yet."""
    sim.faults.slow_next(10.0, target="storage")
    body = {"month": MONTH, "timezone": "UTC", "policy": "default", "purpose": PURPOSE}
    queued = client.post("/api/v1/reports", json=body, headers=officer)
    assert queued.status_code == 202, queued.text
    cancelled = client.post(
        f"/api/v1/reports/{queued.json()['id']}/cancel", json={"purpose": PURPOSE}, headers=officer
    )
    assert cancelled.status_code == 200, cancelled.text


def _queue_job(settings: Settings) -> str:
    """A queued job with no runner (no service runs now), for ``report cancel``."""

    async def go() -> str:
        engine = create_engine_for(settings)
        try:
            jobs = ReportJobs(session_factory(engine))
            period = ReportPeriod.month(2026, 10, "UTC")
            return (await jobs.request(period=period, policy="default", purpose=PURPOSE, requested_by="t")).id
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _drive_http(settings: Settings, tmp_path: Path, sim: RunningSimulator) -> None:
    keys = issue_keys(settings)  # apikey.created, from the bootstrap the demo's --serve uses
    auth = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    with run_server(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        # a policy that releases per-person rows, so every kind of hand-out can be made
        body = {"month": MONTH, "timezone": "Europe/Berlin", "policy": "rows", "purpose": PURPOSE}
        queued = client.post("/api/v1/reports", json=body, headers=auth[Role.OFFICER])
        assert queued.status_code == 202, queued.text
        report_id = queued.json()["id"]
        _wait_succeeded(client, report_id, auth[Role.OFFICER])
        pdf = client.get(
            f"/api/v1/reports/{report_id}/pdf", params={"purpose": PURPOSE}, headers=auth[Role.OFFICER]
        )
        assert pdf.status_code == 200
        data = client.get(
            f"/api/v1/reports/{report_id}/data.csv", params={"purpose": PURPOSE}, headers=auth[Role.OFFICER]
        )
        assert data.status_code == 200
        full = client.get(
            f"/api/v1/reports/{report_id}/pdf",
            params={"purpose": PURPOSE, "variant": "full"},
            headers=auth[Role.OFFICER],
        )
        assert full.status_code == 200
        verified = client.post(
            "/api/v1/reports/verify",
            content=pdf.content,
            headers={**auth[Role.AUDITOR], "Content-Type": "application/pdf"},
        )
        assert verified.status_code == 200
        _cancel_over_http(client, sim, auth[Role.OFFICER])
        schedule = {"name": "http", "every": "month", "day": 2, "time": "06:30", "timezone": "UTC"}
        schedule["policy"] = "default"
        assert client.put("/api/v1/schedules", json=schedule, headers=auth[Role.ADMIN]).status_code == 200
        assert client.get("/api/v1/audit/verify", headers=auth[Role.AUDITOR]).status_code == 200
        exported = client.post(
            "/api/v1/audit/export",
            json={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "purpose": PURPOSE},
            headers=auth[Role.AUDITOR],
        )
        assert exported.status_code == 200, exported.text


def _drive_cli(env: dict[str, str], tmp_path: Path) -> None:
    created = _cli(env, "apikey", "create", "--role", "auditor", "--name", "shape check")
    key_id = re.search(r"key id: ([0-9a-f-]{36})", created.stderr)
    assert key_id is not None
    _cli(env, "apikey", "revoke", key_id[1])
    active_from = (dt.datetime.now(dt.UTC) - dt.timedelta(days=45)).isoformat()
    _cli(env, "schedule", "set", "monthly", "--every", "month", "--day", "1", "--time", "00:05",
         "--timezone", "UTC", "--policy", "default", "--active-from", active_from)  # fmt: skip
    _cli(env, "report", "run", "--month", MONTH, "--out", str(tmp_path / "cli.pdf"), "--purpose", PURPOSE)
    _cli(env, "schedule", "run-due")  # the scheduler: last month's period is due
    _cli(env, "keys", "rotate", "report-data")
    _cli(env, "audit", "verify")


def _source(record: dict[str, Any], installation: str) -> str:
    actor = record["actor_key_id"] or ""
    if installation == "demo":
        return "demo"
    if actor == "system:scheduler":
        return "scheduler"
    if actor.startswith("system:"):
        return "cli"
    return "http"


EXPECTED_SOURCES = {
    "report.requested": {"http", "cli", "demo", "scheduler"},
    "report.downloaded": {"http", "cli", "demo"},
    "dataset.downloaded": {"http"},
    "report.verified": {"http", "demo"},
    "report.cancelled": {"http", "cli"},
    "schedule.changed": {"http", "cli"},
    "apikey.created": {"cli"},
    "apikey.revoked": {"cli"},
    "audit.verified": {"http", "cli"},
    "audit.exported": {"http", "cli"},
    "key.rotated": {"cli"},
}


def test_every_entry_point_writes_the_documented_record_shape(tmp_path: Path, sim: RunningSimulator) -> None:
    shapes = documented_shapes()
    assert set(shapes) == set(EXPECTED_SOURCES)

    database = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    settings = dataclasses.replace(
        Settings.for_tests(tmp_path / "data", database_url=database),
        odeus_base_url=sim.base_url,
        odeus_api_key=Secret(sim.api_key),
        download_hosts=frozenset({sim.download_host}),
    )
    env = {
        **cli_env(settings),
        "ODEUS_BASE_URL": sim.base_url,
        "ODEUS_API_KEY": sim.api_key,
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": sim.download_host,
    }
    _cli(env, "db", "upgrade")
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    _drive_http(settings, tmp_path, sim)
    _drive_cli(env, tmp_path)
    _cli(env, "report", "cancel", _queue_job(settings), "--purpose", PURPOSE)
    _bundle_records(env, tmp_path / "first.json")  # a bundle holds what came before its own export record
    records = [(r, "main") for r in _bundle_records(env, tmp_path / "main.json")]

    demo_out = tmp_path / "demo"
    demo_env = dict(cli_env(None))
    _cli(demo_env, "demo", "--out", str(demo_out), "--users", "30")
    demo_env |= {
        "ODEUS_COMPLIANCE_DATA_DIR": str(demo_out / "data"),
        "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(demo_out / "data" / "demo-master.key"),
    }
    records += [(r, "demo") for r in _bundle_records(demo_env, tmp_path / "demo.json")]

    seen: dict[str, set[str]] = defaultdict(set)
    for record, installation in records:
        action = record["action"]
        if action not in shapes:
            continue
        shape = shapes[action]
        where = f"{action} from {_source(record, installation)}"
        assert shape.resource.fullmatch(record["resource"]), (where, record["resource"])
        assert (record["purpose"] is not None) == shape.purpose, where
        keys = set(record["details"])
        assert shape.always <= keys, (where, sorted(shape.always - keys))
        assert keys <= shape.always | shape.optional, (where, sorted(keys - shape.always - shape.optional))
        seen[action].add(_source(record, installation))
    for action, sources in EXPECTED_SOURCES.items():
        assert sources <= seen[action], (action, sorted(sources - seen[action]))
