"""Verifying uploaded PDFs in processes of their own: bounded in memory, time and number.

Why: an uploaded PDF is untrusted input, and parsing one can cost far more than its size (a 16 MiB file
whose catalog holds a huge array took 84 s and grew a process by 3 GB, never given back). So the service
never parses an upload itself:

- each upload is verified in a fresh process (``spawn``, as every worker process of the service:
  :mod:`odeus_compliance.core.workerprocs`) with an address-space cap
  (``ODEUS_COMPLIANCE_VERIFY_WORKER_MEMORY_MB``), which exits when the service dies, holds no key (only the
  trust anchors' certificates) and caps what the parser may build (:mod:`.pdflimits`);
- the upload is streamed to it through a socket as it arrives, so the service holds one chunk of it at a
  time, whatever its size; the process's answer comes back as JSON (never a pickle: nothing the process
  that read hostile bytes says is run);
- a verification, upload included, has a time limit (``ODEUS_COMPLIANCE_VERIFY_TIMEOUT_SECONDS``): then the
  process is killed;
- at most ``ODEUS_COMPLIANCE_VERIFY_CONCURRENCY`` run at once and ``ODEUS_COMPLIANCE_VERIFY_QUEUE`` more
  wait; a further request is answered at once with 503 and ``Retry-After`` (:class:`VerifierBusy`).

A file the process cannot judge within its limits (too many objects, nested too deep, too much memory, too
much time, the process crashed) is refused with a 422 problem (:class:`PdfRefused`) that names the limit; a
file it can judge gets its verdict (:class:`~.verify.VerificationResult`), valid or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import socket
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, Final

from odeus_compliance import warning_filters

# The verification process imports this module first (spawn): filter before pyHanko is imported below.
warning_filters.install()

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from odeus_compliance.core.workerprocs import start_worker, worker_environment
from odeus_compliance.errors import AppError, PayloadTooLarge, ServiceUnavailable, ValidationFailed
from odeus_compliance.reports import pdflimits
from odeus_compliance.reports.verify import Check, VerificationResult, trust_anchors, verify_pdf
from odeus_compliance.settings import Settings

__all__ = [
    "MAX_VERIFY_BYTES",
    "PdfRefused",
    "PdfVerifier",
    "VerifiedUpload",
    "VerifierBusy",
    "file_chunks",
    "verifier_of_state",
]

MAX_VERIFY_BYTES: Final = 64 * 1024 * 1024
"""The largest PDF that is verified (a report is bounded in pages; its largest part is the dataset)."""
_MAX_REPLY_BYTES: Final = 1 << 20
_CHUNK: Final = 1 << 16


PER_CLIENT = 1  # verifications one client may have admitted at once
STALL_SECONDS = 10.0  # the longest an upload may send nothing


class VerifierBusy(ServiceUnavailable):
    """Every verification slot is taken and the queue is full: try again after ``Retry-After`` seconds."""

    code = "verifier-busy"
    title = "Verifier busy"


class PdfRefused(AppError):
    """The file could not be judged within the verifier's limits; ``reason`` is a stable code for the
    audit record (``too_complex``, ``memory``, ``timeout``, ``crashed``)."""

    status: ClassVar[int] = 422
    code: ClassVar[str] = "pdf-not-verifiable"
    title: ClassVar[str] = "PDF could not be verified"

    def __init__(self, detail: str, *, reason: str, sha256: str | None, byte_count: int) -> None:
        super().__init__(detail, extra={"valid": False, "reason": reason})
        self.reason = reason
        self.sha256 = sha256
        self.byte_count = byte_count


@dataclass(slots=True)
class _Progress:
    digest: Any = field(default_factory=hashlib.sha256)
    count: int = 0


@dataclass(frozen=True, slots=True)
class VerifiedUpload:
    """The verdict on an upload, with the upload's SHA-256 and size (for the audit record)."""

    result: VerificationResult
    sha256: str
    byte_count: int


def verifier_of_state(verifier: object) -> PdfVerifier:
    """The app's verifier (from ``app.state``), or a 503 while it is not running."""
    if not isinstance(verifier, PdfVerifier):
        raise ServiceUnavailable("The report verifier is not running.")
    return verifier


async def file_chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as an upload's chunks (the command line and the demo verify files they hold)."""
    for start in range(0, len(data), _CHUNK):
        yield data[start : start + _CHUNK]


class PdfVerifier:
    """Runs verifications in capped processes, a bounded number at a time (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        memory_mb: int,
        timeout_seconds: float,
        concurrency: int,
        queue: int,
        max_bytes: int = MAX_VERIFY_BYTES,
    ) -> None:
        self.settings = settings
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.queue = queue
        self.max_bytes = max_bytes
        self._admitted = 0  # running and waiting
        self._clients: dict[str, int] = {}  # verifications admitted per client (API key)
        self.stall_seconds = STALL_SECONDS
        self._slots: asyncio.Semaphore | None = None
        self._processes: set[BaseProcess] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> PdfVerifier:
        """The verifier the settings describe (``ODEUS_COMPLIANCE_VERIFY_*``)."""
        return cls(
            settings,
            memory_mb=settings.verify_worker_memory_mb,
            timeout_seconds=settings.verify_timeout_seconds,
            concurrency=settings.verify_concurrency,
            queue=settings.verify_queue,
        )

    @property
    def retry_after(self) -> int:
        """Seconds a refused client is told to wait."""
        return max(1, min(10, math.ceil(self.timeout_seconds)))

    @property
    def admitted(self) -> int:
        """Verifications running or waiting for a slot now (for tests and diagnostics)."""
        return self._admitted

    def pids(self) -> list[int]:
        """The verification processes running now (for tests and diagnostics)."""
        return [p.pid for p in self._processes if p.pid is not None]

    @contextlib.asynccontextmanager
    async def _slot(self, client: str | None) -> AsyncIterator[None]:
        # one verification per client at a time: one key cannot hold every slot with slow uploads
        mine = self._clients.get(client, 0) if client is not None else 0
        if self._admitted >= self.concurrency + self.queue or mine >= PER_CLIENT:
            raise VerifierBusy(
                "Every report verification slot is taken; try again shortly.",
                headers={"Retry-After": str(self.retry_after)},
            )
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        self._admitted += 1
        if client is not None:
            self._clients[client] = mine + 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1
            if client is not None:
                left = self._clients.pop(client, 1) - 1
                if left:
                    self._clients[client] = left

    async def verify(self, upload: AsyncIterable[bytes], *, client: str | None = None) -> VerifiedUpload:
        """Verify the PDF ``upload`` yields (``client``: who sends it, e.g. the API key's id). Raises
        :class:`VerifierBusy` (before reading anything), ``ValidationFailed`` (empty), ``PayloadTooLarge``
        and :class:`PdfRefused`. The time limit runs from admission: waiting for a slot and a slow upload
        count against it, and an upload that sends nothing for ``stall_seconds`` (:data:`STALL_SECONDS`) is
        refused."""
        progress = _Progress()
        try:
            async with asyncio.timeout(self.timeout_seconds), self._slot(client):
                return await self._verify(upload, progress)
        except TimeoutError:
            raise PdfRefused(
                f"The PDF could not be verified within {self.timeout_seconds:g} s "
                "(ODEUS_COMPLIANCE_VERIFY_TIMEOUT_SECONDS, waiting and uploading included).",
                reason="timeout",
                sha256=None,
                byte_count=progress.count,
            ) from None

    async def _verify(self, upload: AsyncIterable[bytes], progress: _Progress) -> VerifiedUpload:
        chunks = aiter(upload)
        first = b""
        async for chunk in chunks:
            if chunk:
                first = chunk
                break
        if not first:
            raise ValidationFailed(
                "The request body is empty; send the PDF.",
                extra={"errors": [{"key": "body", "source": "body", "message": "empty"}]},
            )
        anchors = [c.public_bytes(serialization.Encoding.DER) for c in trust_anchors(self.settings)]
        reply = await self._exchange(first, chunks, anchors, progress)
        return _outcome(
            reply, sha256=progress.digest.hexdigest(), byte_count=progress.count, memory_mb=self.memory_mb
        )

    async def _exchange(
        self, first: bytes, rest: AsyncIterator[bytes], anchors: list[bytes], progress: _Progress
    ) -> bytes:
        """Start a process, stream the upload to it and read its answer; the process is gone after."""
        ours, theirs = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=_verify_in_child,
            args=(theirs, self.memory_mb, self.max_bytes, anchors),
            name="report-verifier",
            daemon=True,
        )
        try:
            with worker_environment():
                process.start()
            self._processes.add(process)
            theirs.close()
            ours.setblocking(False)
            loop = asyncio.get_running_loop()
            chunk: bytes | None = first
            while chunk is not None:
                if chunk:
                    progress.digest.update(chunk)
                    progress.count += len(chunk)
                    if progress.count > self.max_bytes:
                        msg = f"The PDF is larger than {self.max_bytes // 2**20} MiB."
                        raise PayloadTooLarge(msg)
                    with contextlib.suppress(OSError):  # the process stopped reading: its answer says why
                        await loop.sock_sendall(ours, chunk)
                async with asyncio.timeout(self.stall_seconds):  # a drip-fed upload holds a slot no longer
                    chunk = await anext(rest, None)
            with contextlib.suppress(OSError):
                ours.shutdown(socket.SHUT_WR)
            return await _read_reply(loop, ours)
        finally:
            ours.close()
            theirs.close()
            await asyncio.shield(self._stop(process))

    async def _stop(self, process: BaseProcess) -> None:
        """Wait briefly for the process to end (it exits after answering), else kill it."""
        self._processes.discard(process)
        if process.pid is None:
            return
        await asyncio.to_thread(process.join, 2.0)
        if process.exitcode is None:
            process.kill()
            await asyncio.to_thread(process.join, 10.0)
        with contextlib.suppress(ValueError):
            process.close()

    async def close(self) -> None:
        """Kill every verification still running (the app is stopping)."""
        processes, self._processes = list(self._processes), set()
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        for process in processes:
            await asyncio.to_thread(process.join, 10)


async def _read_reply(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    reply = bytearray()
    while len(reply) <= _MAX_REPLY_BYTES:
        try:
            data = await loop.sock_recv(sock, _CHUNK)
        except OSError:  # the process died: no (whole) answer
            break
        if not data:
            break
        reply += data
    return bytes(reply)


def _outcome(reply: bytes, *, sha256: str, byte_count: int, memory_mb: int) -> VerifiedUpload:
    """The verdict the process sent, or :class:`PdfRefused` with the reason it gave (or ``crashed``)."""
    try:
        answer = json.loads(reply)
        refused = answer.get("refused")
        if refused is None:
            return VerifiedUpload(_result_from_json(answer["result"]), sha256, byte_count)
        limit = pdflimits.LIMITS[str(answer["limit"])] if refused == "too_complex" else _LIMITS[str(refused)]
    except (ValueError, KeyError, TypeError, AttributeError):
        refused, limit = "crashed", _CRASHED
    if refused == "memory":
        limit = limit.format(memory_mb=memory_mb)
    raise PdfRefused(
        f"The PDF could not be verified: {limit}.", reason=refused, sha256=sha256, byte_count=byte_count
    )


_CRASHED: Final = "the verifier stopped unexpectedly on this file (for example out of memory)"
_LIMITS: Final = {
    "memory": "it needs more memory than the verifier may use "
    "({memory_mb} MiB, ODEUS_COMPLIANCE_VERIFY_WORKER_MEMORY_MB)",
    "too_large": "it is larger than the verifier accepts",
}


def _result_from_json(data: dict[str, Any]) -> VerificationResult:
    """The verdict as the process sent it (the form of :meth:`VerificationResult.to_json`)."""
    signed_at = data.get("signed_at")
    return VerificationResult(
        valid=bool(data["valid"]),
        checks=tuple(
            Check(str(c["name"]), ok=bool(c["ok"]), detail=str(c["detail"])) for c in data["checks"]
        ),
        signer=None if data.get("signer") is None else str(data["signer"]),
        signed_at=None if signed_at is None else datetime.fromisoformat(str(signed_at)),
        timestamped=bool(data.get("timestamped")),
        report_id=None if data.get("report_id") is None else str(data["report_id"]),
    )


# --- the verification process -------------------------------------------------------------------------


def _receive(sock: socket.socket, max_bytes: int) -> bytes | None:
    """The upload, read to its end; ``None`` when it is larger than ``max_bytes``."""
    data = bytearray()
    while True:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > max_bytes:
            return None


def _judge(pdf: bytes, anchors: Sequence[x509.Certificate]) -> dict[str, Any]:
    try:
        result = verify_pdf(pdf, anchors=anchors)
    except MemoryError:
        return {"refused": "memory"}
    reason = pdflimits.exceeded()
    if reason is not None:
        return {"refused": "too_complex", "limit": reason}
    return {"result": result.to_json()}


def _verify_in_child(sock: socket.socket, memory_mb: int, max_bytes: int, anchors_der: list[bytes]) -> None:
    """The process's whole life: limits first, then read, judge, answer, exit."""
    start_worker(memory_mb)
    pdflimits.install()
    with sock:
        try:
            anchors = [x509.load_der_x509_certificate(der) for der in anchors_der]
            pdf = _receive(sock, max_bytes)
            answer = {"refused": "too_large"} if pdf is None else _judge(pdf, anchors)
            del pdf
        except MemoryError:
            answer = {"refused": "memory"}
        with contextlib.suppress(OSError):
            sock.sendall(json.dumps(answer).encode("utf-8"))
