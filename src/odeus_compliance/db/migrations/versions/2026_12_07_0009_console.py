"""console: one-time sign-in links, pending OIDC sign-ins and sessions of the web console.

Revision ID: 0009_console
Revises: 0008_metrics_role
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_console"
down_revision: str | None = "0008_metrics_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLE_RULE = "role IN ('officer', 'auditor', 'admin')"


def _time(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def _text(name: str, length: int, comment: str) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=False, comment=comment)


def upgrade() -> None:
    """Create the console's tables."""
    op.create_table(
        "console_sign_in_links",
        _text("token_hash", 64, "HMAC-SHA-256 (hex) of the link's token under a derived key"),
        _text("link_id", 40, "Public id of the link (lnk_...), named in audit records"),
        _text("person_name", 200, "Who the link is for, as given"),
        _text("role", 16, "officer, auditor or admin"),
        _time("created_at", "When made (UTC)"),
        _time("expires_at", "Unusable after this (UTC)"),
        _time("used_at", "When it was used (UTC); null while unused", nullable=True),
        sa.CheckConstraint(_ROLE_RULE, name=op.f("ck_console_sign_in_links_role")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sign_in_links")),
        sa.UniqueConstraint("link_id", name=op.f("uq_console_sign_in_links_link_id")),
        comment="One-time console sign-in links: keyed hash of the token only, never the token",
    )
    op.create_index("ix_console_sign_in_links_expires_at", "console_sign_in_links", ["expires_at"])
    op.create_table(
        "console_pending_sign_ins",
        _text("browser_hash", 64, "HMAC-SHA-256 (hex) of the sign-in cookie of the browser"),
        _text("state", 64, "The state parameter sent to the provider"),
        _text("nonce", 64, "The nonce the ID token must carry"),
        _text("code_verifier", 128, "PKCE code verifier (RFC 7636)"),
        _text("return_to", 200, "Console path to open after sign-in"),
        _time("expires_at", "Unusable after this (UTC)"),
        sa.PrimaryKeyConstraint("browser_hash", name=op.f("pk_console_pending_sign_ins")),
        comment="OIDC sign-ins waiting for the identity provider's answer (state, nonce, PKCE verifier)",
    )
    op.create_index("ix_console_pending_sign_ins_expires_at", "console_pending_sign_ins", ["expires_at"])
    op.create_table(
        "console_sessions",
        _text("token_hash", 64, "HMAC-SHA-256 (hex) of the session cookie under a derived key"),
        _text("session_id", 40, "Public id of the session (ses_...), named in audit records"),
        _text("principal", 80, "Who signed in: link:<link id> or oidc:<hash of issuer and subject>"),
        _text("person_name", 200, "The person's name at sign-in"),
        _text("role", 16, "officer, auditor or admin"),
        _text("method", 8, "How the person signed in: link or oidc"),
        _time("created_at", "Sign-in (UTC)"),
        _time("last_seen_at", "Last request, to the minute"),
        _time("expires_at", "Absolute end of the session (UTC)"),
        sa.CheckConstraint(_ROLE_RULE, name=op.f("ck_console_sessions_role")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("session_id", name=op.f("uq_console_sessions_session_id")),
        comment="Console sessions shared by every replica: keyed hash of the cookie, never the cookie",
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop them (every session and link ends)."""
    for table in ("console_sessions", "console_pending_sign_ins", "console_sign_in_links"):
        op.drop_index(f"ix_{table}_expires_at", table_name=table)
        op.drop_table(table)
