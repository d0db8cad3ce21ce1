"""``report run``, ``report verify``, ``report list`` as a user runs them (the installed command in a
subprocess against the simulator over loopback), and a ``report run`` killed with SIGKILL mid-job: after
the restart no job is left running, and the interrupted one is resumed to a verified report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.reports.flow import WORK_DIR
from odeus_compliance.reports.jobs import ReportJobs, ReportRecord, ReportStatus
from odeus_compliance.reports.runtime import standalone_runtime
from odeus_compliance.reports.verify import trust_anchors, verify_pdf
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI, cli_env

MONTH = "2026-10"


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=50, seed=5)) as running:
        yield running


def _env(settings: Settings, simulator: RunningSimulator) -> dict[str, str]:
    return {
        **cli_env(settings),
        "ODEUS_BASE_URL": simulator.base_url,
        "ODEUS_API_KEY": simulator.api_key,
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": simulator.download_host,
    }


def _cli(settings: Settings, simulator: RunningSimulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env=_env(settings, simulator),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def ready(migrated_settings: Settings, simulator: RunningSimulator) -> Settings:
    """``keys init`` done (the key ring and the demo signing certificate)."""
    result = _cli(migrated_settings, simulator, "keys", "init")
    assert result.returncode == 0, result.stderr
    return migrated_settings


def test_report_run_verify_and_list(ready: Settings, simulator: RunningSimulator, tmp_path: Path) -> None:
    out = tmp_path / "october.pdf"
    run = _cli(ready, simulator, "report", "run", "--month", MONTH, "--out", str(out), "--purpose", "audit")

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert " succeeded (version 1, sha256 " in run.stdout
    assert out.is_file()

    verified = _cli(ready, simulator, "report", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    assert "VALID" in verified.stdout
    as_json = _cli(ready, simulator, "report", "verify", "--json", str(out))
    assert json.loads(as_json.stdout)["valid"] is True

    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(out.read_bytes() + b"\n% appended after signing\n")
    refused = _cli(ready, simulator, "report", "verify", str(tampered))
    assert refused.returncode == 1, refused.stderr
    assert "INVALID" in refused.stdout

    listed = _cli(ready, simulator, "report", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["from"] == "2026-10-01T00:00:00+02:00"
    assert entry["to"] == "2026-11-01T00:00:00+01:00"
    assert (entry["policy"], entry["version"], entry["status"]) == ("default", 1, "succeeded")
    assert (entry["current"], entry["partial"], entry["data_until"]) == (True, False, None)
    assert entry["id"] in run.stdout
    plain = _cli(ready, simulator, "report", "list")
    header, row = plain.stdout.splitlines()
    assert header.split("\t") == ["id", "from", "to", "policy", "version", "status", "current", "partial"]
    assert row.split("\t") == [
        entry["id"],
        entry["from"],
        entry["to"],
        "default",
        "1",
        "succeeded",
        "yes",
        "no",
    ]


def test_report_run_refuses_bad_usage_and_reports_a_failed_job_in_one_line(
    ready: Settings, simulator: RunningSimulator
) -> None:
    bad_month = _cli(ready, simulator, "report", "run", "--month", "2026-13")
    assert bad_month.returncode == 2
    assert "YYYY-MM" in bad_month.stderr
    future = _cli(ready, simulator, "report", "run", "--month", f"{datetime.now(UTC).year + 1}-01")
    assert future.returncode == 2, future.stderr
    assert "must not be in the future" in future.stderr

    # a policy that is not in the folder is bad usage, like the API's 400: nothing is queued or recorded
    for policy in ("nope", "../default"):
        unknown = _cli(ready, simulator, "report", "run", "--month", MONTH, "--policy", policy)
        assert unknown.returncode == 2, unknown.stderr
        assert "Traceback" not in unknown.stderr
        assert "--policy" in unknown.stderr
        assert "no policy named" in unknown.stderr
    assert _jobs(ready) == []

    # a job that fails (Odeus refuses the key): exit 1, its reason in one line
    refused = subprocess.run(
        [CLI, "report", "run", "--month", MONTH],
        env={**_env(ready, simulator), "ODEUS_API_KEY": "not-the-key"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert refused.returncode == 1, refused.stderr
    # the progress line, then the error: no stray log record (Python's last-resort handler prints them)
    progress, error = refused.stderr.strip().splitlines()
    assert progress.startswith("report rpt_")
    assert progress.endswith("running it now ...")
    assert error.startswith("Error: report rpt_")
    assert "failed: the Odeus export could not be fetched" in error
    assert [r.status for r in _jobs(ready)] == [ReportStatus.FAILED]


def test_report_run_that_cannot_write_its_out_file_says_so_and_keeps_the_report(
    ready: Settings, simulator: RunningSimulator
) -> None:
    result = _cli(ready, simulator, "report", "run", "--month", MONTH, "--out", "/proc/report.pdf")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "succeeded and is archived, but the signed PDF could not be written to /proc/report.pdf" in last
    assert "database" not in last
    assert [r.status for r in _jobs(ready)] == [ReportStatus.SUCCEEDED]


def test_report_verify_of_a_file_that_is_no_pdf_is_invalid(ready: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\nnot really\n")
    result = subprocess.run(
        [CLI, "report", "verify", str(junk)], env=cli_env(ready), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_report_verify_that_cannot_judge_the_file_exits_2_in_one_line(
    ready: Settings, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\nnot really\n")
    broken = tmp_path / "anchors.pem"
    broken.write_text("not a certificate")
    cases = {
        "missing file": ([str(tmp_path / "absent.pdf")], {}),
        "a folder": ([str(tmp_path)], {}),
        "bad configuration": ([str(junk)], {"ODEUS_COMPLIANCE_REPORT_LEASE_SECONDS": "soon"}),
        "unreadable trust anchors": ([str(junk)], {"ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE": str(broken)}),
    }
    for name, (args, extra) in cases.items():
        result = subprocess.run(
            [CLI, "report", "verify", *args],
            env={**cli_env(ready), **extra},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr, name
        assert result.stdout == "", name
    assert (
        result.stderr.strip()
        == f"Error: cannot verify: ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE {broken} holds no PEM certificate"
    )


def _pdf_text(pdf: Path) -> str:
    """The PDF's text as poppler's pdftotext extracts it."""
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def _this_month() -> str:
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    return f"{today.year:04d}-{today.month:02d}"


def test_a_month_that_has_not_ended_is_refused_unless_partial_and_then_marked_on_the_cover(
    ready: Settings, simulator: RunningSimulator, tmp_path: Path
) -> None:
    month = _this_month()
    refused = _cli(ready, simulator, "report", "run", "--month", month)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "--month" in line
    assert "has not ended yet" in line
    assert "--partial" in line
    assert _jobs(ready) == []  # nothing queued or recorded

    out = tmp_path / "partial.pdf"
    made = _cli(ready, simulator, "report", "run", "--month", month, "--partial", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "partial period: data up to " in made.stdout
    text = _pdf_text(out)
    assert "Partial period: data up to " in text
    assert "Coverage" in text
    manifest = tmp_path / "manifest.json"
    subprocess.run(
        ["pdfdetach", "-savefile", "manifest.json", "-o", str(manifest), str(out)], check=True, timeout=60
    )
    period = json.loads(manifest.read_text("utf-8"))["period"]
    assert period["partial"] is True
    assert datetime.fromisoformat(period["data_until"]) < datetime.fromisoformat(period["to"])
    closed = tmp_path / "october.pdf"
    assert _cli(ready, simulator, "report", "run", "--month", MONTH, "--out", str(closed)).returncode == 0
    assert "Partial period" not in _pdf_text(closed)  # a closed month says nothing of the kind

    verified = _cli(ready, simulator, "report", "verify", "--json", str(out))
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["valid"] is True
    (partial, complete) = sorted(
        json.loads(_cli(ready, simulator, "report", "list", "--json").stdout),
        key=lambda r: r["from"],
        reverse=True,
    )
    assert partial["partial"] is True
    assert partial["data_until"] is not None
    assert datetime.fromisoformat(partial["data_until"]) < datetime.fromisoformat(partial["to"])
    assert complete["partial"] is False
    (record,) = [r for r in _jobs(ready) if r.id == partial["id"]]
    assert record.partial


def test_report_list_marks_the_current_version_of_each_period(
    ready: Settings, simulator: RunningSimulator
) -> None:
    first = _cli(ready, simulator, "report", "run", "--month", MONTH)
    assert first.returncode == 0, first.stderr
    listed = json.loads(_cli(ready, simulator, "report", "list", "--json").stdout)
    assert [(r["version"], r["current"]) for r in listed] == [(1, True)]
    # a failed re-run (Odeus refuses the key) is version 2, but the current one stays version 1
    failed = subprocess.run(
        [CLI, "report", "run", "--month", MONTH],
        env={**_env(ready, simulator), "ODEUS_API_KEY": "not-the-key"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert failed.returncode == 1, failed.stderr
    second = _cli(ready, simulator, "report", "run", "--month", MONTH)
    assert second.returncode == 0, second.stderr
    listed = json.loads(_cli(ready, simulator, "report", "list", "--json").stdout)
    assert [(r["version"], r["status"], r["current"]) for r in listed] == [
        (3, "succeeded", True),
        (2, "failed", False),
        (1, "succeeded", False),
    ]
    rows = _cli(ready, simulator, "report", "list").stdout.splitlines()[1:]
    assert [row.split("\t")[6] for row in rows] == ["yes", "no", "no"]


def _jobs(settings: Settings) -> list[ReportRecord]:
    async def go() -> list[ReportRecord]:
        engine = create_engine_for(settings)
        try:
            return await ReportJobs(session_factory(engine)).list()
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_report_run_killed_mid_job_leaves_no_running_job_and_is_resumed(
    ready: Settings, simulator: RunningSimulator
) -> None:
    process = subprocess.Popen(
        [CLI, "report", "run", "--month", MONTH],
        env=_env(ready, simulator),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed_in: str | None = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            running = [r for r in _jobs(ready) if r.status is ReportStatus.RUNNING]
            if running and running[0].stage == "render":
                killed_in = running[0].stage
                break
            time.sleep(0.05)
        assert killed_in == "render", "the job never reached the render stage"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # the killed command's orphaned worker, if any
            os.killpg(process.pid, signal.SIGKILL)
    (interrupted,) = _jobs(ready)
    assert interrupted.status is ReportStatus.RUNNING  # the dead process could not say otherwise
    left = ready.data_dir / WORK_DIR / interrupted.id / "1"
    assert (left / "dataset.csv").is_file()  # the killed attempt's pseudonymised output, swept on restart

    async def restart() -> tuple[ReportRecord | None, ReportRecord | None, bytes]:
        settings = _with_upstream(ready, simulator)
        async with standalone_runtime(settings, actor=SYSTEM_CLI) as runtime:  # recovers on start
            after_recovery = await runtime.jobs.get(interrupted.id)
            resumed = await runtime.run_job(interrupted.id)
            succeeded = resumed is not None and resumed.status is ReportStatus.SUCCEEDED
            pdf = await runtime.store.read(interrupted.id, "report.pdf") if succeeded else b""
        return after_recovery, resumed, pdf

    after_recovery, resumed, pdf = asyncio.run(restart())
    assert after_recovery is not None
    assert (after_recovery.status, after_recovery.stage) == (
        ReportStatus.QUEUED,
        "requeued after interruption",
    )
    assert resumed is not None
    assert (resumed.status, resumed.attempt) == (ReportStatus.SUCCEEDED, 2), resumed.error
    assert verify_pdf(pdf, anchors=trust_anchors(ready)).valid
    assert [r.status for r in _jobs(ready)] == [ReportStatus.SUCCEEDED]
    work = ready.data_dir / WORK_DIR
    assert not work.exists() or list(work.iterdir()) == []


def _with_upstream(settings: Settings, simulator: RunningSimulator) -> Settings:
    return dataclasses.replace(
        settings,
        odeus_base_url=simulator.base_url,
        odeus_api_key=Secret(simulator.api_key),
        download_hosts=frozenset({simulator.download_host}),
    )
