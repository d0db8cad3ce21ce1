"""The Odeus client against real servers over loopback: the Odeus simulator, and a small recording server of
our own for what the simulator cannot show (headers the storage host receives, redirects, foreign hosts).

No mock transports: every request crosses a socket. Waits are injected (a fake clock that advances when the
client or the simulator "sleeps"), so retries cost no wall time and no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest
import uvicorn

from odeus_compliance.upstream.anonymisation import Anonymisation
from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType, GroupBy
from odeus_compliance.upstream.config import OdeusClientConfig, Timeouts
from odeus_compliance.upstream.errors import (
    DownloadExpired,
    DownloadIncomplete,
    UpstreamBadRequest,
    UpstreamForbidden,
    UpstreamNoData,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTooLarge,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from odeus_compliance.upstream.request import ExportFormat, ExportRequest
from odeus_compliance.upstream.result import ExportResult
from odeus_compliance.upstream.simulator.server import RunningSimulator, SimulatorConfig, run_simulator

TODAY = date(2026, 11, 20)
MARCH = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin")


class FakeTime:
    """Epoch seconds shared by the simulator and the client; sleeping advances it instantly."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@contextmanager
def simulator(fake: FakeTime, **options: Any) -> Iterator[RunningSimulator]:
    config = SimulatorConfig(
        **{"users": 40, "seed": 7, "today": TODAY, "clock": fake.clock, "workspace_age_days": 300, **options}
    )
    with run_simulator(config) as sim:
        yield sim


@asynccontextmanager
async def client_for(
    upstream: RunningSimulator | str,
    key: str,
    fake: FakeTime,
    *,
    hosts: frozenset[str] | None = None,
    **config: Any,
) -> AsyncIterator[OdeusClient]:
    """A client of the simulator (its storage host and port allow-listed), or of a server at a base URL
    that serves its downloads on its own origin."""
    if isinstance(upstream, str):
        base, allowed = upstream, frozenset({"127.0.0.1"})
    else:
        base, allowed = upstream.base_url, frozenset({upstream.download_host})
    cfg = OdeusClientConfig(
        api_key=key, base_url=base, download_hosts=allowed if hosts is None else hosts, **config
    )
    async with OdeusClient(cfg, sleep=fake.sleep, clock=fake.clock, wall_clock=fake.wall) as client:
        yield client


def _keyed(result: ExportResult, *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in key): row for row in result.rows()}


async def test_every_export_type_on_both_routes(fake_time: FakeTime) -> None:
    with simulator(fake_time, byok=True) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            for export_type in ExportType:
                csv_result = await client.fetch_export(ExportRequest.for_month(export_type, 2026, 3, "UTC"))
                json_result = await client.fetch_export(
                    ExportRequest.for_month(export_type, 2026, 3, "UTC", export_format=ExportFormat.JSON)
                )
                assert csv_result.num_rows == csv_result.info.record_count > 0
                assert list(csv_result.rows()) == list(json_result.rows())
                assert csv_result.report.unknown_columns == ()
                assert csv_result.report.anonymised == ()


async def test_wrong_key_is_unauthorized_and_the_key_is_never_echoed(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, "sk-wrong-key-123", fake_time) as client:
            with pytest.raises(UpstreamUnauthorized, match="401") as caught:
                await client.fetch_export(MARCH)
    assert "sk-wrong-key-123" not in str(caught.value)


async def test_a_key_without_the_export_scope_is_forbidden(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.unscoped_api_key, fake_time) as client:
            with pytest.raises(UpstreamForbidden, match="USAGE_EXPORT_API"):
                await client.fetch_export(MARCH)


async def test_no_data_before_the_workspace_existed(fake_time: FakeTime) -> None:
    with simulator(fake_time, workspace_age_days=30) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            with pytest.raises(UpstreamNoData, match="404"):
                await client.fetch_export(MARCH)


async def test_a_range_older_than_the_history_is_a_bad_request(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            with pytest.raises(UpstreamBadRequest, match="400") as caught:
                await client.fetch_export(ExportRequest.for_month(ExportType.USERS, 2025, 1, "UTC"))
    assert not isinstance(caught.value, UpstreamTooLarge)


async def test_too_large_is_split_and_merged_into_the_unsplit_export(fake_time: FakeTime) -> None:
    request = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin", group_by=GroupBy.MODEL)
    with simulator(fake_time, byok=True) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            whole = await client.fetch_export(request)
    cap = whole.num_rows - 1
    with simulator(fake_time, byok=True, row_cap=cap) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            with pytest.raises(UpstreamTooLarge):
                await client.fetch_export(request, split_too_large=False)
            merged = await client.fetch_export(request)
    assert merged.info.parts > 1
    assert merged.info.record_count == merged.num_rows == whole.num_rows
    assert merged.report.columns == whole.report.columns
    assert _keyed(merged, "user_id", "model") == _keyed(whole, "user_id", "model")


async def test_too_large_even_for_one_day_is_refused_clearly(fake_time: FakeTime) -> None:
    with simulator(fake_time, row_cap=5) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            with pytest.raises(UpstreamTooLarge, match="single day"):
                await client.fetch_export(MARCH)


async def test_assistants_too_large_refuse_to_split(fake_time: FakeTime) -> None:
    with simulator(fake_time, row_cap=1) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            with pytest.raises(UpstreamTooLarge, match="unique_users"):
                await client.fetch_export(ExportRequest.for_month(ExportType.AGENTS, 2026, 3, "UTC"))


async def test_429_then_success_honours_retry_after(fake_time: FakeTime) -> None:
    with simulator(fake_time, requests_per_minute=1) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            first = await client.fetch_export(MARCH)
            second = await client.fetch_export(MARCH)
    assert list(first.rows()) == list(second.rows())
    assert fake_time.sleeps
    assert all(0 < s <= 61 for s in fake_time.sleeps)


async def test_429_without_retry_after_until_the_budget_is_spent(fake_time: FakeTime) -> None:
    with simulator(fake_time, requests_per_minute=1, variant_retry_after=False) as sim:
        policy = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=2.0)
        async with client_for(sim, sim.api_key, fake_time, retry=policy) as client:
            await client.fetch_export(MARCH)
            with pytest.raises(UpstreamRateLimited, match=r"gave up after 3 attempt"):
                await client.fetch_export(MARCH)
    assert len(fake_time.sleeps) == 2
    assert all(0 <= s <= 2.0 for s in fake_time.sleeps)


@pytest.mark.parametrize("target", ["api", "storage"])
async def test_5xx_and_dropped_connections_then_success(fake_time: FakeTime, target: str) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            expected = await client.fetch_export(MARCH)
            sim.faults.fail_next(1, status=503, target=target)  # type: ignore[arg-type]
            sim.faults.drop_next(1, target=target)  # type: ignore[arg-type]
            sim.faults.fail_next(1, status=500, target=target)  # type: ignore[arg-type]
            again = await client.fetch_export(MARCH)
    assert list(again.rows()) == list(expected.rows())
    assert len(fake_time.sleeps) == 3


async def test_5xx_until_the_budget_is_spent(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time, retry=RetryPolicy(max_attempts=2)) as client:
            sim.faults.fail_next(5, status=502)
            with pytest.raises(UpstreamUnavailable, match="502"):
                await client.fetch_export(MARCH)


async def test_a_slow_answer_times_out_and_is_retried(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        timeouts = Timeouts(read=0.3)
        async with client_for(sim, sim.api_key, fake_time, timeouts=timeouts) as client:
            sim.faults.slow_next(2.0)
            result = await client.fetch_export(MARCH)
    assert result.num_rows == result.info.record_count


@pytest.mark.parametrize("content_length", [True, False])
async def test_a_truncated_download_is_retried_while_nothing_was_handed_on(
    fake_time: FakeTime, content_length: bool
) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            sim.faults.truncate_next_download(1, keep_fraction=0.5, content_length=content_length)
            result = await client.fetch_export(MARCH)
    assert result.num_rows == result.info.record_count


@pytest.mark.parametrize("content_length", [True, False])
async def test_a_truncated_download_raises_and_hands_nothing_on(
    fake_time: FakeTime, content_length: bool
) -> None:
    handed: list[ExportBatch] = []
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time, retry=RetryPolicy(max_attempts=2)) as client:
            sim.faults.truncate_next_download(5, keep_fraction=0.6, content_length=content_length)
            async with client.open_export(MARCH) as export:
                with pytest.raises(DownloadIncomplete):
                    await _drain(export.batches(), handed)
                assert not export.complete
                with pytest.raises(RuntimeError, match="not complete"):
                    _ = export.report
    assert handed == []


async def _drain(batches: AsyncIterator[ExportBatch], sink: list[ExportBatch]) -> None:
    """What a consumer does: take every batch the stream hands on."""
    async for batch in batches:
        sink.append(batch)  # noqa: PERF401 - the point is what reaches the loop


async def test_a_truncated_large_download_after_batches_were_handed_on_is_not_retried(
    fake_time: FakeTime,
) -> None:
    handed: list[ExportBatch] = []
    with simulator(fake_time, users=3000) as sim:
        async with client_for(sim, sim.api_key, fake_time, block_bytes=1 << 16) as client:
            sim.faults.truncate_next_download(1, keep_fraction=0.9, content_length=True)
            async with client.open_export(MARCH) as export:
                with pytest.raises(DownloadIncomplete, match=r"cannot be retried|announced"):
                    await _drain(export.batches(), handed)
    assert 0 < sum(batch.num_rows for batch in handed) < 3000


async def test_an_expired_download_url_is_fetched_again_once(fake_time: FakeTime) -> None:
    with simulator(fake_time, url_ttl_seconds=60) as sim:
        async with (
            client_for(sim, sim.api_key, fake_time) as client,
            client.open_export(MARCH) as export,
        ):
            fake_time.now += 3600  # the URL expired before we started downloading
            rows = sum([batch.num_rows async for batch in export.batches()])
    assert rows == export.info.record_count


@pytest.fixture
def expiring_time() -> FakeTime:
    """A clock that jumps an hour each time it is read: every signed URL has expired when it is used."""

    class Jumping(FakeTime):
        def clock(self) -> float:
            self.now += 3600
            return self.now

    return Jumping()


async def test_every_download_url_expired_is_a_clear_error(expiring_time: FakeTime) -> None:
    with simulator(expiring_time, url_ttl_seconds=60) as sim:
        async with client_for(sim, sim.api_key, expiring_time) as client:
            with pytest.raises(DownloadExpired, match="expired") as caught:
                await client.fetch_export(MARCH)
    assert "signature" not in str(caught.value)
    assert "expires=" not in str(caught.value)


@pytest.mark.parametrize("month", [3, 10])
async def test_berlin_dst_months(fake_time: FakeTime, month: int) -> None:
    request = ExportRequest.for_month(ExportType.USERS, 2026, month, "Europe/Berlin")
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            result = await client.fetch_export(request)
    assert result.info.date_from == request.start.instant
    assert abs((result.info.date_to - request.end.instant).total_seconds()) < 0.002
    row = next(result.rows())
    assert (row["period_start"], row["period_end"]) == (date(2026, month, 1), date(2026, month, 31))


async def test_variants_give_the_same_rows(fake_time: FakeTime) -> None:
    with simulator(fake_time) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            plain = await client.fetch_export(MARCH)
    variants: list[dict[str, Any]] = [
        {"variant_shuffle_columns": True},
        {"variant_offset_date_range": True},
        {"variant_numbers": "float"},
        {"variant_numbers": "quoted"},
    ]
    for options in variants:
        with simulator(fake_time, **options) as sim:
            async with client_for(sim, sim.api_key, fake_time) as client:
                other = await client.fetch_export(MARCH)
        assert list(other.rows()) == [
            {name: row[name] for name in other.report.columns} for row in plain.rows()
        ], options
        assert other.info.date_from == plain.info.date_from


async def test_an_unknown_column_is_kept_and_reported(fake_time: FakeTime) -> None:
    with simulator(fake_time, variant_extra_column=True) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            result = await client.fetch_export(MARCH)
    (unknown,) = result.report.unknown_columns
    assert unknown in next(result.rows())


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("empty", {"name": Anonymisation.EMPTY, "email": Anonymisation.EMPTY}),
        ("removed", {"name": Anonymisation.REMOVED, "email": Anonymisation.REMOVED}),
        ("placeholder", {"name": Anonymisation.PLACEHOLDER, "email": Anonymisation.PLACEHOLDER}),
    ],
)
async def test_upstream_anonymisation_is_reported(
    fake_time: FakeTime, style: str, expected: dict[str, Anonymisation]
) -> None:
    with simulator(fake_time, user_level_data=False, anonymisation=style) as sim:
        async with client_for(sim, sim.api_key, fake_time) as client:
            result = await client.fetch_export(MARCH)
    found = {item.column: item.how for item in result.report.anonymised}
    assert found["user_id"] is Anonymisation.OPAQUE_IDS
    for column, how in expected.items():
        assert found[column] is how


# ---- a recording server of our own: what does the storage host receive, and what if it misbehaves? ----


@dataclass
class Recorder:
    """Answers the export API with a download URL of our choosing and records every request's headers."""

    csv: bytes
    announce: int | None = None  # recordCount to announce (default: the rows of csv)
    download_path: str = "/files/export.csv?expires=1&signature=SIGNED"
    download_host: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers))
        if scope["path"].startswith("/export/"):
            body = msgspec.json.encode(
                {
                    "success": True,
                    "data": {
                        "filePath": "users-usage/ws/users-usage-2026-03-01-2026-03-31-abcd1234.csv",
                        "downloadUrl": self.download_host + self.download_path,
                        "dataType": "users",
                        "recordCount": self.announce
                        if self.announce is not None
                        else self.csv.count(b"\n") - 1,
                        "dateRange": {"from": "2026-02-28T23:00:00.000Z", "to": "2026-03-31T21:59:59.999Z"},
                    },
                }
            )
            await _answer(send, 200, body, [(b"set-cookie", b"session=abc; Path=/")])
        elif scope["path"] == "/redirect":
            await _answer(send, 302, b"", [(b"location", b"http://127.0.0.1:1/elsewhere")])
        else:
            await _answer(send, 200, self.csv, [(b"content-type", b"text/csv")])


async def _answer(
    send: Callable[..., Any], status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def recording_server(recorder: Recorder) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    recorder.download_host = recorder.download_host or base
    server = uvicorn.Server(
        uvicorn.Config(recorder, lifespan="off", access_log=False, log_config=None, ws="none")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


CSV = b"period_start,period_end,org_id,user_id,messages_total\n2026-03-01,2026-03-31,o,u1,3\n"


async def test_the_download_carries_no_authorization_cookie_or_origin(fake_time: FakeTime) -> None:
    recorder = Recorder(CSV)
    with recording_server(recorder) as base:
        async with client_for(base, "sk-recorded-key", fake_time) as client:
            await client.fetch_export(MARCH)
            result = await client.fetch_export(MARCH)  # a second round: a cookie was set by the first
    assert result.num_rows == 1
    api = [h for path, h in recorder.seen if path.startswith("/export/")]
    downloads = [h for path, h in recorder.seen if path == "/files/export.csv"]
    assert len(api) == len(downloads) == 2
    assert all(h["authorization"] == "Bearer sk-recorded-key" for h in api)
    for headers in api + downloads:
        assert "origin" not in headers
        assert "cookie" not in headers
    for headers in downloads:
        assert "authorization" not in headers


async def test_a_download_host_off_the_allow_list_is_refused(fake_time: FakeTime) -> None:
    recorder = Recorder(CSV, download_host="http://localhost:9")
    with recording_server(recorder) as base:
        async with client_for(base, "sk-k", fake_time) as client:
            with pytest.raises(UpstreamProtocolError, match="localhost") as caught:
                await client.fetch_export(MARCH)
    assert "SIGNED" not in str(caught.value)
    assert all(path.startswith("/export/") for path, _ in recorder.seen)


async def test_a_redirecting_download_is_refused(fake_time: FakeTime) -> None:
    recorder = Recorder(CSV, download_path="/redirect")
    with recording_server(recorder) as base:
        async with client_for(base, "sk-k", fake_time) as client:
            with pytest.raises(UpstreamProtocolError, match="redirect"):
                await client.fetch_export(MARCH)
    assert not any(path == "/elsewhere" for path, _ in recorder.seen)


async def test_a_row_count_that_differs_from_record_count(fake_time: FakeTime) -> None:
    for announce in (1, 3):
        recorder = Recorder(CSV + b"2026-03-01,2026-03-31,o,u2,4\n", announce=announce)
        with recording_server(recorder) as base:
            async with client_for(base, "sk-k", fake_time, retry=RetryPolicy(max_attempts=1)) as client:
                with pytest.raises(DownloadIncomplete, match=f"recordCount {announce}"):
                    await client.fetch_export(MARCH)
