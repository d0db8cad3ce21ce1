"""access_denial_windows: refused requests counted per client and window (aggregated access.denied).

Revision ID: 0006_access_denial_windows
Revises: 0005_retention
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_access_denial_windows"
down_revision: str | None = "0005_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def _int(name: str, comment: str) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), nullable=False, comment=comment)


def upgrade() -> None:
    """Create the table of denial windows."""
    op.create_table(
        "access_denial_windows",
        sa.Column(
            "subject_tag",
            sa.String(length=64),
            nullable=False,
            comment="HMAC-SHA-256 (hex) of the client (IPv4 address or IPv6 /64) and the API key id",
        ),
        _time("window_start", "Window start"),
        _time("window_end", "Window end (exclusive)"),
        sa.Column(
            "subject",
            sa.LargeBinary(),
            nullable=False,
            comment="The first refusal's client address and API key (id, name, role), AES-256-GCM sealed",
        ),
        _int("http_status", "401 or 403 of the first summarised refusal"),
        sa.Column(
            "reason",
            sa.String(length=32),
            nullable=False,
            comment="Reason code of the first summarised refusal",
        ),
        sa.Column(
            "method",
            sa.String(length=10),
            nullable=False,
            comment="HTTP method of the first summarised refusal",
        ),
        sa.Column(
            "route",
            sa.String(length=256),
            nullable=False,
            comment="Route template of the first summarised refusal",
        ),
        _int("count", "Refusals counted in the window"),
        _int("singles", "Of them, recorded one by one at once"),
        _int("limited", "Of them, answered 429 (over the limit)"),
        _int("summarized", "Refusals already in a summary record"),
        _int("summarized_limited", "429s already in a summary record"),
        sa.Column(
            "lease_owner",
            sa.String(length=128),
            nullable=True,
            comment="Process writing the summary now (host:pid:random), or null",
        ),
        _time("lease_until", "Until when that claim holds", nullable=True),
        sa.PrimaryKeyConstraint("subject_tag", "window_start", name=op.f("pk_access_denial_windows")),
        comment="Refused requests counted per client and window until their summary is in the audit log",
    )
    op.create_index("ix_access_denial_windows_window_end", "access_denial_windows", ["window_end"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_access_denial_windows_window_end", table_name="access_denial_windows")
    op.drop_table("access_denial_windows")
