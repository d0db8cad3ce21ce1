"""The Odeus simulator against the upstream contract (CONTRACT.md and the seed OpenAPI document).

Real servers over loopback (``run_simulator``) and httpx; every success and error body is checked against the
schemas of ``tests/contract/odeus-seed-openapi.yaml`` by a small hand-written checker. ``today`` is fixed so
the tests do not age.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used

from odeus_compliance.upstream.columns import (
    ALLOWED_GROUP_BY,
    BYOK_ONLY_GROUP_BY,
    ExportType,
    GroupBy,
    Kind,
    columns_for,
)
from odeus_compliance.upstream.simulator import RunningSimulator, SimulatorConfig, run_simulator

CENT = Decimal("0.01")
TODAY = date(2026, 11, 15)  # the workspace was created 300 days earlier, on 2026-01-19
SPEC = yaml.safe_load((Path(__file__).parents[1] / "contract" / "odeus-seed-openapi.yaml").read_text("utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


# --- a small JSON-schema checker for the subset the seed document uses ----------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return SCHEMAS[ref.rsplit("/", 1)[1]] if ref else schema


def check_schema(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Fail with the JSON path of the first value that does not match ``schema``."""
    schema = _resolve(schema)
    for part in schema.get("allOf", []):
        check_schema(value, part, where)
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), f"{where}: not an object"
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing {name}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                check_schema(value[name], sub, f"{where}.{name}")
    elif kind == "array":
        assert isinstance(value, list), f"{where}: not an array"
        for n, item in enumerate(value):
            check_schema(item, schema.get("items", {}), f"{where}[{n}]")
    elif kind == "string":
        assert isinstance(value, str), f"{where}: not a string"
        if schema.get("format") == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        if schema.get("format") == "uri":
            assert httpx.URL(value).scheme in {"http", "https"}, f"{where}: not a URL"
    elif kind == "integer":
        assert isinstance(value, int), f"{where}: not an integer"
        assert not isinstance(value, bool), f"{where}: a boolean, not an integer"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: not a boolean"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"


def json_route_schema() -> dict[str, Any]:
    """The seed response schema as the JSON route answers: ``rows`` instead of filePath/downloadUrl."""
    schema: dict[str, Any] = copy.deepcopy(SCHEMAS["UsageExportResponse"])
    data = schema["properties"]["data"]
    data["required"] = [r for r in data["required"] if r not in {"filePath", "downloadUrl"}] + ["rows"]
    data["properties"]["rows"] = {"type": "array", "items": {"type": "object"}}
    return schema


def check_error(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """An Odeus error: the status, a JSON body of exactly ``error`` and ``message``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    check_schema(body, SCHEMAS["UsageExportError"])
    assert set(body) == {"error", "message"}
    if error is not None:
        assert body["error"] == error
    return body


# --- helpers -------------------------------------------------------------------------------------------


def body(start: str, end: str, tz: str = "UTC", tz_end: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"from": {"date": start, "timezone": tz}, "to": {"date": end, "timezone": tz_end or tz}, **extra}


def month(year: int, number: int, tz: str = "UTC", **extra: Any) -> dict[str, Any]:
    next_first = date(year + number // 12, number % 12 + 1, 1)
    last = date.fromordinal(next_first.toordinal() - 1)
    return body(f"{year}-{number:02d}-01T00:00:00.000Z", f"{last.isoformat()}T23:59:59.999Z", tz, **extra)


OCTOBER = month(2026, 10)


def client(sim: RunningSimulator, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {key or sim.api_key}"}, timeout=30
    )


def export(sim: RunningSimulator, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    with client(sim) as c:
        response = c.post(path, json=payload)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = json.loads(response.content, parse_float=Decimal)  # decimals stay exact
    return result


def download(data: dict[str, Any]) -> httpx.Response:
    response = httpx.get(data["downloadUrl"], timeout=30)
    assert response.status_code == 200, response.text
    return response


def csv_rows(sim: RunningSimulator, path: str, payload: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    data = export(sim, path, payload)["data"]
    text = download(data).content.decode("utf-8")
    table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert len(table) - 1 == data["recordCount"]
    return table[0], table[1:]


def dicts(sim: RunningSimulator, path: str, payload: dict[str, Any]) -> list[dict[str, str]]:
    header, rows = csv_rows(sim, path, payload)
    return [dict(zip(header, row, strict=True)) for row in rows]


def total(rows: list[dict[str, str]], column: str) -> int:
    return sum(int(r[column]) for r in rows)


def map_sum(rows: list[dict[str, str]], column: str) -> Counter[str]:
    summed: Counter[str] = Counter()
    for row in rows:
        summed.update(json.loads(row[column]))
    return summed


_CELL = {
    Kind.INT: re.compile(r"-?\d+"),
    Kind.DECIMAL: re.compile(r"-?\d+(\.\d+)?"),
    Kind.DATE: re.compile(r"\d{4}-\d{2}-\d{2}"),
    Kind.BOOL: re.compile(r"true|false"),
}


def typed(kind: Kind, text: str) -> Any:
    """A CSV cell read by its column kind (as the JSON route writes it)."""
    if text == "":
        return None
    if kind in _CELL:
        assert _CELL[kind].fullmatch(text), f"{text!r} is not {kind}"
    if kind is Kind.INT:
        return int(text)
    if kind is Kind.DECIMAL:
        return Decimal(text)
    if kind is Kind.BOOL:
        return text == "true"
    if kind is Kind.JSON_MAP:
        value = json.loads(text)
        assert isinstance(value, dict)
        assert all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in value.items())
        return value
    return text


# --- simulators ----------------------------------------------------------------------------------------


class FakeClock:
    """A settable clock for URL expiry and the rate limit."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SETTINGS = {
    "plain": {},
    "byok": {"byok": True},
    "private": {"user_level_data": False},
    "byok-private": {"byok": True, "user_level_data": False},
}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, RunningSimulator]]:
    """One running simulator per workspace setting (shared by the module: starting one takes ~0.2 s)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(run_simulator(SimulatorConfig(today=TODAY, **flags)))  # type: ignore[arg-type]
            for name, flags in SETTINGS.items()
        }


@pytest.fixture(scope="module")
def sim(sims: dict[str, RunningSimulator]) -> RunningSimulator:
    return sims["plain"]


def start(**settings: Any) -> Any:
    """A simulator of its own, for tests that change global state (faults, clock, limits)."""
    return run_simulator(SimulatorConfig(today=TODAY, **settings))


# --- the matrix: every export type x format x group_by x BYOK x user-level data ------------------------


def _matrix() -> list[Any]:
    cases = []
    for setting in SETTINGS:
        byok = "byok" in setting
        for export_type in ExportType:
            options = sorted(
                (g for g in ALLOWED_GROUP_BY[export_type] if byok or g not in BYOK_ONLY_GROUP_BY),
                key=lambda g: g.value,
            )
            for group_by in [None, *options]:
                for fmt in ("", "/csv", "/json"):
                    label = f"{setting}-{export_type.value}{fmt}-{group_by.value if group_by else 'plain'}"
                    cases.append(pytest.param(setting, export_type, group_by, fmt, id=label))
    return cases


@pytest.mark.parametrize(("setting", "export_type", "group_by", "fmt"), _matrix())
def test_every_export_matches_the_contract(
    sims: dict[str, RunningSimulator],
    setting: str,
    export_type: ExportType,
    group_by: GroupBy | None,
    fmt: str,
) -> None:
    sim = sims[setting]
    byok = "byok" in setting
    private = "private" in setting
    payload = month(2026, 10, "Europe/Berlin", **({"group_by": group_by.value} if group_by else {}))
    response = export(sim, f"/export/{export_type.value}{fmt}", payload)
    expected = columns_for(export_type, byok=byok, group_by=group_by, user_level_data=not private)
    data = response["data"]
    assert response["success"] is True
    assert data["dataType"] == export_type.data_type
    assert data["dateRange"] == {"from": "2026-09-30T22:00:00.000Z", "to": "2026-10-31T22:59:59.999Z"}
    if fmt == "/json":
        check_schema(response, json_route_schema())
        assert "filePath" not in data
        assert "downloadUrl" not in data
        rows = data["rows"]
        assert len(rows) == data["recordCount"]
        assert all(list(row) == [c.name for c in expected] for row in rows)
        typed_rows = [[row[c.name] for c in expected] for row in rows]
    else:
        check_schema(response, SCHEMAS["UsageExportResponse"])
        name = export_type.value
        assert re.fullmatch(
            rf"{name}-usage/{sim.workspace.workspace_id}/{name}-usage-2026-10-01-2026-10-31-[0-9a-f]{{8}}\.csv",
            data["filePath"],
        )
        url = httpx.URL(data["downloadUrl"])
        assert url.port != httpx.URL(sim.base_url).port  # the storage host, not the API
        assert str(url).startswith(sim.storage_url)
        file = download(data)
        assert file.headers["content-type"].startswith("text/csv")
        assert int(file.headers["content-length"]) == len(file.content)
        table = list(csv.reader(io.StringIO(file.content.decode("utf-8"), newline=""), strict=True))
        assert table[0] == [c.name for c in expected]
        assert len(table) - 1 == data["recordCount"]
        typed_rows = [
            [typed(c.kind, cell) for c, cell in zip(expected, row, strict=True)] for row in table[1:]
        ]
    assert typed_rows, "every export of a month in the history has rows"
    for row in typed_rows:
        cells = dict(zip([c.name for c in expected], row, strict=True))
        assert cells["period_start"] == "2026-10-01"
        assert cells["period_end"] == "2026-10-31"
        assert cells["org_id"] == sim.workspace.org_id
        _check_row_rules(export_type, cells, private=private)


def _check_row_rules(export_type: ExportType, cells: dict[str, Any], *, private: bool) -> None:
    if export_type is ExportType.USERS:
        assert cells["assistants_messaged"] == len(cells["assistants_to_messages"])
        assert cells["projects_messaged"] == len(cells["projects_to_messages"])
        assert cells["action_messaged"] == len(cells["action_to_messages"])
        assert cells["messages_total"] == (
            cells["messages_chat"] + cells["messages_assistants"] + cells["messages_projects"]
        )
        assert sum(cells["model_to_messages_total"].values()) == cells["messages_total"]
        limit = Decimal(cells["payg_limit_current"])
        used = Decimal(cells["payg_consumption_in_period"])
        expected = (100 * used / limit).quantize(CENT, ROUND_HALF_UP) if limit else Decimal(0)
        assert Decimal(cells["payg_utilization_pct_current"]) == expected
        if private:
            assert cells["user_id"].startswith("anon_")
            assert cells["name"] in {None, ""}
            assert cells["email"] in {None, ""}
        else:
            assert cells["user_id"].startswith("usr_")
            assert "@" in cells["email"]
    if export_type.canonical is ExportType.ASSISTANTS:
        assert cells["active_users"] <= cells["unique_users"]
        if cells["unique_users"]:
            expected_ratio = (Decimal(cells["messages"]) / cells["unique_users"]).quantize(
                CENT, ROUND_HALF_UP
            )
            assert Decimal(cells["messages_per_user"]) == expected_ratio


# --- errors --------------------------------------------------------------------------------------------


def test_missing_or_invalid_key_is_401(sim: RunningSimulator) -> None:
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": sim.api_key}):
        response = httpx.post(f"{sim.base_url}/export/users", json=OCTOBER, headers=headers)
        assert check_error(response, 401) == {
            "error": "Unauthorized",
            "message": "Invalid or missing API key",
        }


def test_key_without_scope_is_403(sim: RunningSimulator) -> None:
    with client(sim, sim.unscoped_api_key) as c:
        check_error(c.post("/export/users", json=OCTOBER), 403, "Forbidden")


def test_browser_origin_is_403(sim: RunningSimulator) -> None:
    with client(sim) as c:
        check_error(c.post("/export/users", json=OCTOBER, headers={"Origin": "https://evil.example"}), 403)


@pytest.mark.parametrize(
    ("payload", "part"),
    [
        (body("2026-10-31T00:00:00.000Z", "2026-10-01T00:00:00.000Z"), "from is after to"),
        (body("2026-10-01T00:00:00.000Z", "2026-10-31T00:00:00.000Z", "Mars/Olympus"), "from.timezone"),
        (
            body("2026-10-01T00:00:00.000Z", "2026-10-31T00:00:00.000Z", "UTC", "Europe/Nowhere"),
            "to.timezone",
        ),
        (body("01.10.2026", "2026-10-31T00:00:00.000Z"), "from.date"),
        (body("2026-10-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z"), "to.date"),
        ({"from": {"date": "2026-10-01"}}, "from.timezone"),
        ({"to": {"date": "2026-10-01", "timezone": "UTC"}}, "from"),
    ],
)
def test_invalid_range_is_400_saying_which_part(sim: RunningSimulator, payload: Any, part: str) -> None:
    with client(sim) as c:
        error = check_error(c.post("/export/users", json=payload), 400, "Invalid date range")
    assert part in error["message"]


def test_malformed_body_is_400(sim: RunningSimulator) -> None:
    with client(sim) as c:
        check_error(c.post("/export/users", content=b"not json"), 400)
        check_error(c.post("/export/users", json=[1, 2]), 400)


@pytest.mark.parametrize(
    ("path", "group_by"),
    [("projects", "model"), ("users", "source"), ("models", "model"), ("models", "deployment"), ("users", 7)],
)
def test_unsupported_group_by_is_400(sim: RunningSimulator, path: str, group_by: Any) -> None:
    with client(sim) as c:
        error = check_error(c.post(f"/export/{path}", json={**OCTOBER, "group_by": group_by}), 400)
    assert "group_by" in error["message"]


def test_deployment_grouping_needs_byok(sims: dict[str, RunningSimulator]) -> None:
    payload = {**OCTOBER, "group_by": "deployment"}
    rows = dicts(sims["byok"], "/export/models", payload)
    assert rows
    assert {r["deployment"] for r in rows} >= {"eu-west"}
    with client(sims["plain"]) as c:
        check_error(c.post("/export/models", json=payload), 400)


def test_history_reaches_back_12_months(sim: RunningSimulator) -> None:
    with client(sim) as c:
        error = check_error(c.post("/export/users", json=month(2025, 11)), 400)  # starts 2025-11-01 < 11-15
        assert "12 months" in error["message"]
        check_error(
            c.post("/export/users", json=body("2025-11-14T23:59:59.999Z", "2026-01-02T00:00:00Z")), 400
        )
        # 2025-11-15 00:00 UTC is the oldest allowed instant; the period still predates the workspace: 404.
        check_error(c.post("/export/users", json=body("2025-11-15T00:00:00Z", "2026-01-02T00:00:00Z")), 404)


def test_period_before_the_workspace_existed_is_404(sim: RunningSimulator) -> None:
    with client(sim) as c:
        error = check_error(c.post("/export/users/json", json=month(2025, 12)), 404)
    assert error == {"error": "No data found", "message": "No usage data found for the selected period"}
    # A period reaching into the workspace's first day has data.
    rows = export(sim, "/export/users/json", body("2026-01-01T00:00:00Z", "2026-01-19T12:00:00Z"))["data"][
        "rows"
    ]
    assert rows


def test_unknown_routes_and_methods_answer_in_odeus_shape(sim: RunningSimulator) -> None:
    with client(sim) as c:
        check_error(c.post("/export/people", json=OCTOBER), 404)
        check_error(c.post("/export/users/xml", json=OCTOBER), 404)
        check_error(c.post("/nothing/here", json=OCTOBER), 404)
        check_error(c.get("/export/users"), 405)
    check_error(httpx.get(f"{sim.storage_url}/elsewhere"), 404)


def test_export_too_large_names_the_row_count() -> None:
    with start(row_cap=250) as sim, client(sim) as c:
        whole = c.post("/export/users", json={**OCTOBER, "group_by": "model"})
        error = check_error(whole, 400, "Export too large")
        rows = int(re.search(r"(\d+) rows", error["message"]).group(1))  # type: ignore[union-attr]
        assert rows > 250
        assert "narrow" in error["message"]
        # A shorter period has fewer rows (users without activity in it have no model rows): a Saturday.
        part = c.post(
            "/export/users/json",
            json={**body("2026-10-03T00:00:00Z", "2026-10-03T23:59:59.999Z"), "group_by": "model"},
        )
        assert part.status_code == 200
        assert part.json()["data"]["recordCount"] <= 250


# --- rate limit and signed URLs ------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    clock = FakeClock()
    with start(requests_per_minute=3, clock=clock) as sim, client(sim) as c:
        for _ in range(3):
            assert c.post("/export/projects", json=OCTOBER).status_code == 200
        limited = c.post("/export/projects", json=OCTOBER)
        check_error(limited, 429, "Too many requests")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        clock.advance(61)
        assert c.post("/export/projects", json=OCTOBER).status_code == 200


def test_rate_limit_variant_without_retry_after() -> None:
    with start(requests_per_minute=1, variant_retry_after=False) as sim, client(sim) as c:
        assert c.post("/export/projects", json=OCTOBER).status_code == 200
        limited = c.post("/export/projects", json=OCTOBER)
        check_error(limited, 429, "Too many requests")
        assert "retry-after" not in limited.headers


def test_signed_url_expires_and_refuses_tampering() -> None:
    clock = FakeClock()
    with start(url_ttl_seconds=900, clock=clock) as sim:
        data = export(sim, "/export/projects", OCTOBER)["data"]
        url = httpx.URL(data["downloadUrl"])
        assert httpx.get(url).status_code == 200
        tampered = url.copy_set_param("signature", "0" * 64)
        check_error(httpx.get(tampered), 403, "Forbidden")
        longer = url.copy_set_param("expires", str(int(url.params["expires"]) + 3600))
        check_error(httpx.get(longer), 403, "Forbidden")
        other_file = str(url).replace("projects-usage-", "projects-usagf-")
        check_error(httpx.get(other_file), 403)
        check_error(httpx.get(url.copy_remove_param("signature")), 403)
        clock.advance(899)
        assert httpx.get(url).status_code == 200
        clock.advance(2)
        assert "expired" in check_error(httpx.get(url), 403, "Forbidden")["message"]


# --- CSV details, determinism, privacy variants -------------------------------------------------------


def test_csv_bytes_follow_the_contract(sims: dict[str, RunningSimulator]) -> None:
    data = export(sims["byok"], "/export/users", OCTOBER)["data"]
    raw = download(data).content
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in raw
    assert raw.endswith(b"\n")
    text = raw.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    # RFC 4180 with minimal quoting: writing the parsed rows again gives the same bytes.
    again = io.StringIO()
    csv.writer(again, lineterminator="\n").writerows(rows)
    assert again.getvalue() == text
    assert any('"' in cell or "," in cell for row in rows for cell in row), "some cells need quoting"
    assert any(not cell.isascii() for row in rows for cell in row)
    # Missing values are empty cells: idle agents have no min/max token figures.
    agents = dicts(sims["byok"], "/export/agents", body("2026-10-05T09:00:00Z", "2026-10-05T09:00:59.999Z"))
    assert any(r["messages"] == "0" and r["min_prompt_tokens"] == "" for r in agents)


def test_ranks_are_competition_ranks(sim: RunningSimulator) -> None:
    for group_by in (None, "model"):
        payload = {**OCTOBER, **({"group_by": group_by} if group_by else {})}
        rows = dicts(sim, "/export/users", payload)
        for figure in ("messages_total", "messages_chat", "messages_assistants", "messages_projects"):
            values = [int(r[figure]) for r in rows]
            for row, value in zip(rows, values, strict=True):
                assert int(row[f"{figure}_rank"]) == 1 + sum(v > value for v in values)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    files = []
    for seed in (7, 7, 8):
        with start(seed=seed) as sim:
            files.append(download(export(sim, "/export/users", OCTOBER)["data"]).content)
    assert files[0] == files[1]
    assert files[0] != files[2]


def test_user_level_data_off_anonymises_in_each_upstream_way(sims: dict[str, RunningSimulator]) -> None:
    private = sims["private"]
    first = dicts(private, "/export/users", OCTOBER)
    second = dicts(private, "/export/users", month(2026, 9))
    assert {r["name"] for r in first} == {""}
    assert {r["email"] for r in first} == {""}
    assert {r["user_id"] for r in first} & {r["user_id"] for r in second}, "anon ids are stable"
    assert all(re.fullmatch(r"anon_[0-9a-f]{16}", r["user_id"]) for r in first)
    projects = dicts(private, "/export/projects", OCTOBER)
    assert "project_owner_email" not in projects[0]
    assert all(r["project_owner_id"].startswith("anon_") for r in projects)
    agents = dicts(private, "/export/agents", OCTOBER)
    assert not {"assistant_description", "assistant_url", "assistant_owner_id"} & set(agents[0])
    with start(user_level_data=False, anonymisation="removed") as sim:
        header, _ = csv_rows(sim, "/export/users", OCTOBER)
        assert "name" not in header
        assert "email" not in header
        assert "user_id" in header
    with start(user_level_data=False, anonymisation="placeholder") as sim:
        rows = dicts(sim, "/export/users", OCTOBER)
        assert {r["name"] for r in rows} == {"Anonymous"} == {r["email"] for r in rows}


def test_variants_the_client_must_tolerate() -> None:
    expected = [c.name for c in columns_for(ExportType.USERS, byok=False)]
    with start(
        variant_shuffle_columns=True, variant_extra_column=True, variant_offset_date_range=True
    ) as sim:
        response = export(sim, "/export/users", OCTOBER)
        assert response["data"]["dateRange"] == {
            "from": "2026-10-01T01:00:00.000+01:00",
            "to": "2026-11-01T00:59:59.999+01:00",
        }
        header, _rows = csv_rows(sim, "/export/users", OCTOBER)
        assert header[:3] == expected[:3]
        assert header != [*expected, "odeus_beta_signal"]
        assert sorted(header) == sorted([*expected, "odeus_beta_signal"])
    with start(variant_numbers="float") as sim:
        rows_float = dicts(sim, "/export/users", OCTOBER)
        assert rows_float[0]["messages_total"].endswith(".0")
        json_rows = export(sim, "/export/users/json", OCTOBER)["data"]["rows"]
        assert str(json_rows[0]["messages_total"]).endswith(".0")
    with start(variant_numbers="quoted") as sim:
        raw = download(export(sim, "/export/models", OCTOBER)["data"]).content.decode()
        assert all(line.startswith('"') for line in raw.splitlines())
        json_rows = export(sim, "/export/models/json", OCTOBER)["data"]["rows"]
        assert isinstance(json_rows[0]["requests"], str)


def test_json_rows_equal_csv_rows(sims: dict[str, RunningSimulator]) -> None:
    sim = sims["byok"]
    for path in ("users", "agents", "models"):
        header, rows = csv_rows(sim, f"/export/{path}", OCTOBER)
        kinds = {c.name: c.kind for c in columns_for(ExportType(path), byok=True)}
        json_rows = export(sim, f"/export/{path}/json", OCTOBER)["data"]["rows"]
        as_csv = [{h: typed(kinds[h], cell) for h, cell in zip(header, row, strict=True)} for row in rows]
        assert as_csv == json_rows


# --- the figures: additivity, cross-export sums, wall clock and DST ------------------------------------


def test_two_halves_add_up_to_the_month(sim: RunningSimulator) -> None:
    split = "2026-10-14T13:37:00.000"
    first = dicts(
        sim, "/export/users", body("2026-10-01T00:00:00.000Z", "2026-10-14T13:36:59.999", "Europe/Berlin")
    )
    second = dicts(sim, "/export/users", body(split, "2026-10-31T23:59:59.999Z", "Europe/Berlin"))
    whole = dicts(sim, "/export/users", month(2026, 10, "Europe/Berlin"))
    by_user = {r["user_id"]: r for r in whole}
    for column in ("messages_total", "messages_chat", "messages_assistants", "messages_projects"):
        assert total(first, column) + total(second, column) == total(whole, column)
    parts: dict[str, Counter[str]] = {}
    for row in first + second:
        parts.setdefault(row["user_id"], Counter()).update(json.loads(row["model_to_messages_total"]))
    for user_id, counts in parts.items():
        assert counts == Counter(json.loads(by_user[user_id]["model_to_messages_total"]))
    models_parts = [
        dicts(sim, "/export/models", p)
        for p in (
            body("2026-10-01T00:00:00.000Z", "2026-10-14T13:36:59.999", "Europe/Berlin"),
            body(split, "2026-10-31T23:59:59.999Z", "Europe/Berlin"),
        )
    ]
    models_whole = dicts(sim, "/export/models", month(2026, 10, "Europe/Berlin"))
    assert [int(a["requests"]) + int(b["requests"]) for a, b in zip(*models_parts, strict=True)] == [
        int(r["requests"]) for r in models_whole
    ]


def test_exports_agree_with_each_other(sim: RunningSimulator) -> None:
    users = dicts(sim, "/export/users", OCTOBER)
    models = {r["name"]: int(r["requests"]) for r in dicts(sim, "/export/models", OCTOBER)}
    assert +map_sum(users, "model_to_messages_total") == +Counter(models)
    by_model = dicts(sim, "/export/users", {**OCTOBER, "group_by": "model"})
    per_model: Counter[str] = Counter()
    for row in by_model:
        per_model[row["model"]] += int(row["messages_total"])
    assert +per_model == +Counter(models)
    agents = dicts(sim, "/export/agents", OCTOBER)
    assert +map_sum(users, "assistants_to_messages") == +Counter(
        {r["assistant_id"]: int(r["messages"]) for r in agents}
    )
    assert dicts(sim, "/export/assistants", OCTOBER) == agents  # agents is an exact alias
    projects = dicts(sim, "/export/projects", OCTOBER)
    assert +map_sum(users, "projects_to_messages") == +Counter(
        {r["project_id"]: int(r["messages"]) for r in projects}
    )
    sources = dicts(sim, "/export/models", {**OCTOBER, "group_by": "source"})
    assert {r["source"] for r in sources} <= {"chat", "assistants", "projects"}
    assert sum(int(r["requests"]) for r in sources) == sum(models.values())
    assert total(users, "messages_assistants") == sum(
        int(r["requests"]) for r in sources if r["source"] == "assistants"
    )


def test_wall_clock_reading_strips_z(sim: RunningSimulator) -> None:
    berlin = export(
        sim, "/export/users/json", body("2026-10-01T00:00:00.000Z", "2026-10-02T00:00:00Z", "Europe/Berlin")
    )
    utc = export(sim, "/export/users/json", body("2026-09-30T22:00:00.000", "2026-10-01T22:00:00.000"))
    assert (
        berlin["data"]["dateRange"]
        == utc["data"]["dateRange"]
        == {
            "from": "2026-09-30T22:00:00.000Z",
            "to": "2026-10-01T22:00:00.000Z",
        }
    )
    strip = [
        {k: v for k, v in r.items() if k not in {"period_start", "period_end"}}
        for r in berlin["data"]["rows"]
    ]
    assert strip == [
        {k: v for k, v in r.items() if k not in {"period_start", "period_end"}} for r in utc["data"]["rows"]
    ]
    mixed = export(
        sim,
        "/export/projects/json",
        body("2026-10-01T00:00:00", "2026-10-31T23:59:59.999", "Asia/Tokyo", "America/New_York"),
    )
    assert mixed["data"]["dateRange"] == {
        "from": "2026-09-30T15:00:00.000Z",
        "to": "2026-11-01T03:59:59.999Z",
    }


@pytest.mark.parametrize(
    ("number", "utc_range"),
    [
        (3, ("2026-02-28T23:00:00.000Z", "2026-03-31T21:59:59.999Z")),
        (10, ("2026-09-30T22:00:00.000Z", "2026-10-31T22:59:59.999Z")),
    ],
)
def test_berlin_month_differs_from_utc_month(
    sim: RunningSimulator, number: int, utc_range: tuple[str, str]
) -> None:
    berlin = export(sim, "/export/users/json", month(2026, number, "Europe/Berlin"))
    utc = export(sim, "/export/users/json", month(2026, number, "UTC"))
    assert berlin["data"]["dateRange"] == {"from": utc_range[0], "to": utc_range[1]}
    figures = [[r["messages_total"] for r in data["data"]["rows"]] for data in (berlin, utc)]
    assert figures[0] != figures[1]
    # The same instants asked in UTC give the same figures: the zone only moves the boundaries.
    same = export(sim, "/export/users/json", body(utc_range[0], utc_range[1]))
    assert [r["messages_total"] for r in same["data"]["rows"]] == figures[0]


# --- faults --------------------------------------------------------------------------------------------


def test_faults_in_process() -> None:
    with start() as sim, client(sim) as c:
        sim.faults.fail_next(1, status=502)
        check_error(c.post("/export/projects", json=OCTOBER), 502)
        assert c.post("/export/projects", json=OCTOBER).status_code == 200
        sim.faults.drop_next()
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/export/projects", json=OCTOBER)
        assert c.post("/export/projects", json=OCTOBER).status_code == 200
        sim.faults.slow_next(0.5)
        began = time.monotonic()
        assert c.post("/export/projects", json=OCTOBER).status_code == 200
        assert time.monotonic() - began >= 0.5
        data = export(sim, "/export/users", OCTOBER)["data"]
        sim.faults.drop_next(target="storage")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(data["downloadUrl"])
        sim.faults.fail_next(target="storage")
        check_error(httpx.get(data["downloadUrl"]), 503)
        sim.faults.truncate_next_download(keep_fraction=0.3)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(data["downloadUrl"])
        sim.faults.truncate_next_download(content_length=False)
        cut = httpx.get(data["downloadUrl"])
        assert cut.status_code == 200
        assert "content-length" not in cut.headers
        assert cut.content.endswith(b"\n")
        assert len(list(csv.reader(io.StringIO(cut.text, newline="")))) - 1 < data["recordCount"]
        assert download(data).content.count(b"\n") - 1 == data["recordCount"]


def test_faults_over_the_admin_route() -> None:
    with start() as sim, client(sim) as c:
        check_error(httpx.post(f"{sim.base_url}/_simulator/faults", json={"action": "fail"}), 401)
        check_error(c.post("/_simulator/faults", json={"action": "explode"}), 400)
        queued = c.post("/_simulator/faults", json={"action": "fail", "count": 2, "status": 500})
        assert queued.status_code == 200
        assert len(queued.json()["pending"]["api"]) == 2
        check_error(c.post("/export/projects", json=OCTOBER), 500)
        check_error(c.post("/export/projects", json=OCTOBER), 500)
        assert c.post("/export/projects", json=OCTOBER).status_code == 200
        c.post("/_simulator/faults", json={"action": "truncate", "content_length": False})
        c.post("/_simulator/faults", json={"action": "drop", "target": "storage"})
        assert len(c.get("/_simulator/faults").json()["pending"]["storage"]) == 2
        c.post("/_simulator/faults", json={"action": "clear"})
        assert c.get("/_simulator/faults").json()["pending"] == {"api": [], "storage": []}


def test_now_is_the_default_today() -> None:
    with run_simulator(SimulatorConfig(users=5)) as sim:
        assert sim.workspace.today == datetime.now(UTC).date()
