"""What the officers' report API reads and writes: msgspec Structs, one per body (no ORM objects, no dicts).

The request accepts either ``month`` (a calendar month in ``timezone``) or Odeus-style ``from``/``to``
objects (``{"date": "2026-10-01T00:00:00.000Z", "timezone": "Europe/Berlin"}``: a wall-clock time read in
its own zone, ``to`` inclusive to the millisecond, as in the Usage Export API); the service checks which.
Lengths are bounded here so a huge field is refused before any rule looks at it.
"""

from __future__ import annotations

from typing import Annotated, Final

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


_ZONE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
"""The form of an IANA zone name (whether the zone exists is the service's check)."""
_Zone = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        pattern=_ZONE_PATTERN,
        description="An IANA time zone name.",
        examples=["Europe/Berlin"],
    ),
]
_PURPOSE_RULE: Final = (
    f"Not blank, at most {MAX_PURPOSE_LENGTH} characters, no control, format, bidi or invisible characters; "
    "recorded in the audit log."
)


class PeriodEndIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One end of an Odeus-style period: a wall-clock date-time and the IANA zone it is read in."""

    date: Annotated[
        str,
        msgspec.Meta(
            max_length=64,
            pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?Z?)?$",
            description="Wall-clock date-time in `timezone`, no offset (a trailing `Z` is ignored, as Odeus "
            "does), or a date.",
            examples=["2026-10-01T00:00:00.000Z"],
        ),
    ]
    """``2026-10-01T00:00:00.000Z`` (a trailing ``Z`` is ignored, as Odeus does) or ``2026-10-01``."""
    timezone: _Zone
    """IANA zone name, e.g. ``Europe/Berlin``."""


class ReportRequestIn(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    """A report request: a period (``month`` + ``timezone``, or ``from`` + ``to``), a policy, a purpose."""

    purpose: Annotated[
        str,
        msgspec.Meta(
            max_length=MAX_PURPOSE_LENGTH,
            description=f"Why the report is needed. {_PURPOSE_RULE}",
            examples=["monthly works-council report"],
        ),
    ]
    """Why the report is needed (required, non-blank); recorded in the audit log with the request."""
    policy: Annotated[
        str,
        msgspec.Meta(
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
            description="The name of a valid policy of the policy folder (`GET /api/v1/policies`).",
            examples=["default"],
        ),
    ] = "default"
    """The name of a valid policy of the policy folder (``GET /api/v1/policies``)."""
    month: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                description="`YYYY-MM`: that calendar month in `timezone` (not in the future). Send either "
                "`month` or `from` and `to`.",
                examples=["2026-10"],
            ),
        ]
        | None
    ) = None
    """``YYYY-MM``: that calendar month in ``timezone``."""
    timezone: _Zone | None = None
    """IANA zone of the report (required with ``month``; with ``from``/``to`` it defaults to ``from``'s)."""
    start: (
        Annotated[PeriodEndIn, msgspec.Meta(description="`from`: the first instant of the period.")] | None
    ) = None
    """``from``: the first instant of the period."""
    end: (
        Annotated[
            PeriodEndIn,
            msgspec.Meta(description="`to`: the last instant of the period (inclusive to the millisecond)."),
        ]
        | None
    ) = None
    """``to``: the last instant of the period (inclusive to the millisecond)."""
    partial: Annotated[
        bool,
        msgspec.Meta(
            description="Allow a period that has not ended yet: the report then covers the data up to when "
            "it is made and says so on its cover. Without it such a period is a 400."
        ),
    ] = False
    """Allow a period that has not ended yet: the report then covers the data up to when it is made and
    says so on its cover (``partial``). Without it such a period is a 400."""


class ReportCancelIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancelling a report job: why (required, here or as the query parameter ``purpose``)."""

    purpose: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_PURPOSE_LENGTH,
                description=f"Why the job is cancelled (required here or as `?purpose=`). {_PURPOSE_RULE}",
                examples=["requested by mistake"],
            ),
        ]
        | None
    ) = None
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
    partial: bool
    """Whether the report covers only part of its period (it was made before the period ended)."""
    data_until: str | None
    """A partial report's data goes up to this instant (RFC 3339, UTC); ``null`` otherwise."""
    current: bool
    """Whether this is the current version of its period: the newest succeeded one of the same period,
    zone and policy."""


class ReportPage(msgspec.Struct, frozen=True):
    """One page of reports, newest first."""

    reports: list[ReportOut]
    next_before: str | None
    """Pass as ``before`` for the next (older) page; ``null`` on the last page."""
