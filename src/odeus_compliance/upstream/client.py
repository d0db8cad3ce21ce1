"""The Odeus Usage Export client: an :class:`OdeusClient` per workspace, an :class:`ExportStream` per export.

Consumers must treat an export stream as a transaction::

    async with OdeusClient(config) as client:
        async with client.open_export(request) as export:
            async for batch in export.batches():
                stage(batch)              # provisional: do not publish yet
        commit()                          # only after the loop ended normally

The iterator raises (``DownloadIncomplete``, ``MalformedExport``, ...) *before* its normal end whenever the
file was cut short, did not match ``recordCount``, or was not the contract's CSV; anything staged from an
export whose iterator raised must be discarded. The client holds each batch back until the next one has
been parsed, so the last batch is only handed on once the whole file has been checked; a download is
retried (within the retry budget) only while no batch has been handed on. :meth:`OdeusClient.fetch_export`
(or :meth:`ExportStream.collect`) does this for you and returns only a complete :class:`ExportResult`.

An export Odeus refuses as too large is split at local midnights and the parts merged (see
:mod:`odeus_compliance.upstream.merge`); the stream then yields the merged rows, which, unlike a single
download, are held in memory (one row per entity).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType

import httpx

from odeus_compliance.core.clock import utcnow
from odeus_compliance.upstream.anonymisation import AnonymisationTracker
from odeus_compliance.upstream.backoff import Retrier, RetryObserver, Sleep
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.columns import Column
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.csvstream import CsvExportParser
from odeus_compliance.upstream.download_target import pinned_address
from odeus_compliance.upstream.envelope import Envelope, parse_envelope
from odeus_compliance.upstream.errors import (
    AnswerTooLarge,
    DownloadExpired,
    DownloadIncomplete,
    UpstreamError,
    UpstreamNoData,
    UpstreamTooLarge,
)
from odeus_compliance.upstream.jsonrows import json_batches, schema_of_rows
from odeus_compliance.upstream.merge import ExportMerger, refuse_unmergeable_type
from odeus_compliance.upstream.ratelimit import RateLimiter
from odeus_compliance.upstream.request import ExportFormat, ExportRequest
from odeus_compliance.upstream.result import ExportInfo, ExportReport, ExportResult
from odeus_compliance.upstream.schema import ExportSchema
from odeus_compliance.upstream.split import split_request
from odeus_compliance.upstream.transport import (
    api_request,
    check_download_url,
    connection_error,
    download_request,
    error_for_api_response,
    error_for_download_response,
    redact_http_library_logs,
)

logger = logging.getLogger("odeus_compliance.upstream.client")

_CONNECTION_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# A CSV-route answer is an envelope of a few hundred bytes (the signed URL being the longest part): 256 KiB
# is generous, and keeps a hostile answer from costing memory. A JSON-route answer holds the rows, so its
# bound is the configured ``max_answer_bytes``.
MAX_CSV_ENVELOPE_BYTES = 256 << 10
MERGED_BATCH_ROWS = 5000


class OdeusClient:
    """Talks to one Odeus workspace: rate-limited, retried, typed.

    Pass an ``httpx.AsyncClient`` you own as ``http``, or use the client as an async context manager and it
    creates (and closes) its own. Nothing configured on a shared ``httpx.AsyncClient`` (headers, cookies,
    auth) reaches Odeus: requests are built by hand. ``sleep``, ``rng``, ``clock`` and ``wall_clock`` are
    for tests.
    """

    def __init__(
        self,
        config: OdeusClientConfig,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
        observer: RetryObserver | None = None,
    ) -> None:
        self.config = config
        redact_http_library_logs()  # httpx logs request URLs: a signed download URL is a credential
        self._http = http
        self._owns_http = False
        self.wall_clock = wall_clock
        self.limiter = RateLimiter(config.requests_per_minute, clock=clock, sleep=sleep)
        self.retrier = Retrier(
            config.retry,
            sleep=sleep,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            clock=clock,
            wall_clock=wall_clock,
            observer=observer,  # failed attempts and retries, for the service's metrics
        )

    async def __aenter__(self) -> OdeusClient:
        if self._http is None:
            # no proxy from the environment: a proxy would resolve the storage host itself, around the
            # address check of the download
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
            self._owns_http = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
            self._owns_http = False

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client in use (raises if neither given nor entered)."""
        if self._http is None:
            msg = "OdeusClient needs an httpx.AsyncClient: pass http=... or use 'async with OdeusClient(...)'"
            raise RuntimeError(msg)
        return self._http

    async def request_export(self, request: ExportRequest) -> Envelope:
        """POST the export request (rate-limited, retried) and return the checked envelope."""
        return await self.retrier.run(lambda _attempt: self._request_once(request), event="odeus.export")

    async def _request_once(self, request: ExportRequest) -> Envelope:
        await self.limiter.acquire()
        started = time.perf_counter()
        try:
            response = await self.http.send(
                api_request(self.config, request.path, request.body()),
                stream=True,
                auth=None,
                follow_redirects=False,
            )
        except _CONNECTION_ERRORS as error:
            raise connection_error(error, where="the Odeus API") from None
        try:
            logger.info(
                "odeus.export.response",
                extra={
                    "export_type": request.export_type.value,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000),
                },
            )
            if response.status_code != 200:
                raise await error_for_api_response(response, now=self.wall_clock())
            if request.export_format is ExportFormat.JSON:
                limit, what = self.config.max_answer_bytes, "Odeus's answer to the export call (JSON route)"
            else:
                limit, what = (
                    MAX_CSV_ENVELOPE_BYTES,
                    "Odeus's answer to the export call (CSV route: an envelope)",
                )
            body = await _read_body(response, limit, what=what)
        except _CONNECTION_ERRORS as error:
            raise connection_error(error, where="the Odeus API answer") from None
        finally:
            await response.aclose()
        return parse_envelope(body, request)

    @asynccontextmanager
    async def open_export(
        self, request: ExportRequest, *, split_too_large: bool = True
    ) -> AsyncIterator[ExportStream]:
        """Request an export and give its stream; closes the download when the block ends.

        With ``split_too_large`` (the default) an export refused as too large is fetched in parts and
        merged; without it, :class:`UpstreamTooLarge` propagates.
        """
        try:
            envelope = await self.request_export(request)
        except UpstreamTooLarge as error:
            if not split_too_large:
                raise
            stream = ExportStream.completed(await self._fetch_split(request, error))
        else:
            stream = ExportStream(self, request, envelope)
        try:
            yield stream
        finally:
            await stream.aclose()

    async def fetch_export(self, request: ExportRequest, *, split_too_large: bool = True) -> ExportResult:
        """The whole export, checked complete, in memory (for small exports and tests)."""
        async with self.open_export(request, split_too_large=split_too_large) as export:
            return await export.collect()

    async def _fetch_split(self, request: ExportRequest, error: UpstreamTooLarge) -> ExportResult:
        why = error.message
        refuse_unmergeable_type(request.export_type, why_split=why)
        logger.info("odeus.export.split", extra={"export_type": request.export_type.value})
        state = _SplitState()
        await self._fold(request, state, why)
        if state.merger is None or state.first is None or state.last is None:
            msg = "Odeus has no usage data for any part of the period (404)"
            raise UpstreamNoData(msg, status=404)
        rows = state.merger.result()
        columns = state.merger.columns
        batches = tuple(
            ExportBatch.from_values(
                columns,
                {c.name: [row[c.name] for row in rows[i : i + MERGED_BATCH_ROWS]] for c in columns},
            )
            for i in range(0, len(rows), MERGED_BATCH_ROWS)
        )
        schema = state.schema
        assert schema is not None  # set together with the merger
        tracker = AnonymisationTracker(schema)
        for batch in batches:
            tracker.observe(batch)
        info = ExportInfo(
            export_type=request.export_type,
            data_type=state.first.data_type,
            record_count=len(rows),
            date_from=state.first.date_from,
            date_to=state.last.date_to,
            parts=state.merger.parts,
        )
        report = ExportReport(schema.names, schema.unknown, tracker.report(), len(rows))
        return ExportResult(info, report, batches)

    async def _fold(self, request: ExportRequest, state: _SplitState, why: str) -> None:
        halves = split_request(request)
        if halves is None:
            day = request.start.wall_time.date().isoformat()
            msg = (
                f"{why}; even the single day {day} ({request.start.timezone}) is too large and a day is the "
                "smallest part the client requests"
            )
            raise UpstreamTooLarge(msg)
        for part in halves:
            try:
                envelope = await self.request_export(part)
            except UpstreamTooLarge as error:
                await self._fold(part, state, error.message)
                continue
            except UpstreamNoData:
                continue
            stream = ExportStream(self, part, envelope)
            try:
                async for batch in stream.batches():
                    state.merger_for(request, batch.columns).add_rows(batch.columns, batch.rows())
            finally:
                await stream.aclose()
            schema = stream.schema
            assert schema is not None  # the stream completed
            state.merger_for(request, schema.columns, schema).end_part()
            state.first = state.first or stream.info
            state.last = stream.info


class _SplitState:
    """What the fold of a split export accumulates: the merger and the first and last parts' facts."""

    def __init__(self) -> None:
        self.merger: ExportMerger | None = None
        self.schema: ExportSchema | None = None
        self.first: ExportInfo | None = None
        self.last: ExportInfo | None = None

    def merger_for(
        self, request: ExportRequest, columns: Sequence[Column], schema: ExportSchema | None = None
    ) -> ExportMerger:
        """The merger, created from the first part's columns."""
        if self.merger is None:
            self.merger = ExportMerger(request.export_type, columns)
        if schema is not None and self.schema is None:
            self.schema = schema
        return self.merger


class ExportStream:
    """One export's rows, batch by batch. Single use: :meth:`batches` may be iterated once.

    ``info`` is known at once; ``schema`` once the header arrived; ``report`` only after the iterator ended
    normally (it raises ``RuntimeError`` before, so an incomplete export cannot be reported as complete).
    """

    def __init__(
        self,
        client: OdeusClient | None,
        request: ExportRequest | None,
        envelope: Envelope | None,
        *,
        result: ExportResult | None = None,
    ) -> None:
        self._client = client
        self._request = request
        self._envelope = envelope
        self._result = result
        self._schema: ExportSchema | None = None
        self._tracker: AnonymisationTracker | None = None
        self._report: ExportReport | None = result.report if result is not None else None
        self._iterator: AsyncIterator[ExportBatch] | None = None
        self._rows = 0
        if result is not None:
            self.info = result.info
        elif envelope is not None:
            self.info = envelope.info
        else:
            msg = "an export stream needs an envelope or a result"
            raise ValueError(msg)

    @classmethod
    def completed(cls, result: ExportResult) -> ExportStream:
        """A stream over an export already complete in memory (a merged split export)."""
        return cls(None, None, None, result=result)

    @property
    def schema(self) -> ExportSchema | None:
        """The export's columns once its header arrived."""
        return self._schema

    @property
    def complete(self) -> bool:
        """Whether every row arrived and was checked."""
        return self._report is not None

    @property
    def report(self) -> ExportReport:
        """Columns, unknown columns and upstream anonymisation; only once the stream is complete."""
        if self._report is None:
            msg = "the export is not complete yet: read batches() to its normal end first"
            raise RuntimeError(msg)
        return self._report

    def batches(self) -> AsyncIterator[ExportBatch]:
        """The typed batches, in file order; raises before its normal end if the export is incomplete."""
        if self._iterator is not None:
            msg = "an export stream can be read only once"
            raise RuntimeError(msg)
        self._iterator = self._produce()
        return self._iterator

    async def collect(self) -> ExportResult:
        """Read every batch and return the complete result (raises instead of returning a partial one)."""
        if self._result is not None and self._iterator is None:
            self._iterator = _empty()
            return self._result
        batches = tuple([batch async for batch in self.batches()])
        return ExportResult(self.info, self.report, batches)

    async def aclose(self) -> None:
        """Stop reading and release the download (called by ``open_export`` on exit)."""
        iterator = self._iterator
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()

    async def _produce(self) -> AsyncIterator[ExportBatch]:
        if self._result is not None:
            for batch in self._result.batches:
                yield batch
            return
        envelope = self._envelope
        assert envelope is not None
        source = self._json_batches(envelope) if envelope.rows is not None else self._csv_batches()
        async for batch in source:
            yield batch
        schema = self._schema
        tracker = self._tracker
        assert schema is not None
        assert tracker is not None
        self._report = ExportReport(schema.names, schema.unknown, tracker.report(), self._rows)
        logger.info(
            "odeus.export.complete",
            extra={"export_type": schema.export_type.value, "rows": self._rows},
        )

    def _hand_on(self, batch: ExportBatch) -> ExportBatch:
        assert self._tracker is not None
        self._tracker.observe(batch)
        self._rows += batch.num_rows
        return batch

    def _start(self, schema: ExportSchema) -> None:
        self._schema = schema
        self._tracker = AnonymisationTracker(schema)
        self._rows = 0

    async def _json_batches(self, envelope: Envelope) -> AsyncIterator[ExportBatch]:
        assert envelope.rows is not None
        export_type = envelope.info.export_type
        schema = schema_of_rows(export_type, envelope.rows)
        if len(envelope.rows) != envelope.info.record_count:
            msg = (
                f"the {export_type.value} export (JSON route) holds {len(envelope.rows)} rows where Odeus "
                f"announced {envelope.info.record_count}"
            )
            raise DownloadIncomplete(msg)
        batches = list(json_batches(schema, envelope.rows))  # all checked before any is handed on
        self._start(schema)
        for batch in batches:
            yield self._hand_on(batch)

    async def _csv_batches(self) -> AsyncIterator[ExportBatch]:
        client, request, envelope = self._client, self._request, self._envelope
        assert client is not None
        assert request is not None
        assert envelope is not None
        retrier = client.retrier
        started = retrier.clock()
        attempt = 1
        refreshed = False
        while True:
            handed = 0
            try:
                async for batch in self._download_once(envelope):
                    handed += 1
                    yield self._hand_on(batch)
                return
            except DownloadExpired:
                if handed or refreshed:
                    raise
                refreshed = True  # one fresh URL per export: a second expiry is reported
                logger.info("odeus.download.refresh", extra={"export_type": request.export_type.value})
                envelope = await client.request_export(request)
                self._envelope = envelope
                self.info = envelope.info
                continue
            except UpstreamError as error:
                if not error.retryable or handed:
                    retrier.failed(error, retrying=False)
                if not error.retryable:
                    raise
                if handed:
                    msg = (
                        f"{error.message}; {self._rows} rows were already handed on, so the download cannot "
                        "be retried: discard them and fetch the export again"
                    )
                    raise DownloadIncomplete(msg, status=error.status) from None
                elapsed = retrier.clock() - started
                delay = retrier.delay_for(error, attempt)
                if (
                    attempt >= retrier.policy.max_attempts
                    or elapsed + delay > retrier.policy.max_total_seconds
                ):
                    retrier.failed(error, retrying=False)
                    error.message = f"{error.message} (gave up after {attempt} download attempt(s))"
                    error.args = (error.message,)
                    raise
                retrier.failed(error, retrying=True)
                logger.info("odeus.download.retry", extra={"attempt": attempt, "status": error.status})
                await retrier.sleep(delay)
                attempt += 1

    async def _download_once(self, envelope: Envelope) -> AsyncIterator[ExportBatch]:
        """One GET of the signed URL, parsed as it arrives; each batch is held back until the next one
        (or the verified end of the file) is in hand."""
        client = self._client
        assert client is not None
        assert envelope.download_url is not None
        info = envelope.info
        config = client.config
        target = check_download_url(config, envelope.download_url)
        host = target.shown_host
        address = await pinned_address(target, timeout=config.timeouts.connect)
        request = download_request(config, envelope.download_url, address=address)
        parser = CsvExportParser(info.export_type, block_bytes=client.config.block_bytes)
        await client.limiter.acquire()
        try:
            response = await client.http.send(request, stream=True, auth=None, follow_redirects=False)
        except _CONNECTION_ERRORS as error:
            raise connection_error(error, where=f"the storage host {host}") from None
        try:
            if response.status_code != 200:
                raise error_for_download_response(response, now=client.wall_clock(), host=target.host)
            _refuse_declared_size(
                response, config.max_answer_bytes, what=f"the export file from the storage host {host}"
            )
            pending: ExportBatch | None = None
            try:
                async for chunk in response.aiter_bytes():
                    if response.num_bytes_downloaded > config.max_answer_bytes:
                        raise _too_large(
                            f"the export file from the storage host {host}", config.max_answer_bytes
                        )
                    for block in parser.blocks(chunk):
                        batch = await self._decode(parser, block, info)
                        if pending is not None:
                            yield pending
                        pending = batch
            except _CONNECTION_ERRORS as error:
                msg = (
                    f"the download from the storage host {host} broke off after "
                    f"{response.num_bytes_downloaded} bytes ({type(error).__name__})"
                )
                raise DownloadIncomplete(msg) from None
            _check_length(response, host)
            for block in parser.final_blocks():
                batch = await self._decode(parser, block, info)
                if pending is not None:
                    yield pending
                pending = batch
            self._follow(parser)  # a file with only its header has no block, but has a schema
            if parser.rows != info.record_count:
                raise _count_mismatch(info, parser.rows)
            if pending is not None:
                yield pending
        finally:
            await response.aclose()

    def _follow(self, parser: CsvExportParser) -> None:
        if parser.schema is not None and self._schema is not parser.schema:
            self._start(parser.schema)

    async def _decode(self, parser: CsvExportParser, block: bytes, info: ExportInfo) -> ExportBatch:
        self._follow(parser)
        batch = await asyncio.to_thread(parser.decode, block)
        if parser.rows > info.record_count:
            raise _count_mismatch(info, parser.rows)
        return batch


async def _empty() -> AsyncIterator[ExportBatch]:
    return
    yield  # pragma: no cover - makes this an async generator


async def _read_body(response: httpx.Response, limit: int, *, what: str) -> bytes:
    """The whole answer, refused (:class:`AnswerTooLarge`) as soon as it passes ``limit`` bytes."""
    _refuse_declared_size(response, limit, what=what)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > limit:
            raise _too_large(what, limit)
        body += chunk
    return bytes(body)


def _refuse_declared_size(response: httpx.Response, limit: int, *, what: str) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit)


def _too_large(what: str, limit: int) -> AnswerTooLarge:
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
    msg = f"{what} is larger than the {size} the client accepts (maximum answer size); reading stopped there"
    return AnswerTooLarge(msg)


def _check_length(response: httpx.Response, host: str) -> None:
    declared = response.headers.get("Content-Length")
    if declared is None or response.headers.get("Content-Encoding", "identity") != "identity":
        return
    if declared.isdigit() and int(declared) != response.num_bytes_downloaded:
        msg = (
            f"the download from the storage host {host} delivered {response.num_bytes_downloaded} bytes "
            f"where Content-Length announced {declared}"
        )
        raise DownloadIncomplete(msg)


def _count_mismatch(info: ExportInfo, rows: int) -> DownloadIncomplete:
    msg = (
        f"the {info.export_type.value} export file holds {'more than ' if rows > info.record_count else ''}"
        f"{rows} rows where Odeus announced recordCount {info.record_count}"
    )
    return DownloadIncomplete(msg)
