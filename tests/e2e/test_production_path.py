"""The production path as a new user follows it: the README's steps run verbatim (bash, the installed command,
a fresh working directory and data dir) against the simulator, ending with a signed report that verifies;
without a signing key, ``init`` fails, ``serve`` says why and ``/health/ready`` is 503 naming ``signing``;
the demo certificate signs outside the demo only where allowed, and then says so.

What the README block cannot hold is swapped in, each checked to be there: the Odeus key (``sk-...``, the
simulator's), the signing files' folder (``/etc/odeus-compliance/`` under ``tmp_path``), the command's path
(``.venv/bin/odeus-compliance``, this checkout's) and the port. ``ODEUS_BASE_URL`` and
``ODEUS_COMPLIANCE_DOWNLOAD_HOSTS`` point at the simulator from the environment, as a dedicated deployment
would set them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from odeus_compliance.db.engine import create_engine_for
from odeus_compliance.reports.verify import verify_pdf
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI
from tests.support.postgres import scratch_database
from tests.support.tsa import SigningPki, make_test_pki

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MONTH = "2026-10"
DEMO_COVER = "signed with the self-signed demo certificate, not for production"
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=40, seed=14)) as running:
        yield running


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_test_pki("Production path")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ODEUS_* variable (a new user's shell), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ODEUS_")}, **extra}


def _upstream(simulator: RunningSimulator) -> dict[str, str]:
    return {"ODEUS_BASE_URL": simulator.base_url, "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": simulator.download_host}


def readme_production_steps() -> str:
    """The first ``sh`` block of the README's "Running it against Odeus" section, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Running it against Odeus\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "the README's production section has no sh block"
    return match.group(1)


def _swap(script: str, old: str, new: str) -> str:
    assert old in script, f"the README's production steps no longer contain {old!r}"
    return script.replace(old, new)


def _write_signing_files(pki: SigningPki, folder: Path) -> None:
    """What an operator puts in place: the signing key, its certificate then the issuer, the CA."""
    folder.mkdir(parents=True)
    key, cert = pki.signer.write_pem(folder, "signing", chain=(pki.root.certificate,))
    assert (key.name, cert.name) == ("signing.key.pem", "signing.pem")
    (folder / "ca.pem").write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))


@contextlib.contextmanager
def _running(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[str]]:
    """``command`` in its own process group (stderr to ``log``), stopped with everything it started."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=sink, text=True, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _ready(base_url: str, process: subprocess.Popen[str], log: Path) -> httpx.Response:
    """The first answer of ``/health/ready`` once the service listens."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        assert process.poll() is None, f"exited early: {log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{base_url}/health/ready", timeout=10)
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _until_ready(base_url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while (answer := _ready(base_url, process, log)).status_code != 200:
        assert time.monotonic() < deadline, (answer.text, log.read_text()[-3000:])
        time.sleep(0.5)


def _report_through_http(base_url: str, key: str, tmp_path: Path) -> Path:
    """Request last October's report, wait for it, download the signed PDF."""
    auth = {"Authorization": f"Bearer {key}"}
    purpose = "production path test"
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as client:
        requested = client.post(
            "/api/v1/reports",
            json={"month": MONTH, "timezone": "Europe/Berlin", "policy": "default", "purpose": purpose},
        )
        assert requested.status_code == 202, requested.text
        report_id = requested.json()["id"]
        deadline = time.monotonic() + 300
        while (job := client.get(f"/api/v1/reports/{report_id}").json())["status"] != "succeeded":
            assert job["status"] in {"queued", "running"}, job
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        pdf = client.get(f"/api/v1/reports/{report_id}/pdf", params={"purpose": purpose})
        assert pdf.status_code == 200, pdf.text
    out = tmp_path / "report.pdf"
    out.write_bytes(pdf.content)
    return out


def _pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


def test_the_readme_production_steps_end_with_a_signed_report_that_verifies(
    tmp_path: Path, simulator: RunningSimulator, pki: SigningPki
) -> None:
    work = tmp_path / "work"  # the user's fresh working directory: ./data and master.key are made here
    work.mkdir()
    etc = tmp_path / "etc" / "odeus-compliance"
    _write_signing_files(pki, etc)
    port = _free_port()
    script = readme_production_steps()
    script = _swap(script, "sk-...", simulator.api_key)
    script = _swap(script, "/etc/odeus-compliance/", f"{etc}/")
    script = _swap(script, ".venv/bin/odeus-compliance", CLI)
    script = _swap(script, "serve --port 8000", f"serve --port {port}")
    log = tmp_path / "steps.log"

    env = _clean_env(**_upstream(simulator))
    with _running(["bash", "-e", "-c", script], env=env, cwd=work, log=log) as steps:
        assert steps.stdout is not None
        printed = []
        for line in steps.stdout:  # init's origin and vkey, then the officer's key
            printed.append(line.strip())
            if line.startswith("oc_officer_"):
                break
        assert [p.split(": ", 1)[0] for p in printed[:2]] == ["origin", "vkey"], log.read_text()[-3000:]
        officer_key = printed[-1]
        assert officer_key.startswith("oc_officer_"), log.read_text()[-3000:]
        base_url = f"http://127.0.0.1:{port}"
        ready = _ready(base_url, steps, log)
        assert ready.status_code == 200, ready.text  # ready from the first answer: nothing was missing
        pdf = _report_through_http(base_url, officer_key, tmp_path)

    steps_log = log.read_text()
    assert "report signing: ok" in steps_log  # init's trial signature
    warnings = [line for line in steps_log.splitlines() if line.startswith("warning: ")]
    # nothing to warn about on this path (no typo, a signing key of its own) but the key shown once
    assert [w for w in warnings if "store this key now" not in w] == []
    assert (work / "data").is_dir()
    assert (work / "master.key").stat().st_mode & 0o077 == 0  # the README's umask: for this user only

    verified = subprocess.run(
        [CLI, "report", "verify", str(pdf)],
        env=_clean_env(ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE=str(etc / "ca.pem")),
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID" in verified.stdout
    result = verify_pdf(pdf.read_bytes(), anchors=(pki.root.certificate,))
    assert result.valid, result.render_text()
    assert result.signer is not None
    assert "Production path Report Signer" in result.signer
    assert "not for production" not in result.signer
    assert DEMO_COVER not in _pdf_text(pdf)


def test_without_a_signing_key_init_fails_serve_says_so_and_is_not_ready(tmp_path: Path) -> None:
    env = _clean_env(
        ODEUS_COMPLIANCE_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        ODEUS_API_KEY="upstream-test-key",
    )
    init = subprocess.run(
        [CLI, "init"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert init.returncode == 1, init.stderr
    assert "Traceback" not in init.stderr
    assert init.stdout.startswith("origin: ")  # the migrations and the key ring are done all the same
    assert "reports cannot be signed: no report-signing key is configured" in init.stderr
    assert "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE" in init.stderr
    assert not (tmp_path / "data" / "report-signing").exists()  # no demo certificate where not allowed

    port = _free_port()
    log = tmp_path / "serve.log"
    with _running([CLI, "serve", "--port", str(port)], env=env, cwd=tmp_path, log=log) as service:
        base_url = f"http://127.0.0.1:{port}"
        ready = _ready(base_url, service, log)
        live = httpx.get(f"{base_url}/health/live", timeout=10)
    assert live.status_code == 200
    assert ready.status_code == 503, ready.text
    assert ready.headers["content-type"].startswith("application/problem+json")
    body = ready.json()
    assert body["check"] == "signing"
    assert body["detail"] == "Reports cannot be signed: no report-signing key is configured."
    assert str(tmp_path) not in ready.text  # a public probe names no path
    said = [
        line for line in log.read_text().splitlines() if line.startswith("warning: reports cannot be signed")
    ]
    assert len(said) == 1, log.read_text()[-3000:]
    assert "ODEUS_COMPLIANCE_SIGNING_KEY_FILE" in said[0]


def test_the_demo_certificate_signs_outside_the_demo_only_where_allowed(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    env = _clean_env(
        ODEUS_COMPLIANCE_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        ODEUS_API_KEY=simulator.api_key,
        **_upstream(simulator),
    )

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert cli("init").returncode == 1  # no signing key, and the demo certificate is not allowed
    # 'keys init' makes the demo certificate where no key is configured (for trials), and says it is idle
    made = cli("keys", "init")
    assert made.returncode == 0, made.stderr
    assert "only with ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true" in made.stderr
    refused = cli("report", "run", "--month", MONTH, "--purpose", "demo certificate refused")
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true" in refused.stderr
    again = cli("init")  # the trial signature is refused the same way, though the certificate exists
    assert again.returncode == 1
    assert "no report-signing key is configured" in again.stderr

    allow = {"ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE": "true"}
    assert cli("init", **allow).returncode == 0
    port = _free_port()
    log = tmp_path / "serve.log"
    with _running(
        [CLI, "serve", "--port", str(port)], env={**env, **allow}, cwd=tmp_path, log=log
    ) as service:
        ready = _ready(f"http://127.0.0.1:{port}", service, log)
    assert ready.status_code == 200, ready.text
    warned = [line for line in log.read_text().splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1, log.read_text()[-3000:]
    assert "self-signed demo certificate, not for production" in warned[0]

    out = tmp_path / "trial.pdf"
    signed = cli("report", "run", "--month", MONTH, "--purpose", "trial", "--out", str(out), **allow)
    assert signed.returncode == 0, signed.stderr
    assert DEMO_COVER in _pdf_text(out)  # the cover says what the signature is worth


@pytest.mark.postgres
def test_init_from_several_replicas_at_once_on_postgresql(tmp_path: Path, pki: SigningPki) -> None:
    """One database, three ``init`` processes started together (each replica's data dir apart): each ends
    with the schema at head and the same key ring; nothing is created twice."""
    etc = tmp_path / "etc"
    _write_signing_files(pki, etc)
    with scratch_database() as url:
        env = _clean_env(
            ODEUS_COMPLIANCE_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
            ODEUS_COMPLIANCE_DATABASE_URL=url,
            ODEUS_COMPLIANCE_SIGNING_KEY_FILE=str(etc / "signing.key.pem"),
            ODEUS_COMPLIANCE_SIGNING_CERT_FILE=str(etc / "signing.pem"),
            ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE=str(etc / "ca.pem"),
        )
        processes = [
            subprocess.Popen(
                [CLI, "init"],
                env={**env, "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path / f"replica-{n}")},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
        assert [code for code, _out, _err in results] == [0, 0, 0], [err for _c, _o, err in results]
        assert len({out for _code, out, _err in results}) == 1  # one origin and vkey: one installation
        settings = Settings.for_tests(tmp_path / "replica-0", database_url=url)
        kinds = asyncio.run(_key_kinds(settings))
    assert sorted(kinds) == sorted(set(kinds))  # epoch 1 of each kind, once


async def _key_kinds(settings: Settings) -> list[str]:
    engine = create_engine_for(settings)
    try:
        async with engine.connect() as connection:
            return [str(row[0]) for row in await connection.execute(text("SELECT kind FROM key_epochs"))]
    finally:
        await engine.dispose()
