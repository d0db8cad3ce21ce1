"""Hostile requests get a 400 naming the field, never a 500 (and never an echo of the value).

First the cases a security review found answered with 500; then a bounded sweep driven by the service's own
OpenAPI document: every operation, as every role and with no key, with hostile values in each parameter
(huge and negative integers, control, bidi and format characters, overlong text) and hostile bodies (deep
nesting, wrong types, overlong fields; raw bytes for the PDF upload). No answer may be a 5xx.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest

from odeus_compliance.security import Role
from tests.support.server import LiveServer

# deeper than the decoder's recursion limit, yet under every body size limit (a report request's is 16 KiB)
_DEEP_ARRAY: Final = "[" * 3000 + "]" * 3000
_DEEP_OBJECT: Final = '{"a":' * 1500 + "1" + "}" * 1500
_MARK: Final = "Z9Q7X"  # in hostile text, so an echo of the value would be found


def _field(response: httpx.Response) -> set[str]:
    return {e.get("key", "") for e in response.json().get("errors", [])}


def _assert_400_naming(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, (response.request.url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in _field(response) or f"'{field}'" in response.json()["detail"], response.text[:400]
    assert _MARK not in response.text


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=60) as http:
        yield http


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/audit/entries", {"after": "99999999999999999999"}, "after"),
        ("/api/v1/audit/entries/9223372036854775808/proof", {}, "seq"),
        ("/api/v1/audit/consistency", {"from": "9223372036854775807"}, "from"),
        ("/api/v1/audit/consistency", {"from": "1", "to": "9223372036854775807"}, "to"),
        ("/api/v1/audit/entries/0/proof", {"size": "99999999999999999999"}, "size"),
    ],
)
def test_out_of_range_numbers_are_400(
    live_server: LiveServer, client: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    _assert_400_naming(client.get(path, params=params, headers=live_server.auth(Role.AUDITOR)), field)


_BAD_PURPOSES: Final = [
    f"a\x01{_MARK}",
    f"tab\t{_MARK}",
    f"{_MARK}\x7f",
    f"{_MARK}\x85",
    f"bidi \u202e{_MARK}",
    f"isolate \u2066{_MARK}\u2069",
    f"zero\u200bwidth {_MARK}",
    f"\ufeff{_MARK}",
    f"line\u2028{_MARK}",
    _MARK + "x" * 600,
]


@pytest.mark.parametrize("purpose", _BAD_PURPOSES)
def test_one_purpose_rule_on_every_route(live_server: LiveServer, client: httpx.Client, purpose: str) -> None:
    auditor, officer = live_server.auth(Role.AUDITOR), live_server.auth(Role.OFFICER)
    for path, params in [
        ("/api/v1/audit/entries", {}),
        ("/api/v1/audit/checkpoint", {}),
        ("/api/v1/audit/entries/0/proof", {}),
        ("/api/v1/audit/consistency", {"from": "1"}),
    ]:
        _assert_400_naming(
            client.get(path, params={**params, "purpose": purpose}, headers=auditor), "purpose"
        )
    export = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "purpose": purpose}
    _assert_400_naming(client.post("/api/v1/audit/export", json=export, headers=auditor), "purpose")
    report = {"month": "2026-01", "timezone": "UTC", "policy": "default", "purpose": purpose}
    _assert_400_naming(client.post("/api/v1/reports", json=report, headers=officer), "purpose")
    pdf = "/api/v1/reports/rpt_000000000000000000000000/pdf"
    _assert_400_naming(client.get(pdf, params={"purpose": purpose}, headers=officer), "purpose")


@pytest.mark.parametrize("body", [_DEEP_ARRAY, _DEEP_OBJECT])
def test_deeply_nested_json_is_400_on_every_body_route(
    live_server: LiveServer, client: httpx.Client, body: str
) -> None:
    for method, path, role in [
        ("POST", "/api/v1/audit/export", Role.AUDITOR),
        ("PUT", "/api/v1/schedules", Role.ADMIN),
        ("POST", "/api/v1/reports", Role.OFFICER),
    ]:
        headers = {**live_server.auth(role), "content-type": "application/json"}
        _assert_400_naming(client.request(method, path, content=body, headers=headers), "body")


def test_a_report_period_at_the_end_of_time_is_400(live_server: LiveServer, client: httpx.Client) -> None:
    body = {
        "from": {"date": "2026-01-01T00:00:00.000Z", "timezone": "UTC"},
        "to": {"date": "9999-12-31T23:59:59.999", "timezone": "UTC"},
        "policy": "default",
        "purpose": "end of time",
    }
    response = client.post("/api/v1/reports", json=body, headers=live_server.auth(Role.OFFICER))
    _assert_400_naming(response, "to.date")


# --- the sweep -------------------------------------------------------------------------------------------

_HOSTILE_VALUES: Final = [
    "99999999999999999999",
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "0",
    "",
    "1e309",
    f"a\x00{_MARK}",
    f"\u202e{_MARK}",
    "x" * 2000,
    "%",
    "../../etc/passwd",
    "9999-12-31T23:59:59.999",
]
_HOSTILE_JSON: Final[list[bytes]] = [
    _DEEP_ARRAY.encode(),
    _DEEP_OBJECT.encode(),
    b"{}",
    b"[]",
    b"null",
    b'"text"',
    b"{",
    b"\xff\xfe",
    json.dumps({"month": "9999-12", "timezone": "\u202e", "purpose": "x" * 5000, "from": "x"}).encode(),
    json.dumps({"from": 99999999999999999999, "to": -1, "purpose": ["a"], "since_checkpoint": {}}).encode(),
    json.dumps({"name": "\x00", "every": "month", "day": 10**20, "time": "25:61", "timezone": "x"}).encode(),
]
_PDF_BODIES: Final = [b"", b"%PDF-1.7\n" + b"[" * 20000, b"%PDF-1.7\n%%EOF\n", b"not a pdf"]


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


def _requests(path: str, operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """(path, query, request keywords) with one hostile value at a time, bounded per operation."""
    parameters = [p for p in operation.get("parameters", []) if p.get("in") in {"path", "query"}]
    path_names = [p["name"] for p in parameters if p["in"] == "path"]
    fill = dict.fromkeys(path_names, "1")

    def concrete(values: dict[str, str]) -> str:
        return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: values.get(m.group(1), "1"), path)

    yield concrete(fill), {}, {}
    for parameter, value in itertools.product(parameters, _HOSTILE_VALUES):
        if parameter["in"] == "path":
            if value in {"", "%"}:  # not a path segment at all
                continue
            yield concrete({**fill, parameter["name"]: quote(value, safe="")}), {}, {}
        else:
            yield concrete(fill), {parameter["name"]: value}, {}
    content = operation.get("requestBody", {}).get("content", {})
    if "application/pdf" in content:  # the upload's serializer: raw bytes, as the route reads them
        for raw in _PDF_BODIES:
            yield concrete(fill), {}, {"content": raw, "headers": {"content-type": "application/pdf"}}
    elif content:
        for raw in _HOSTILE_JSON:
            yield concrete(fill), {}, {"content": raw, "headers": {"content-type": "application/json"}}


def test_no_operation_answers_5xx_to_hostile_input_as_any_role(live_server: LiveServer) -> None:
    roles: list[Role | None] = [Role.AUDITOR, Role.OFFICER, Role.ADMIN, None]
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=live_server.base_url, timeout=120) as client:
        doc = client.get("/schema/openapi.json").json()
        operations = list(_operations(doc))
        assert len(operations) >= 15
        # no key last: a flood of refusals may rate-limit this client (a 429, never a 5xx)
        for role, (method, path, operation) in itertools.product(roles, operations):
            auth = live_server.auth(role) if role is not None else {}
            for concrete, query, extra in _requests(path, operation):
                headers = {**auth, **extra.pop("headers", {})}
                response = client.request(method, concrete, params=query, headers=headers, **extra)
                sent += 1
                if response.status_code >= 500:
                    failures.append(f"{method} {path} as {role}: {response.status_code} {query or ''}")
                elif response.status_code >= 400:
                    assert _MARK not in response.text, (method, path)
    assert sent > 500
    assert failures == []


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--out", "b.json"],
        ["report", "run", "--month", "2026-01"],
        ["report", "cancel", "rpt_000000000000000000000000"],
    ],
)
@pytest.mark.parametrize("purpose", [f"a\x01{_MARK}", f"\u202e{_MARK}", "x" * 501, " "])
def test_the_cli_applies_the_same_purpose_rule(command: list[str], purpose: str) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from odeus_compliance.cli import main  # noqa: PLC0415

    result = CliRunner().invoke(main, [*command, "--purpose", purpose])
    assert result.exit_code == 2, result.output
    assert "--purpose" in result.output
    assert _MARK not in result.output
