"""The wire: envelopes (Z and +01:00 ranges, loose recordCount), download URL rules, JSON-route rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.envelope import parse_envelope
from odeus_compliance.upstream.errors import MalformedExport, UpstreamProtocolError
from odeus_compliance.upstream.jsonrows import json_batches, schema_of_rows
from odeus_compliance.upstream.request import ExportFormat, ExportRequest
from odeus_compliance.upstream.transport import check_download_url, download_request

REQUEST = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin")


def _envelope(**data: Any) -> bytes:
    body = {
        "filePath": "users-usage/ws/users-usage-2026-03-01-2026-03-31-abcd1234.csv",
        "downloadUrl": "https://storage.example.com/f?sig=SECRET",
        "dataType": "users",
        "recordCount": 3,
        "dateRange": {"from": "2026-02-28T23:00:00.000Z", "to": "2026-03-31T21:59:59.999Z"},
    }
    body.update(data)
    return msgspec.json.encode({"success": True, "data": body})


def test_envelope_with_z_range() -> None:
    envelope = parse_envelope(_envelope(), REQUEST)
    assert envelope.info.record_count == 3
    assert envelope.info.date_from == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert "SECRET" not in repr(envelope)


@pytest.mark.parametrize("count", [3, 3.0, "3"])
def test_envelope_with_offset_range_and_loose_count(count: object) -> None:
    envelope = parse_envelope(
        _envelope(
            recordCount=count,
            dateRange={"from": "2026-03-01T00:00:00.000+01:00", "to": "2026-04-01T01:59:59.999+02:00"},
        ),
        REQUEST,
    )
    assert envelope.info.record_count == 3
    assert envelope.info.date_from == datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=1)))
    assert envelope.info.date_to.astimezone(UTC) == datetime(2026, 3, 31, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        msgspec.json.encode({"success": True}),
        _envelope(dataType="projects"),
        _envelope(recordCount=2.5),
        _envelope(dateRange={"from": "2026-03-01T00:00:00", "to": "x"}),
        _envelope(downloadUrl=None),
    ],
)
def test_envelopes_that_break_the_contract(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        parse_envelope(body, REQUEST)
    assert "SECRET" not in str(caught.value)


def _config(hosts: set[str]) -> OdeusClientConfig:
    return OdeusClientConfig(api_key="sk-test", download_hosts=frozenset(hosts))


@pytest.mark.parametrize(
    ("url", "hosts", "allowed"),
    [
        ("https://storage.example.com/f?sig=1", set(), True),
        ("http://storage.example.com/f?sig=1", set(), False),
        ("http://127.0.0.1:9000/f", {"127.0.0.1:9000"}, True),
        ("http://127.0.0.1:9000/f", {"127.0.0.1"}, False),  # the entry's port is http's 80
        ("http://127.0.0.1/f", {"127.0.0.1"}, True),
        ("http://[::1]:9000/f", {"[::1]:9000"}, True),
        ("http://localhost:9000/f", {"127.0.0.1:9000"}, False),
        ("https://storage.example.com:8443/f", set(), False),  # no allow-list: port 443 only
        ("https://storage.example.com:8443/f", {"storage.example.com"}, False),
        ("https://storage.example.com:8443/f", {"storage.example.com:8443"}, True),
        ("https://127.0.0.1/f", set(), False),  # a loopback literal: refused before any lookup
        ("https://[::ffff:169.254.169.254]/f", set(), False),
        ("https://user:pw@storage.example.com/f", set(), False),
        ("https://api.odeus.ai:443/files/f", {"storage.example.com"}, True),  # the API's own origin
        ("https://evil.example.net/f", {"storage.example.com"}, False),
        ("https://a.storage.example.com/f", {".storage.example.com"}, True),
        ("ftp://storage.example.com/f", set(), False),
        ("file:///etc/passwd", set(), False),
    ],
)
def test_download_url_rules(url: str, hosts: set[str], allowed: bool) -> None:
    if allowed:
        check_download_url(_config(hosts), url)
    else:
        with pytest.raises(UpstreamProtocolError) as caught:
            check_download_url(_config(hosts), url)
        assert "sig=" not in str(caught.value)


def test_download_request_carries_no_credentials() -> None:
    request = download_request(_config(set()), "https://storage.example.com/f?sig=1")
    assert "authorization" not in request.headers
    assert "cookie" not in request.headers
    assert "origin" not in request.headers


def test_json_rows_become_the_same_typed_batches() -> None:
    rows = [
        {
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
            "org_id": "o",
            "user_id": "u1",
            "messages_total": 12.0,
            "messages_chat": "3",
            "payg_consumption_in_period": 1.25,
            "assistants_to_messages": {"a": 2},
            "joined_at": "2025-01-01",
            "name": "",
            "future": {"x": 1},
        },
    ]
    schema = schema_of_rows(ExportType.USERS, rows)
    assert schema.unknown == ("future",)
    (batch,) = json_batches(schema, rows)
    (row,) = batch.rows()
    assert row["messages_total"] == 12
    assert row["messages_chat"] == 3
    assert row["payg_consumption_in_period"] == Decimal("1.25")
    assert row["assistants_to_messages"] == {"a": 2}
    assert row["joined_at"] == date(2025, 1, 1)
    assert row["name"] is None
    assert row["future"] == '{"x":1}'


@pytest.mark.parametrize(
    ("column", "value"),
    [("messages_total", 12.5), ("joined_at", "yesterday"), ("assistants_to_messages", {"a": "many"})],
)
def test_json_rows_with_a_bad_value(column: str, value: object) -> None:
    rows = [{"period_start": "2026-03-01", "period_end": "2026-03-31", "org_id": "o", column: value}]
    with pytest.raises(MalformedExport, match=column) as caught:
        list(json_batches(schema_of_rows(ExportType.USERS, rows), rows))
    assert str(value) not in str(caught.value)


def test_json_route_path() -> None:
    request = ExportRequest.for_month(ExportType.API_KEYS, 2026, 3, "UTC", export_format=ExportFormat.JSON)
    assert request.path == "/export/api-keys/json"
