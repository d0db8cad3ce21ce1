"""Rows of the console's tables: make and use one-time links, keep OIDC sign-ins pending, start, find and
end sessions. Every lookup goes through a keyed hash of the browser's token (:mod:`.tokens`); using a link
or a pending sign-in is one conditional statement, so two requests cannot both succeed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.console.tokens import ConsoleKeys, new_public_id, new_token
from odeus_compliance.db.console_tables import ConsolePendingSignIn, ConsoleSession, ConsoleSignInLink

__all__ = [
    "LinkRefusal",
    "LinkUse",
    "PendingSignIn",
    "SessionRow",
    "count_pending",
    "create_link",
    "end_session",
    "find_session",
    "purge_expired",
    "save_pending",
    "start_session",
    "take_pending",
    "use_link",
]

_TOUCH_EVERY: Final = dt.timedelta(minutes=1)
PENDING_LIFETIME: Final = dt.timedelta(minutes=10)
_EXPIRED_LINKS_KEPT: Final = dt.timedelta(days=1)
"""An expired link stays this long, so a late click is refused as expired, naming the person it was for."""


class LinkRefusal(enum.StrEnum):
    """Why a sign-in link did not sign anyone in (an audit ``error_code``)."""

    UNKNOWN = "link_unknown"
    USED = "link_used"
    EXPIRED = "link_expired"


@dataclasses.dataclass(frozen=True, slots=True)
class LinkUse:
    """The link a token named, and whether it signed in (``refusal`` is ``None``) or why not."""

    link_id: str | None
    person_name: str | None
    role: str | None
    refusal: LinkRefusal | None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRow:
    """A live session as a request sees it."""

    session_id: str
    principal: str
    person_name: str
    role: str
    method: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class PendingSignIn:
    """An OIDC sign-in waiting for the provider's answer."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str


def _session_row(row: ConsoleSession) -> SessionRow:
    return SessionRow(
        session_id=row.session_id,
        principal=row.principal,
        person_name=row.person_name,
        role=row.role,
        method=row.method,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def create_link(
    session: AsyncSession,
    *,
    keys: ConsoleKeys,
    name: str,
    role: str,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> tuple[str, str]:
    """Store a new link; returns its public id and its token (which only the URL holds)."""
    token = new_token()
    link_id = new_public_id("lnk")
    session.add(
        ConsoleSignInLink(
            token_hash=keys.link_hash(token),
            link_id=link_id,
            person_name=name,
            role=role,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.commit()
    return link_id, token


async def use_link(session: AsyncSession, *, keys: ConsoleKeys, token: str, now: dt.datetime) -> LinkUse:
    """Mark the link used if it is unused and unexpired (one statement: of two clicks, one wins); otherwise
    say why not. Commits."""
    digest = keys.link_hash(token)
    used = await session.execute(
        update(ConsoleSignInLink)
        .where(
            ConsoleSignInLink.token_hash == digest,
            ConsoleSignInLink.used_at.is_(None),
            ConsoleSignInLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(ConsoleSignInLink.link_id, ConsoleSignInLink.person_name, ConsoleSignInLink.role)
    )
    hit = used.first()
    await session.commit()
    if hit is not None:
        return LinkUse(hit.link_id, hit.person_name, hit.role, None)
    row = await session.scalar(select(ConsoleSignInLink).where(ConsoleSignInLink.token_hash == digest))
    if row is None:
        return LinkUse(None, None, None, LinkRefusal.UNKNOWN)
    refusal = LinkRefusal.USED if row.used_at is not None else LinkRefusal.EXPIRED
    return LinkUse(row.link_id, row.person_name, row.role, refusal)


async def save_pending(
    session: AsyncSession, *, keys: ConsoleKeys, browser_token: str, pending: PendingSignIn, now: dt.datetime
) -> None:
    """Keep an OIDC sign-in until its answer (ten minutes at most). Commits."""
    session.add(
        ConsolePendingSignIn(
            browser_hash=keys.session_hash(browser_token),
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
            return_to=pending.return_to,
            expires_at=now + PENDING_LIFETIME,
        )
    )
    await session.commit()


async def count_pending(session: AsyncSession) -> int:
    """How many OIDC sign-ins are waiting for their answer (purge the expired ones first)."""
    return int(await session.scalar(select(func.count()).select_from(ConsolePendingSignIn)) or 0)


async def take_pending(
    session: AsyncSession, *, keys: ConsoleKeys, browser_token: str, now: dt.datetime
) -> PendingSignIn | None:
    """The browser's pending sign-in, removed as it is read (an answer counts once); ``None`` if there is
    none or it expired. Commits."""
    taken = await session.execute(
        delete(ConsolePendingSignIn)
        .where(ConsolePendingSignIn.browser_hash == keys.session_hash(browser_token))
        .returning(
            ConsolePendingSignIn.state,
            ConsolePendingSignIn.nonce,
            ConsolePendingSignIn.code_verifier,
            ConsolePendingSignIn.return_to,
            ConsolePendingSignIn.expires_at,
        )
    )
    row = taken.first()
    await session.commit()
    if row is None or row.expires_at <= now:
        return None
    return PendingSignIn(row.state, row.nonce, row.code_verifier, row.return_to)


async def start_session(
    session: AsyncSession,
    *,
    keys: ConsoleKeys,
    principal: str,
    person_name: str,
    role: str,
    method: str,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> tuple[SessionRow, str]:
    """Store a new session; returns it and the cookie's token. Commits."""
    token = new_token()
    row = ConsoleSession(
        token_hash=keys.session_hash(token),
        session_id=new_public_id("ses"),
        principal=principal,
        person_name=person_name,
        role=role,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    await session.commit()
    return _session_row(row), token


async def find_session(
    session: AsyncSession, *, keys: ConsoleKeys, token: str, idle: dt.timedelta, now: dt.datetime
) -> SessionRow | None:
    """The live session of a cookie: ``None`` if unknown, idle too long or past its absolute end (such a row
    is deleted). Moves ``last_seen_at`` at most once a minute. Commits."""
    digest = keys.session_hash(token)
    row = await session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == digest))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == digest))
        await session.commit()
        return None
    found = _session_row(row)
    # at most once a minute, but at least twice per idle time (or a one-minute idle time ends busy sessions)
    if now - row.last_seen_at >= min(_TOUCH_EVERY, idle / 2):
        await session.execute(
            update(ConsoleSession).where(ConsoleSession.token_hash == digest).values(last_seen_at=now)
        )
        await session.commit()
    return found


async def end_session(session: AsyncSession, *, keys: ConsoleKeys, token: str) -> SessionRow | None:
    """Delete the cookie's session; returns what it was (``None``: there was none). Commits."""
    ended = await session.execute(
        delete(ConsoleSession)
        .where(ConsoleSession.token_hash == keys.session_hash(token))
        .returning(
            ConsoleSession.session_id,
            ConsoleSession.principal,
            ConsoleSession.person_name,
            ConsoleSession.role,
            ConsoleSession.method,
            ConsoleSession.created_at,
            ConsoleSession.expires_at,
        )
    )
    row = ended.first()
    await session.commit()
    if row is None:
        return None
    return SessionRow(*row)


async def purge_expired(session: AsyncSession, *, idle: dt.timedelta, now: dt.datetime) -> None:
    """Delete what can no longer be used: links a day after their expiry (used ones too), pending sign-ins
    and sessions. Commits."""
    await session.execute(
        delete(ConsoleSignInLink).where(ConsoleSignInLink.expires_at <= now - _EXPIRED_LINKS_KEPT)
    )
    await session.execute(delete(ConsolePendingSignIn).where(ConsolePendingSignIn.expires_at <= now))
    await session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - idle)
        )
    )
    await session.commit()
