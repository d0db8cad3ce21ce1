"""Several ``odeus-compliance schedule run-due`` processes against one database (SQLite file or PostgreSQL):
racing the same due time they make exactly one report per period; when the claiming process is killed in
the middle of its run, a later process takes the run over after the lease and finishes the same report."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from odeus_compliance.db.engine import create_engine_for
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI, cli_env


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=30, seed=9)) as running:
        yield running


def env_for(settings: Settings, sim: RunningSimulator) -> dict[str, str]:
    return {
        **cli_env(settings),
        "ODEUS_API_KEY": sim.api_key,
        "ODEUS_BASE_URL": sim.base_url,
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": sim.download_host,
    }


def due_time() -> dt.datetime:
    """06:00 Berlin time on the 1st of this month: when last month's report fell due."""
    first = dt.datetime.now(dt.UTC).date().replace(day=1)
    return dt.datetime.combine(first, dt.time(6, 0), ZoneInfo("Europe/Berlin")).astimezone(dt.UTC)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "schedule", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killing it kills its report worker too
    )


def query(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        engine = create_engine_for(settings)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in (await conn.execute(text(statement))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def set_schedule(settings: Settings, env: dict[str, str], due: dt.datetime) -> str:
    created = subprocess.run(
        [CLI, "schedule", "set", "monthly", "--every", "month", "--day", "1", "--time", "06:00",
         "--timezone", "Europe/Berlin", "--policy", "default",
         "--active-from", (due - dt.timedelta(days=1)).isoformat()],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.fixture
def env(migrated_settings: Settings, sim: RunningSimulator) -> dict[str, str]:
    ensure_demo_certificate(migrated_settings.data_dir, migrated_settings.require_master_key())
    return env_for(migrated_settings, sim)


def test_three_processes_racing_make_one_report(migrated_settings: Settings, env: dict[str, str]) -> None:
    due = due_time()
    schedule_id = set_schedule(migrated_settings, env, due)
    processes = [start(env, "run-due", "--now", due.isoformat()) for _ in range(3)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in processes]
    assert all(code == 0 for code, _out, _err in results), [err[-500:] for _c, _o, err in results]
    lines = [line.split("\t") for _c, out, _e in results for line in out.splitlines()]
    assert [(line[0], line[2], line[3]) for line in lines] == [("monthly", "1", "succeeded")]
    reports = query(
        migrated_settings, f"SELECT id, status FROM reports WHERE requested_by = 'schedule:{schedule_id}'"
    )
    assert reports == [(lines[0][4], "succeeded")]
    runs = query(migrated_settings, "SELECT status, attempts, report_id FROM schedule_runs")
    assert runs == [("succeeded", 1, lines[0][4])]


def test_a_killed_claimant_is_taken_over_after_the_lease(
    migrated_settings: Settings, env: dict[str, str], sim: RunningSimulator
) -> None:
    due = due_time()
    set_schedule(migrated_settings, env, due)
    sim.faults.slow_next(30.0, count=1)  # the claimant's first upstream call hangs: it is mid-run
    claimant = start(env, "run-due", "--now", due.isoformat(), "--lease-seconds", "5")
    deadline = time.monotonic() + 120
    while True:
        rows = query(
            migrated_settings,
            "SELECT r.status, r.report_id, j.status FROM schedule_runs r "
            "JOIN reports j ON j.id = r.report_id",
        )
        if rows and rows[0][0] == "running" and rows[0][2] == "running":
            break
        assert claimant.poll() is None, claimant.communicate()
        assert time.monotonic() < deadline, "the claimant never got going"
        time.sleep(0.2)
    report_id = rows[0][1]
    os.killpg(claimant.pid, signal.SIGKILL)
    claimant.communicate(timeout=30)  # reaps it and closes its pipes
    # a tick within the lease leaves the run alone (the owner might be alive) ...
    early = subprocess.run(
        [CLI, "schedule", "run-due", "--now", due.isoformat()],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (early.returncode, early.stdout) == (0, "")
    # ... a tick after it takes the run over and finishes the same report job
    later = (due + dt.timedelta(minutes=5)).isoformat()
    taker = subprocess.run(
        [CLI, "schedule", "run-due", "--now", later],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert taker.returncode == 0, taker.stderr[-1000:]
    [line] = [line.split("\t") for line in taker.stdout.splitlines()]
    assert (line[3], line[4]) == ("succeeded", report_id)
    runs = query(migrated_settings, "SELECT status, attempts, report_id, lease_owner FROM schedule_runs")
    assert runs == [("succeeded", 1, report_id, None)]
    assert query(migrated_settings, "SELECT id, status FROM reports") == [(report_id, "succeeded")]


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_service_replicas_tick_and_run_each_period_once(
    migrated_settings: Settings, env: dict[str, str]
) -> None:
    """Three ``serve`` replicas on one database, each ticking every second with the real clock: last
    month's report (due on the 1st, already past) is made exactly once."""
    due = due_time()
    schedule_id = set_schedule(migrated_settings, env, due)
    replica_env = {**env, "ODEUS_COMPLIANCE_SCHEDULE_TICK_SECONDS": "1"}
    replicas = [
        subprocess.Popen(
            [CLI, "serve", "--port", str(free_port())],
            env=replica_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 300
        while not query(migrated_settings, "SELECT 1 FROM schedule_runs WHERE status = 'succeeded'"):
            for replica in replicas:
                assert replica.poll() is None, replica.communicate()[1][-2000:]
            assert time.monotonic() < deadline, query(
                migrated_settings, "SELECT status, error FROM schedule_runs"
            )
            time.sleep(0.5)
        time.sleep(3)  # several more ticks of every replica: nothing new may happen
    finally:
        for replica in replicas:
            os.killpg(replica.pid, signal.SIGTERM)
        for replica in replicas:
            replica.communicate(timeout=60)
    runs = query(migrated_settings, "SELECT status, attempts, report_id FROM schedule_runs")
    assert len(runs) == 1
    assert runs[0][:2] == ("succeeded", 1)
    reports = query(
        migrated_settings, f"SELECT id, status FROM reports WHERE requested_by = 'schedule:{schedule_id}'"
    )
    assert reports == [(runs[0][2], "succeeded")]
