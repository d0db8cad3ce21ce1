"""The ``access_denial_windows`` table (migration ``0006_access_denial_windows``): refused requests counted
per client and time window, so a flood of bad keys costs a counter, not a permanent audit record each.

One row per (client, API key, window). Every replica counts into the same row with one atomic upsert, so
the database, not a process, decides which refusals are recorded one by one and when a client is over the
limit. The row lives until its window has ended and its count is in the audit log (a summary record), then
it is deleted. It names its client only by a keyed hash; the address and the key's name are sealed
(AES-256-GCM), like the audit log that will hold them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from odeus_compliance.db.models import Base, UtcDateTime

__all__ = ["AccessDenialWindow"]


class AccessDenialWindow(Base):
    """Refusals of one client (and API key, for wrong-role refusals) in one window."""

    __tablename__ = "access_denial_windows"
    __table_args__ = (
        Index("ix_access_denial_windows_window_end", "window_end"),
        {"comment": "Refused requests counted per client and window until their summary is in the audit log"},
    )

    subject_tag: Mapped[str] = mapped_column(
        String(64),
        primary_key=True,
        comment="HMAC-SHA-256 (hex) of the client (IPv4 address or IPv6 /64) and the API key id",
    )
    """Who is counted: searchable for the upsert, unreadable without the master key."""
    window_start: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True, comment="Window start")
    """Start of the window (windows are aligned to the Unix epoch)."""
    window_end: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Window end (exclusive)")
    """End of the window: its summary is written after it."""
    subject: Mapped[bytes] = mapped_column(
        LargeBinary,
        comment="The first refusal's client address and API key (id, name, role), AES-256-GCM sealed",
    )
    """What the summary record names as client and actor (nonce ‖ ciphertext)."""
    http_status: Mapped[int] = mapped_column(Integer, comment="401 or 403 of the first summarised refusal")
    """Status of the first refusal the summary counts."""
    reason: Mapped[str] = mapped_column(String(32), comment="Reason code of the first summarised refusal")
    """Reason code (``invalid_key``, ``wrong_role``, ...) of the first refusal the summary counts."""
    method: Mapped[str] = mapped_column(String(10), comment="HTTP method of the first summarised refusal")
    """HTTP method of the first refusal the summary counts."""
    route: Mapped[str] = mapped_column(String(256), comment="Route template of the first summarised refusal")
    """Route template (never the concrete path) of the first refusal the summary counts."""
    count: Mapped[int] = mapped_column(Integer, comment="Refusals counted in the window")
    """Every refusal of the window (recorded one by one, summarised, or answered 429)."""
    singles: Mapped[int] = mapped_column(Integer, comment="Of them, recorded one by one at once")
    """Refusals that took one of the window's slots for an individual record."""
    limited: Mapped[int] = mapped_column(Integer, comment="Of them, answered 429 (over the limit)")
    """Refusals answered 429 because the client was over the limit."""
    summarized: Mapped[int] = mapped_column(Integer, comment="Refusals already in a summary record")
    """How many of ``count - singles`` the summary records written so far hold."""
    summarized_limited: Mapped[int] = mapped_column(Integer, comment="429s already in a summary record")
    """How many of ``limited`` the summary records written so far hold."""
    lease_owner: Mapped[str | None] = mapped_column(
        String(128), nullable=True, comment="Process writing the summary now (host:pid:random), or null"
    )
    """The replica that claimed the row to write its summary."""
    lease_until: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="Until when that claim holds"
    )
    """A claim whose replica died is taken over after this."""
