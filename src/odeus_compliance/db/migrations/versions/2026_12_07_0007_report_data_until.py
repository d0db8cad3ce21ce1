"""report_data_until: a partial report (its period had not ended) says up to when its data goes.

Revision ID: 0007_report_data_until
Revises: 0006_access_denial_windows
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_report_data_until"
down_revision: str | None = "0006_access_denial_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (every existing report covers its whole period)."""
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column(
                "data_until",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="Partial report: when its data was fetched, before the period ended (UTC)",
            )
        )


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("data_until")
