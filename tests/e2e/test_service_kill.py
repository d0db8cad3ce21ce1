"""``kill -9`` of ``odeus-compliance serve`` in the middle of a report job and of a PDF verification: its
worker processes (the report renderer, the verifier, multiprocessing's helper) end on their own, and the
per-person work copy it leaves in the data dir is ciphertext, never the dataset in clear."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.flow import WORK_DIR
from odeus_compliance.reports.jobs import ReportJobs, ReportRecord, ReportStatus
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI, cli_env
from tests.support.server import issue_keys

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

MONTH = "2026-10"
DATASET_HEADER_WORDS = (b"department", b"company_name", b"license_type")
"""Column names of the default policy's per-person dataset: in its first line when written in clear."""


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=50, seed=5)) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _jobs(settings: Settings) -> list[ReportRecord]:
    async def go() -> list[ReportRecord]:
        engine = create_engine_for(settings)
        try:
            return await ReportJobs(session_factory(engine)).list()
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from ``/proc``)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text("ascii", "replace").rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its new parent to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text("ascii", "replace").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _wait_until(condition: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_kill_9_of_the_service_ends_its_workers_and_leaves_no_plaintext(
    migrated_settings: Settings, simulator: RunningSimulator
) -> None:
    settings = migrated_settings
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    keys = issue_keys(settings)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **cli_env(settings),
        "ODEUS_BASE_URL": simulator.base_url,
        "ODEUS_API_KEY": simulator.api_key,
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": simulator.download_host,
        "ODEUS_COMPLIANCE_VERIFY_TIMEOUT_SECONDS": "600",
    }
    service = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so that the clean-up below can reach anything left behind
    )
    release = threading.Event()
    workers: set[int] = set()
    try:

        def ready() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200
            return False

        _wait_until(ready, "the service did not start")
        officer = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
        requested = httpx.post(
            f"{base_url}/api/v1/reports",
            json={"month": MONTH, "timezone": "Europe/Berlin", "policy": "default", "purpose": "kill test"},
            headers=officer,
            timeout=60,
        )
        assert requested.status_code == 202, requested.text

        def held() -> Iterator[bytes]:  # a verification in progress: its process waits for the rest
            yield b"%PDF-1.7\n" + b"0 " * 4096
            release.wait(timeout=300)

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    f"{base_url}/api/v1/reports/verify",
                    content=held(),
                    headers={**officer, "content-type": "application/pdf"},
                    timeout=300,
                )

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()

        def rendering() -> bool:
            running = [r for r in _jobs(settings) if r.status is ReportStatus.RUNNING]
            return bool(running) and running[0].stage == "render"

        _wait_until(rendering, "the job never reached the render stage")
        _wait_until(lambda: len(_children(service.pid)) >= 2, "no renderer and verifier processes")
        workers = _children(service.pid)
        os.kill(service.pid, signal.SIGKILL)  # the service only: its workers must notice by themselves
        service.wait(30)

        _wait_until(lambda: not any(_alive(pid) for pid in workers), "worker processes outlived the service")
        work = settings.data_dir / WORK_DIR
        left = [path for path in work.rglob("*") if path.is_file()]
        assert any(path.name == "dataset.csv" for path in left), "the kill missed the job's work copy"
        for path in left:
            data = path.read_bytes()
            assert not any(word in data for word in DATASET_HEADER_WORDS), f"{path.name} is in clear"
    finally:
        release.set()
        if service.poll() is None:
            service.kill()
            service.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
