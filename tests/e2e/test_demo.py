"""The README's main job, run as a user runs it: the installed command in a subprocess.

The demo must leave a signed PDF/A report that poppler's own tools (not our verifier) accept, with the
dataset, policy and manifest attached; the manifest must account for every row of the simulator's export
(checked against its JSON route for the same workspace and month), the printed figures must equal those of
the attached dataset, and no name, e-mail or user id of the workspace may appear in the output, the PDF's
text or any attachment.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
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
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


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


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def _printed(stdout: str, label: str) -> int:
    line = next(line for line in stdout.splitlines() if line.strip().startswith(label))
    return int(line.split()[-1])


def test_demo_makes_a_signed_verified_report_with_true_figures_and_nothing_personal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run_demo(out, "--users", str(USERS), "--seed", str(SEED), "--timezone", ZONE)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    pdf = out / "report.pdf"
    assert f"Signed PDF: {pdf}" in result.stdout
    assert "report verification: VALID" in result.stdout

    signature = _tool("pdfsig", str(pdf))
    assert "Signature is Valid." in signature.stdout
    assert "Total document signed" in signature.stdout
    listed = _tool("pdfdetach", "-list", str(pdf))
    names = {line.split(": ", 1)[1] for line in listed.stdout.splitlines() if ": " in line}
    # the default policy publishes grouped figures only: no per-person rows leave the engine
    assert names == {"manifest.json", "policy.toml"}
    attachments = tmp_path / "attachments"
    attachments.mkdir()
    assert _tool("pdfdetach", "-saveall", "-o", str(attachments), str(pdf)).returncode == 0
    manifest = json.loads((attachments / "manifest.json").read_text("utf-8"))
    transformation = manifest["transformation_manifest"]
    assert transformation["output"]["kind"] == "aggregates"
    assert "group_figures" not in transformation  # nothing from before the release is attached

    rows, identifying = _reference_rows()
    assert manifest["upstream_export"]["rows"] == len(rows)
    assert transformation["input"]["rows"] == len(rows)
    people = len({r["user_id"].strip().casefold() for r in rows})
    assert _printed(result.stdout, "people in the report") == people  # distinct people, all of them
    withheld = transformation["disclosure"]["audit"]["figures_withheld_for_dominance"]
    if "messages_total" not in withheld:
        assert _printed(result.stdout, "messages ") == sum(int(r["messages_total"]) for r in rows)

    text = _tool("pdftotext", str(pdf), "-").stdout
    everything = "\n".join(
        [result.stdout, result.stderr, text, *(p.read_text("utf-8") for p in attachments.iterdir())]
    ).lower()
    leaked = [value for value in identifying if value and value.lower() in everything]
    assert leaked == []

    # the data the demo leaves is usable by the other commands, with the key file it names
    data = out / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS")}
    env |= {
        "ODEUS_COMPLIANCE_DATA_DIR": str(data),
        "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(data / "demo-master.key"),
    }
    assert f"ODEUS_COMPLIANCE_MASTER_KEY_FILE={data / 'demo-master.key'}" in result.stdout
    listed_reports = subprocess.run(
        [sys.executable, "-m", "odeus_compliance", "report", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert listed_reports.returncode == 0, listed_reports.stderr
    assert [r["status"] for r in json.loads(listed_reports.stdout)] == ["succeeded"]


def test_demo_refuses_an_unknown_time_zone_with_one_line(tmp_path: Path) -> None:
    result = _run_demo(tmp_path / "out", "--timezone", "Mars/Olympus_Mons")

    assert result.returncode == 2
    assert "Mars/Olympus_Mons" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_demo_serve_keeps_the_service_up_with_one_working_key_per_role_and_the_report(tmp_path: Path) -> None:
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
        links: dict[str, str] = {}
        report_id = ""
        for line in process.stdout:
            fields = line.split()
            if line.startswith("Report rpt_"):
                report_id = fields[1].rstrip(":")
            if len(fields) == 2 and fields[0] in {"officer", "auditor", "admin"}:
                found = keys if fields[1].startswith("oc_") else links
                found[fields[0]] = fields[1]
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
        for role, link in links.items():  # one console sign-in link per role, each good once
            assert link.startswith(f"{base}/console/sign-in/")
            with httpx.Client(timeout=10) as browser:
                assert browser.get(link).status_code == 200
                home = browser.get(f"{base}/console/")
                assert home.status_code == 200
                assert f">{role}</span>" in home.text
            assert httpx.get(link, timeout=10).status_code == 403
        officer = {"Authorization": f"Bearer {keys['officer']}"}
        status = httpx.get(f"{base}/api/v1/reports/{report_id}", headers=officer, timeout=10)
        assert status.status_code == 200
        assert status.json()["status"] == "succeeded"
        download = httpx.get(
            f"{base}/api/v1/reports/{report_id}/pdf",
            params={"purpose": "demo check"},
            headers=officer,
            timeout=30,
        )
        assert download.status_code == 200
        assert download.content.startswith(b"%PDF-")
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
    assert sorted(keys) == ["admin", "auditor", "officer"]
    assert sorted(links) == ["admin", "auditor", "officer"]
