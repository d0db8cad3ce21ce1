"""Simulator defects found in review, each pinned by a test that failed before its fix.

* Odeus refuses requests from a browser origin: the storage host served a signed download to a request with
  an ``Origin`` header, and both hosts answered a CORS preflight (``OPTIONS`` with ``Origin``) with 204.
* ``OPTIONS`` without ``Origin`` answered 204 instead of a 405 in Odeus's error shape.
* A date with a numeric UTC offset was refused as "not an ISO 8601 date-time" (it is one): the message now
  says what is wrong. A ``timezone`` that is not a string was reported as "missing".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from odeus_compliance.upstream.simulator import RunningSimulator, SimulatorConfig, run_simulator

TODAY = date(2026, 11, 15)
ORIGIN = {"Origin": "https://evil.example"}


def body(start: Any, end: Any = "2026-10-31T23:59:59.999Z", zone: Any = "Europe/Berlin") -> dict[str, Any]:
    return {"from": {"date": start, "timezone": zone}, "to": {"date": end, "timezone": "Europe/Berlin"}}


OCTOBER = body("2026-10-01T00:00:00.000Z")


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=30, today=TODAY)) as running:
        yield running


def auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def odeus_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert set(payload) == {"error", "message"}
    assert all(isinstance(v, str) and v for v in payload.values())
    return dict(payload)


def download_url(sim: RunningSimulator) -> str:
    response = httpx.post(f"{sim.base_url}/export/users", json=OCTOBER, headers=auth(sim))
    assert response.status_code == 200
    return str(response.json()["data"]["downloadUrl"])


def test_the_storage_host_refuses_a_browser_origin(sim: RunningSimulator) -> None:
    url = download_url(sim)
    assert odeus_error(httpx.get(url, headers=ORIGIN), 403)["error"] == "Forbidden"
    assert httpx.get(url).status_code == 200  # the same URL without Origin still works


@pytest.mark.parametrize("path", ["/export/users", "/export/agents/csv", "/export/models/json"])
def test_a_cors_preflight_on_an_export_route_is_refused(sim: RunningSimulator, path: str) -> None:
    preflight = {**ORIGIN, "Access-Control-Request-Method": "POST"}
    response = httpx.options(f"{sim.base_url}{path}", headers=preflight)
    odeus_error(response, 403)
    assert "access-control-allow-origin" not in response.headers


def test_a_cors_preflight_on_the_storage_host_is_refused(sim: RunningSimulator) -> None:
    url = download_url(sim)
    odeus_error(httpx.options(url, headers={**ORIGIN, "Access-Control-Request-Method": "GET"}), 403)


def test_options_without_origin_is_a_405_in_odeus_shape(sim: RunningSimulator) -> None:
    response = httpx.options(f"{sim.base_url}/export/users", headers=auth(sim))
    odeus_error(response, 405)
    assert response.headers["allow"] == "POST"
    response = httpx.options(download_url(sim))
    odeus_error(response, 405)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "start", ["2026-10-01T00:00:00.000+02:00", "2026-10-01T00:00:00+00:00", "2026-10-01T00:00-0500"]
)
def test_a_date_with_a_utc_offset_is_refused_saying_so(sim: RunningSimulator, start: str) -> None:
    response = httpx.post(f"{sim.base_url}/export/users", json=body(start), headers=auth(sim))
    error = odeus_error(response, 400)
    assert error["error"] == "Invalid date range"
    assert "from.date" in error["message"]
    assert "offset" in error["message"]


@pytest.mark.parametrize("start", ["2026-10-01T00:00:00.000Z", "2026-10-01T00:00:00Z", "2026-10-01T00:00:00"])
def test_a_trailing_z_or_none_is_the_same_wall_clock_time(sim: RunningSimulator, start: str) -> None:
    response = httpx.post(f"{sim.base_url}/export/users/json", json=body(start), headers=auth(sim))
    assert response.status_code == 200
    assert response.json()["data"]["dateRange"]["from"] == "2026-09-30T22:00:00.000Z"


def test_a_timezone_that_is_not_a_string_is_named(sim: RunningSimulator) -> None:
    response = httpx.post(
        f"{sim.base_url}/export/users", json=body("2026-10-01T00:00:00.000Z", zone=60), headers=auth(sim)
    )
    error = odeus_error(response, 400)
    assert "from.timezone is not a string" in error["message"]
