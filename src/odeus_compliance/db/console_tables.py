"""The web console's tables (migration ``0009_console``): one-time sign-in links, pending OIDC sign-ins and
sessions. Each is found by a keyed hash (HMAC-SHA-256 under a key derived from the master key) of a random
token that only the person's browser holds, so a copy of the database lets nobody sign in or take over a
session. Rows are short-lived: an expired or used one is deleted the next time anyone signs in.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from odeus_compliance.db.models import Base, UtcDateTime, utcnow

__all__ = ["ConsolePendingSignIn", "ConsoleSession", "ConsoleSignInLink"]

_ROLE_RULE = "role IN ('officer', 'auditor', 'admin')"


class ConsoleSignInLink(Base):
    """A one-time sign-in link (``console link``): usable once, until it expires."""

    __tablename__ = "console_sign_in_links"
    __table_args__ = (
        CheckConstraint(_ROLE_RULE, name="role"),
        Index("ix_console_sign_in_links_expires_at", "expires_at"),
        {"comment": "One-time console sign-in links: keyed hash of the token only, never the token"},
    )

    token_hash: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="HMAC-SHA-256 (hex) of the link's token under a derived key"
    )
    """Finds the link from the token in its URL; the token itself is never stored."""
    link_id: Mapped[str] = mapped_column(
        String(40), unique=True, comment="Public id of the link (lnk_...), named in audit records"
    )
    """What audit records and sessions name instead of the token."""
    person_name: Mapped[str] = mapped_column(String(200), comment="Who the link is for, as given")
    """The person's name at the time the link was made (the actor name of their session)."""
    role: Mapped[str] = mapped_column(String(16), comment="officer, auditor or admin")
    """The role the session gets."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="When made (UTC)")
    """When the link was made."""
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Unusable after this (UTC)")
    """The link works until then, once."""
    used_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, default=None, comment="When it was used (UTC); null while unused"
    )
    """Set by the one statement that uses the link, so two clicks cannot both sign in."""


class ConsolePendingSignIn(Base):
    """An OIDC sign-in between the redirect to the identity provider and its answer."""

    __tablename__ = "console_pending_sign_ins"
    __table_args__ = (
        Index("ix_console_pending_sign_ins_expires_at", "expires_at"),
        {"comment": "OIDC sign-ins waiting for the identity provider's answer (state, nonce, PKCE verifier)"},
    )

    browser_hash: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="HMAC-SHA-256 (hex) of the sign-in cookie of the browser"
    )
    """Binds the answer to the browser that started the sign-in (no login CSRF)."""
    state: Mapped[str] = mapped_column(String(64), comment="The state parameter sent to the provider")
    """Must come back unchanged with the code."""
    nonce: Mapped[str] = mapped_column(String(64), comment="The nonce the ID token must carry")
    """Binds the ID token to this sign-in."""
    code_verifier: Mapped[str] = mapped_column(String(128), comment="PKCE code verifier (RFC 7636)")
    """Sent with the code: only this service can redeem it."""
    return_to: Mapped[str] = mapped_column(String(200), comment="Console path to open after sign-in")
    """A path under /console/ (checked when stored)."""
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Unusable after this (UTC)")
    """Ten minutes after the start."""


class ConsoleSession(Base):
    """A signed-in person's session: the browser holds a random token, the row its keyed hash."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint(_ROLE_RULE, name="role"),
        Index("ix_console_sessions_expires_at", "expires_at"),
        {"comment": "Console sessions shared by every replica: keyed hash of the cookie, never the cookie"},
    )

    token_hash: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="HMAC-SHA-256 (hex) of the session cookie under a derived key"
    )
    """Finds the session from its cookie."""
    session_id: Mapped[str] = mapped_column(
        String(40), unique=True, comment="Public id of the session (ses_...), named in audit records"
    )
    """What audit records name (sign-in, sign-out)."""
    principal: Mapped[str] = mapped_column(
        String(80), comment="Who signed in: link:<link id> or oidc:<hash of issuer and subject>"
    )
    """The actor id of the session's records (``console:`` and this)."""
    person_name: Mapped[str] = mapped_column(String(200), comment="The person's name at sign-in")
    """The actor name of the session's records."""
    role: Mapped[str] = mapped_column(String(16), comment="officer, auditor or admin")
    """The one role of the session."""
    method: Mapped[str] = mapped_column(String(8), comment="How the person signed in: link or oidc")
    """``link`` or ``oidc``."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="Sign-in (UTC)")
    """When the person signed in."""
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Last request, to the minute")
    """Moved forward at most once a minute; the idle timeout counts from it."""
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Absolute end of the session (UTC)")
    """The absolute timeout: no request extends it."""
