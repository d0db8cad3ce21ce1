"""metrics_role: API keys may have the role ``metrics`` (a scraper that reads ``GET /metrics`` only).

Revision ID: 0008_metrics_role
Revises: 0007_report_data_until
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_metrics_role"
down_revision: str | None = "0007_report_data_until"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMMENT_BEFORE = "officer, auditor or admin"
_COMMENT_AFTER = "officer, auditor, admin or metrics"


def _role_rule(roles: str, comment: str, existing_comment: str) -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_role"), type_="check")
        batch.create_check_constraint(op.f("ck_api_keys_role"), sa.text(f"role IN ({roles})"))
        batch.alter_column(
            "role",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            comment=comment,
            existing_comment=existing_comment,
        )


def upgrade() -> None:
    """Allow the ``metrics`` role."""
    _role_rule("'officer', 'auditor', 'admin', 'metrics'", _COMMENT_AFTER, _COMMENT_BEFORE)


def downgrade() -> None:
    """Refuse it again (revoke and delete ``metrics`` keys first: existing rows would break the rule)."""
    _role_rule("'officer', 'auditor', 'admin'", _COMMENT_BEFORE, _COMMENT_AFTER)
