"""The OpenAPI document is one a client can be generated from, and the generated client does the main job.

``openapi-python-client`` generates a typed client from ``/schema/openapi.json`` of a real server (offline,
in a subprocess, with no warning: an operation or response it could not type would be one). The client then
requests a report, polls its status, downloads the signed PDF and has it verified, with its typed functions
only; and the errors come back parsed as the declared problem model. The document itself: every error of
every operation is a problem document of the one schema, each guarded operation declares what its
authentication answers, request fields carry their rules and examples, and descriptions are Markdown
without raw HTML.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import httpx
import pytest
from markdown_it import MarkdownIt

from odeus_compliance.app import create_app
from odeus_compliance.security import ROLES_OPT, Role, iter_http_routes
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, last_month, simulator_server

PACKAGE: Final = "odeus_compliance_client"
PROBLEM_REF: Final = {"$ref": "#/components/schemas/ProblemDetails"}
GENERATOR_CONFIG: Final = "content_type_overrides:\n  application/pdf: application/octet-stream\n"
"""The generator reads only JSON, text and octet-stream bodies: a PDF is bytes (README, HTTP API)."""

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def report_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service pulling from the built-in Odeus simulator, with the demo signing certificate."""
    with simulator_server(migrated_settings, users=40, seed=5) as (server, _sim):
        yield server


def _generate(spec: dict[str, Any], folder: Path) -> ModuleType:
    """Generate the client package from ``spec`` into ``folder`` and import it."""
    (folder / "openapi.json").write_text(json.dumps(spec), encoding="utf-8")
    (folder / "config.yaml").write_text(GENERATOR_CONFIG, encoding="utf-8")
    tools = Path(sys.executable).parent  # the generator and the ruff it formats with
    result = subprocess.run(
        [
            str(tools / "openapi-python-client"),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--output-path",
            str(folder / "client"),
            "--config",
            str(folder / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # an operation, body or response the generator cannot type is a warning (and left out of the client)
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(folder / "client"))
    return importlib.import_module(PACKAGE)


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Any]:
    """A factory: the client package generated from a document; unloaded afterwards."""
    yield lambda spec: _generate(spec, tmp_path)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]


def _api(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_requests_polls_downloads_and_verifies(
    report_server: LiveServer, generated: Any
) -> None:
    server = report_server
    spec = httpx.get(f"{server.base_url}/schema/openapi.json").json()
    package = generated(spec)
    models = _api(package, "models")
    request_report = _api(package, "api.reports.request_report")
    get_report = _api(package, "api.reports.get_report")
    download_pdf = _api(package, "api.reports.download_report_pdf")
    download_dataset = _api(package, "api.reports.download_report_dataset")
    verify_report = _api(package, "api.reports.verify_report")
    whoami = _api(package, "api.keys.whoami")
    file_type = _api(package, "types").File

    with contextlib.ExitStack() as stack:

        def client(role: Role | None) -> Any:
            timeout = httpx.Timeout(120)
            if role is None:
                made = package.Client(base_url=server.base_url, timeout=timeout)
            else:
                made = package.AuthenticatedClient(
                    base_url=server.base_url, token=server.keys[role], timeout=timeout
                )
            return stack.enter_context(made)  # closed, with its connections, when the test ends

        officer, auditor = client(Role.OFFICER), client(Role.AUDITOR)

        # request -> 202 with the job, typed
        body = models.ReportRequestIn(
            purpose="works council review", month=last_month(), timezone="Europe/Berlin", policy="default"
        )
        requested = request_report.sync_detailed(client=officer, body=body)
        assert requested.status_code == 202, requested.content
        job = requested.parsed
        assert isinstance(job, models.ReportOut)
        assert job.status in {"queued", "running"}

        # poll the status until it has finished (a deadline only so that a broken job cannot hang CI)
        deadline = time.monotonic() + 240
        status = get_report.sync(report_id=job.id, client=officer)
        while status.status not in {"succeeded", "failed"}:
            assert time.monotonic() < deadline, status.to_dict()
            time.sleep(0.2)
            status = get_report.sync(report_id=job.id, client=officer)
        assert isinstance(status, models.ReportOut)
        assert status.status == "succeeded", status.to_dict()

        # download the signed PDF (bytes), and have it verified through the same client
        pdf = download_pdf.sync(report_id=job.id, client=auditor, purpose="annual audit")
        assert isinstance(pdf, file_type)
        content = pdf.payload.read()
        assert content.startswith(b"%PDF-")
        assert hashlib.sha256(content).hexdigest() == status.pdf_sha256
        verdict = verify_report.sync(
            client=auditor, body=file_type(payload=io.BytesIO(content), mime_type="application/pdf")
        )
        assert verdict.additional_properties["valid"] is True, verdict.to_dict()

        # errors come back as the declared problem model, with the field named and nothing echoed
        missing = get_report.sync_detailed(report_id="rpt_000000000000000000000000", client=auditor)
        assert missing.status_code == 404
        assert isinstance(missing.parsed, models.ProblemDetails)
        assert missing.parsed.type_ == "urn:odeus-compliance:problem:not-found"
        assert missing.parsed.status == 404

        forbidden = download_dataset.sync_detailed(report_id=job.id, client=auditor, purpose="curiosity")
        assert forbidden.status_code == 403
        assert isinstance(forbidden.parsed, models.ProblemDetails)
        assert forbidden.parsed.type_ == "urn:odeus-compliance:problem:permission-denied"

        secret = "jane.doe@example.com"
        bad = request_report.sync_detailed(
            client=officer, body=models.ReportRequestIn(purpose="x", month=secret, timezone="Europe/Berlin")
        )
        assert bad.status_code == 400
        assert isinstance(bad.parsed, models.ProblemDetails)
        assert secret.encode() not in bad.content
        (error,) = bad.parsed.errors
        assert isinstance(error, models.FieldProblem)
        assert (error.key, error.source) == ("month", "body")
        assert error.message == "must match the pattern ^[0-9]{4}-(0[1-9]|1[0-2])$"

        anonymous = whoami.sync_detailed(client=client(None))
        assert anonymous.status_code == 401
        assert isinstance(anonymous.parsed, models.ProblemDetails)
        assert anonymous.parsed.type_ == "urn:odeus-compliance:problem:not-authenticated"


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def test_the_document_declares_every_error_as_a_problem_document(migrated_settings: Settings) -> None:
    app = create_app(migrated_settings)
    doc = app.openapi_schema.to_schema()
    roles = {
        (m, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", p)): h.opt.get(ROLES_OPT) for m, p, h in iter_http_routes(app)
    }
    failures: list[str] = []
    for method, path, operation in _operations(doc):
        responses = operation["responses"]
        for status, response in responses.items():
            if status[0] in "45":
                content = response.get("content", {})
                if list(content) != ["application/problem+json"]:
                    failures.append(f"{method} {path} {status}: {list(content)}")
                elif content["application/problem+json"]["schema"] != PROBLEM_REF:
                    failures.append(f"{method} {path} {status}: not the ProblemDetails schema")
        route_roles = roles[method, path]
        if route_roles:
            expected = {"401", "429", "503"} | ({"403"} if set(route_roles) != set(Role) else set())
            if not expected <= set(responses):
                failures.append(f"{method} {path}: no {sorted(expected - set(responses))}")
        body = operation.get("requestBody", {}).get("content", {})
        if body and "413" not in responses:
            failures.append(f"{method} {path}: a body without 413")
    assert failures == []
    # the one problem schema, with the members every problem has required
    problem = doc["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert set(doc["components"]["schemas"]["FieldProblem"]["required"]) == {"key", "source", "message"}


def test_request_fields_carry_their_rules_and_examples(migrated_settings: Settings) -> None:
    doc = create_app(migrated_settings).openapi_schema.to_schema()
    schemas = doc["components"]["schemas"]

    def field(schema: str, name: str) -> dict[str, Any]:
        value: dict[str, Any] = schemas[schema]["properties"][name]
        return next((v for v in value.get("oneOf", []) if v.get("type") == "string"), value) | {
            k: v for k, v in value.items() if k != "oneOf"
        }

    request = schemas["ReportRequestIn"]
    assert request["required"] == ["purpose"]
    assert field("ReportRequestIn", "month")["pattern"] == "^[0-9]{4}-(0[1-9]|1[0-2])$"
    assert field("ReportRequestIn", "month")["examples"] == ["2026-10"]
    assert field("ReportRequestIn", "policy")["pattern"]
    assert field("ReportRequestIn", "timezone")["examples"] == ["Europe/Berlin"]
    assert field("PeriodEndIn", "date")["pattern"]
    schedule = schemas["ScheduleIn"]
    assert set(schedule["required"]) == {"name", "every", "day", "time", "timezone", "policy"}
    assert field("ScheduleIn", "time")["pattern"] == "^([01][0-9]|2[0-3]):[0-5][0-9]$"
    assert field("ScheduleIn", "every")["enum"] == ["month", "quarter", "week"]
    assert field("ExportRequest", "from")["pattern"]
    for name in ("ReportRequestIn", "PeriodEndIn", "ScheduleIn", "DeliveryIn", "ExportRequest"):
        for prop, value in schemas[name]["properties"].items():
            assert value.get("description"), f"{name}.{prop} has no description"
    purpose = next(
        p
        for p in doc["paths"]["/api/v1/reports/{report_id}/pdf"]["get"]["parameters"]
        if p["name"] == "purpose"
    )
    assert purpose["required"] is True
    assert purpose["schema"]["minLength"] == 1


def test_descriptions_are_markdown_without_raw_html(migrated_settings: Settings) -> None:
    doc = create_app(migrated_settings).openapi_schema.to_schema()
    markdown = MarkdownIt("commonmark")
    found: list[str] = []
    for text in _descriptions(doc):
        stack = list(markdown.parse(text))
        while stack:
            token = stack.pop()
            stack.extend(token.children or [])
            # raw HTML would vanish when rendered; an indented block would turn into code
            if token.type in {"html_inline", "html_block", "code_block"}:
                found.append(f"{token.type}: {text[:80]!r}")
    assert found == []
