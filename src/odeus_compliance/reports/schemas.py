"""What the officers' report API reads and writes: msgspec Structs, one per body (no ORM objects, no dicts).

The request accepts either ``month`` (a calendar month in ``timezone``) or Odeus-style ``from``/``to``
objects (``{"date": "2026-10-01T00:00:00.000Z", "timezone": "Europe/Berlin"}``: a wall-clock time read in
its own zone, ``to`` inclusive to the millisecond, as in the Usage Export API); the service checks which.
Lengths are bounded here so a huge field is refused before any rule looks at it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from odeus_compliance.purpose import MAX_PURPOSE_LENGTH

__all__ = [
    "MAX_PURPOSE_LENGTH",
    "PeriodEndIn",
    "PeriodOut",
    "PolicyRef",
    "ReportCancelIn",
    "ReportLinks",
    "ReportOut",
    "ReportPage",
    "ReportRequestIn",
]


_Short = Annotated[str, msgspec.Meta(max_length=64)]


class PeriodEndIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One end of an Odeus-style period: a wall-clock date-time and the IANA zone it is read in."""

    date: _Short
    """``2026-10-01T00:00:00.000Z`` (a trailing ``Z`` is ignored, as Odeus does) or ``2026-10-01``."""
    timezone: _Short
    """IANA zone name, e.g. ``Europe/Berlin``."""


class ReportRequestIn(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    """A report request: a period (``month`` + ``timezone``, or ``from`` + ``to``), a policy, a purpose."""

    purpose: Annotated[str, msgspec.Meta(max_length=MAX_PURPOSE_LENGTH)]
    """Why the report is needed (required, non-blank); recorded in the audit log with the request."""
    policy: _Short = "default"
    """The name of a valid policy of the policy folder (``GET /api/v1/policies``)."""
    month: _Short | None = None
    """``YYYY-MM``: that calendar month in ``timezone``."""
    timezone: _Short | None = None
    """IANA zone of the report (required with ``month``; with ``from``/``to`` it defaults to ``from``'s)."""
    start: PeriodEndIn | None = None
    """``from``: the first instant of the period."""
    end: PeriodEndIn | None = None
    """``to``: the last instant of the period (inclusive to the millisecond)."""


class ReportCancelIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancelling a report job: why (required, here or as the query parameter ``purpose``)."""

    purpose: Annotated[str, msgspec.Meta(max_length=MAX_PURPOSE_LENGTH)] | None = None
    """Why the job is cancelled; recorded in the audit log with the cancellation."""


class PeriodOut(msgspec.Struct, frozen=True, rename={"start": "from", "end": "to"}):
    """The report's period: RFC 3339 with the offset of its time zone; ``to`` is exclusive."""

    start: str
    end: str
    timezone: str


class PolicyRef(msgspec.Struct, frozen=True):
    """The policy a report is made under; ``hash`` is known once the job has loaded it."""

    name: str
    hash: str | None


class ReportLinks(msgspec.Struct, frozen=True):
    """Where to read the report and its files (``null`` while a file is not available)."""

    self: str
    pdf: str | None
    """The figures-only PDF (every reader)."""
    dataset: str | None
    pdf_full: str | None = None
    """The PDF with the per-person dataset attached (officers only; where the policy releases one)."""


class ReportOut(msgspec.Struct, frozen=True):
    """A report job: its state and, once it succeeded, where its signed PDF and dataset are."""

    id: str
    status: str
    """``queued``, ``running``, ``succeeded`` or ``failed``."""
    stage: str
    """What the job is doing (or did last), e.g. ``fetch``, ``policy``, ``render``, ``sign``, ``done``."""
    progress: float
    """From 0 to 1."""
    period: PeriodOut
    policy: PolicyRef
    requested_by: str
    """The API key id that asked for it (or ``cli``, ``demo``, ``schedule:<id>``)."""
    requested_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    """Why a failed job failed (a reason safe to show)."""
    version: int
    supersedes: str | None
    """The id of the report this one replaces (a re-run of the same period and policy)."""
    pdf_sha256: str | None
    """SHA-256 (hex) of the signed PDF, once there is one."""
    has_dataset: bool
    """Whether the policy gave a per-person dataset (``data.csv``)."""
    links: ReportLinks


class ReportPage(msgspec.Struct, frozen=True):
    """One page of reports, newest first."""

    reports: list[ReportOut]
    next_before: str | None
    """Pass as ``before`` for the next (older) page; ``null`` on the last page."""
