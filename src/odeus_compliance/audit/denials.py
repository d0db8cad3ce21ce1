"""Refused requests (401, 403): counted per client and window, recorded in bounded number, limited with 429.

A flood of bad keys used to write one permanent ``access.denied`` record per request. Now every refusal is
counted in the database (``access_denial_windows``, one atomic upsert shared by every replica) under the
client (IPv4 address, IPv6 /64) and API key, in windows of ``denial_window_seconds``:

- the first ``denial_records`` refusals of a window are recorded at once, one ``access.denied`` record each
  (``count`` 1), before the refusal is answered (fail closed: a 503 if the record cannot be written);
- the rest are only counted; once the window has ended, one replica writes one summary ``access.denied``
  record with their ``count`` (and ``rate_limited_count``, how many of them were answered 429) and the
  window's bounds (``from_time``, ``to_time``);
- past ``denial_limit`` refusals in a window, a request that fails authentication or authorisation is
  answered 429 with ``Retry-After`` (the end of the window) instead of 401 or 403, and counted too.

So each client and key gets at most ``denial_records + 1`` records per window, however many replicas
there are (one more for each replica stopped while the window was open: stopping writes the summaries of
open windows too, so a stopped log holds every count), and the ``count`` of its records adds up to its
refused requests, the 429s included. A request with a key valid for its route never gets here: a flood
from an address does not lock out the people behind it.

The client is the socket's peer as the ASGI server reports it; ``serve`` does not read ``X-Forwarded-For``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.appender import ANONYMOUS, AuditAppender
from odeus_compliance.audit.denial_store import (
    DueSummary,
    Refusal,
    claim_summary,
    count_refusal,
    delete_done,
    due_windows,
    mark_summarized,
    release,
)
from odeus_compliance.audit.denial_subject import DenialSealer, Subject, SubjectError
from odeus_compliance.audit.recorder import AuditUnavailable, Recorder
from odeus_compliance.audit.records import Action, Outcome
from odeus_compliance.core.background import BackgroundTask
from odeus_compliance.core.clock import Clock, utcnow
from odeus_compliance.core.leases import lease_owner_id
from odeus_compliance.errors import TooManyRequests
from odeus_compliance.logging_setup import log_event
from odeus_compliance.settings import Settings

__all__ = ["DenialLimiter", "DenialRules", "record_single_denial"]

_log = logging.getLogger(__name__)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LEASE: Final = dt.timedelta(seconds=60)
_MAX_GRACE: Final = 2.0
"""Seconds a window is left open after its end for refusals counted just before it (clocks of replicas)."""
_MAX_TICK: Final = 15.0
_STOP_BATCHES: Final = 50
_TOO_MANY: Final = "Too many refused requests from this client; try again after the time in Retry-After."


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def record_single_denial(
    recorder: Recorder, *, status: int, reason: str, method: str, route: str
) -> None:
    """One refused request as one ``access.denied`` record (raises :class:`AuditUnavailable`)."""
    await recorder.record(
        action=Action.ACCESS_DENIED,
        resource=route,
        outcome=Outcome.DENIED,
        details={"http_status": status, "reason": reason, "method": method, "route": route, "count": 1},
    )


@dataclasses.dataclass(frozen=True, slots=True)
class DenialRules:
    """The window length and the two thresholds (see the module docstring)."""

    window_seconds: float
    records: int
    limit: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DenialRules:
        """The rules ``settings`` configure."""
        return cls(settings.denial_window_seconds, settings.denial_records, settings.denial_limit)

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The window holding ``now``: aligned to the Unix epoch in whole milliseconds, so every replica
        computes the same bounds."""
        length = max(1, round(self.window_seconds * 1000))
        elapsed = (now - _EPOCH) // dt.timedelta(milliseconds=1)
        start = _EPOCH + dt.timedelta(milliseconds=elapsed // length * length)
        return start, start + dt.timedelta(milliseconds=length)


class DenialLimiter:
    """Counts refusals, records them in bounded number and writes the windows' summaries (module docstring).

    The app's lifespan builds one, :meth:`start` s it after the appender and :meth:`stop` s it before
    closing the appender."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        appender: AuditAppender,
        sealer: DenialSealer,
        rules: DenialRules,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._appender = appender
        self._sealer = sealer
        self._rules = rules
        self._clock = clock
        self._owner = lease_owner_id()
        self._grace = dt.timedelta(seconds=min(rules.window_seconds, _MAX_GRACE))
        self._tick = min(max(rules.window_seconds / 4, 0.25), _MAX_TICK)
        self._background = BackgroundTask("denial-summaries")

    @classmethod
    def for_settings(
        cls, settings: Settings, *, engine: AsyncEngine, appender: AuditAppender
    ) -> DenialLimiter:
        """A limiter on the app's engine with the rules and master key of ``settings``."""
        return cls(
            engine=engine,
            appender=appender,
            sealer=DenialSealer(settings.require_master_key()),
            rules=DenialRules.from_settings(settings),
        )

    async def refuse(self, recorder: Recorder, *, status: int, reason: str, method: str, route: str) -> None:
        """Count one refusal of ``recorder``'s client and actor: record it at once while the window has
        single records left; past the limit raise :class:`TooManyRequests` (the request is answered 429);
        otherwise return, and the caller answers its 401 or 403. :class:`AuditUnavailable` (503) if the
        refusal can be neither counted nor recorded."""
        now = self._clock()
        start, end = self._rules.window(now)
        subject = Subject(recorder.client_address, recorder.actor)
        tag = self._sealer.tag(subject)
        refusal = Refusal(tag, start, end, self._sealer.seal(subject, tag), status, reason, method, route)
        try:
            async with self._engine.begin() as conn:
                count = await count_refusal(
                    conn, refusal, records=self._rules.records, limit=self._rules.limit
                )
        except (SQLAlchemyError, OSError):
            raise AuditUnavailable from None
        if count <= self._rules.records:
            await record_single_denial(recorder, status=status, reason=reason, method=method, route=route)
        elif count > self._rules.limit:
            raise TooManyRequests(_TOO_MANY, retry_after=math.ceil((end - now).total_seconds()))

    async def start(self) -> None:
        """Write the summaries of ended windows every few seconds, in the background."""
        self._background.start(self._loop())

    async def stop(self) -> None:
        """Stop the background task and write the summaries of every window, open ones included."""
        await self._background.stop()
        try:
            for _ in range(_STOP_BATCHES):
                if not await self.flush(everything=True):
                    break
        except (SQLAlchemyError, OSError) as exc:
            log_event(_log, logging.WARNING, "denial_summaries_failed", error_type=type(exc).__name__)

    async def flush(self, *, everything: bool = False) -> int:
        """Write the summary of each ended window (``everything``: of open ones too) that has refusals not
        yet in the log, then delete the windows that are done; returns how many summaries were written."""
        now = self._clock()
        async with self._engine.begin() as conn:
            keys = await due_windows(conn, ended_by=None if everything else now - self._grace)
        written = 0
        for key in keys:
            async with self._engine.begin() as conn:
                summary = await claim_summary(conn, key, owner=self._owner, now=now, until=now + _LEASE)
            if summary is not None and await self._summarise(summary):
                written += 1
        async with self._engine.begin() as conn:
            await delete_done(conn, ended_by=now - self._grace)
        return written

    async def _summarise(self, summary: DueSummary) -> bool:
        try:
            subject = self._sealer.open(summary.first.sealed, summary.first.tag)
        except SubjectError:
            # the counts still go into the log, without naming whom (a master key changed under the row)
            log_event(_log, logging.WARNING, "denial_subject_unreadable")
            subject = Subject(None, ANONYMOUS)
        recorder = Recorder(self._appender, subject.actor, None, subject.client_address)
        try:
            await recorder.record(
                action=Action.ACCESS_DENIED,
                resource=summary.first.route,
                outcome=Outcome.DENIED,
                details={
                    "http_status": summary.first.http_status,
                    "reason": summary.first.reason,
                    "method": summary.first.method,
                    "route": summary.first.route,
                    "count": summary.pending,
                    "rate_limited_count": summary.pending_limited,
                    "from_time": _stamp(summary.first.window_start),
                    "to_time": _stamp(summary.first.window_end),
                },
            )
        except AuditUnavailable:
            async with self._engine.begin() as conn:
                await release(conn, summary, owner=self._owner)
            return False
        async with self._engine.begin() as conn:
            await mark_summarized(conn, summary, owner=self._owner)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the loop must survive; the next tick tries again
                log_event(_log, logging.WARNING, "denial_summaries_failed", error_type=type(exc).__name__)
