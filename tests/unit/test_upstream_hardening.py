"""Defects found in review of the client, each pinned by a test that failed before its fix.

* Arrow's default null markers ("NA", "N/A", "null", "NaN", "#N/A", ...) turned real text into missing values
  and garbage numbers into "missing" instead of an error: only an empty cell is missing.
* A record longer than Arrow's 1 MiB read block failed as "not valid CSV" although the splitter accepts
  records up to ``max_record_bytes``.
* httpx logs every request URL at INFO, and a signed download URL (a bearer credential) with it.
* The injected ``clock`` of :class:`OdeusClient` never reached its retrier, so the total-time bound of the
  retry budget ran on the real monotonic clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.csvstream import parse_csv
from odeus_compliance.upstream.errors import MalformedExport

HEADER = b"period_start,period_end,org_id,user_id,messages_total,payg_consumption_in_period,name,department\n"
NULL_MARKERS = [b"NA", b"N/A", b"n/a", b"null", b"NULL", b"NaN", b"nan", b"#N/A", b"-nan", b'"NA"']


def _rows(data: bytes, chunk: int = 7) -> list[dict[str, object]]:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return [row for batch in parse_csv(chunks, ExportType.USERS) for row in batch.rows()]


@pytest.mark.parametrize("marker", NULL_MARKERS)
def test_text_that_looks_like_a_null_marker_stays_text(marker: bytes) -> None:
    line = b"2026-03-01,2026-03-31,o,u1,3,1.50," + marker + b"," + marker + b"\n"
    (row,) = _rows(HEADER + line)
    text = marker.strip(b'"').decode()
    assert row["name"] == text
    assert row["department"] == text


@pytest.mark.parametrize("marker", [b"NA", b"null", b"NaN", b"N/A"])
def test_a_null_marker_in_a_number_column_is_an_error_not_a_missing_value(marker: bytes) -> None:
    as_int = HEADER + b"2026-03-01,2026-03-31,o,u1," + marker + b",1.50,Ann,IT\n"
    with pytest.raises(MalformedExport, match="messages_total"):
        _rows(as_int)
    as_decimal = HEADER + b"2026-03-01,2026-03-31,o,u1,3," + marker + b",Ann,IT\n"
    with pytest.raises(MalformedExport, match="payg_consumption_in_period"):
        _rows(as_decimal)


def test_only_an_empty_cell_is_missing() -> None:
    (row,) = _rows(HEADER + b'2026-03-01,2026-03-31,o,u1,,,"",\n')
    assert row["messages_total"] is None
    assert row["payg_consumption_in_period"] is None
    assert row["name"] is None
    assert row["department"] is None


@pytest.mark.parametrize("size", [(1 << 20) + 1, 3 << 20])
def test_a_record_longer_than_arrows_read_block_is_parsed(size: int) -> None:
    long_name = b"x" * size
    data = (
        HEADER
        + b"2026-03-01,2026-03-31,o,u1,3,1.50," + long_name + b",IT\n"
        + b"2026-03-01,2026-03-31,o,u2,4,2.00,Bo,HR\n"
    )  # fmt: skip
    rows = _rows(data, chunk=64 << 10)
    assert [len(str(r["name"])) for r in rows] == [size, 2]
    assert rows[1]["messages_total"] == 4


def test_httpx_request_lines_lose_their_query_once_a_client_exists(caplog: pytest.LogCaptureFixture) -> None:
    OdeusClient(OdeusClientConfig(api_key="sk-test"))
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"',
        "GET",
        "https://storage.example.com/files/users.csv?expires=1&signature=SECRETSIG",
        "HTTP/1.1",
        200,
        "OK",
    )
    logging.getLogger("httpcore.http11").debug(
        "receive_response_headers.complete return_value=%r",
        (b"HTTP/1.1", 302, b"Found", [(b"Location", b"https://elsewhere.example/x?signature=SECRETSIG")]),
    )
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "storage.example.com/files/users.csv?<redacted>" in text
    assert "elsewhere.example/x?<redacted>" in text
    assert "SECRETSIG" not in text
    assert "expires=" not in text


def test_the_injected_clocks_reach_the_retrier() -> None:
    def clock() -> float:
        return 42.0

    def wall() -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    client = OdeusClient(OdeusClientConfig(api_key="sk-test"), clock=clock, wall_clock=wall)
    assert client.retrier.clock() == 42.0
    assert client.retrier.wall_clock() == datetime(2026, 1, 1, tzinfo=UTC)
