"""The audited console actions, one function each: make a one-time sign-in link (``console.link_created``),
sign in with a link or through the identity provider (``console.sign_in``, outcome ``failure`` for a refused
sign-in) and sign out (``console.sign_out``). The command line, the demo and the pages call these.

A sign-in is recorded with the person as the actor (their name at the time and their role); a refused one
with the person the link was made for when the link is known. A refusal that names nobody (an unknown link)
is left to the caller (:class:`SignInRefused` ``anonymous``): anyone can send those, so the pages count them
as bounded ``access.denied`` records like any refused request, rather than writing one record each. Nothing
is usable without its record: a session or link whose record cannot be written is deleted and the error
propagates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.appender import ANONYMOUS, Actor
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, ActorRole, DetailValue, Outcome
from odeus_compliance.console import store
from odeus_compliance.console.identity import actor_id
from odeus_compliance.console.tokens import TOKEN_SHAPE, ConsoleKeys
from odeus_compliance.db.console_tables import ConsoleSignInLink
from odeus_compliance.errors import AppError

__all__ = [
    "NewSession",
    "SignInRefused",
    "VerifiedPerson",
    "make_sign_in_link",
    "sign_in_with_link",
    "sign_in_with_oidc",
    "sign_out",
]

_SESSION_RESOURCE = "console:session"


class SignInRefused(AppError):
    """A sign-in that did not sign anyone in; ``reason`` is the audit record's ``error_code``."""

    status = 403
    code = "sign-in-refused"
    title = "Sign-in refused"

    def __init__(self, reason: str, detail: str, *, anonymous: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.anonymous = anonymous  # nobody named: not recorded here (the caller counts a refused request)


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedPerson:
    """Who the identity provider vouched for: principal ``oidc:<hash>``, name and mapped role."""

    principal: str
    name: str
    role: str


@dataclasses.dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started and the token for its cookie."""

    row: store.SessionRow
    token: str


def _person(principal: str, name: str, role: str) -> Actor:
    return Actor(actor_id(principal), name, ActorRole(role))


async def make_sign_in_link(
    recorder: Recorder,
    *,
    session: AsyncSession,
    keys: ConsoleKeys,
    name: str,
    role: str,
    minutes: int,
    now: dt.datetime,
) -> tuple[str, str]:
    """Make a one-time link for ``name`` with ``role``, valid for ``minutes``, and record it; returns its id
    and token (the caller builds the URL ``/console/sign-in/<token>``). The record holds neither the token
    nor the name."""
    link_id, token = await store.create_link(
        session, keys=keys, name=name, role=role, lifetime=dt.timedelta(minutes=minutes), now=now
    )
    try:
        await recorder.record(
            action=Action.CONSOLE_LINK_CREATED,
            resource=f"console:link/{link_id}",
            details={"link_id": link_id, "role": role},
        )
    except BaseException:
        await session.execute(delete(ConsoleSignInLink).where(ConsoleSignInLink.link_id == link_id))
        await session.commit()
        raise
    return link_id, token


async def _start(
    recorder: Recorder,
    *,
    session: AsyncSession,
    keys: ConsoleKeys,
    principal: str,
    name: str,
    role: str,
    method: str,
    lifetime: dt.timedelta,
    now: dt.datetime,
    extra: dict[str, DetailValue],
) -> NewSession:
    row, token = await store.start_session(
        session,
        keys=keys,
        principal=principal,
        person_name=name,
        role=role,
        method=method,
        lifetime=lifetime,
        now=now,
    )
    person = dataclasses.replace(recorder, actor=_person(principal, name, role))
    try:
        await person.record(
            action=Action.CONSOLE_SIGN_IN,
            resource=_SESSION_RESOURCE,
            details={"sign_in": method, "session_id": row.session_id, "role": role, **extra},
        )
    except BaseException:
        await store.end_session(session, keys=keys, token=token)
        raise
    return NewSession(row, token)


async def refuse_sign_in(
    recorder: Recorder, *, method: str, reason: str, actor: Actor = ANONYMOUS, link_id: str | None = None
) -> None:
    """Record a refused sign-in (outcome ``failure``, ``error_code`` the reason)."""
    details: dict[str, DetailValue] = {"sign_in": method, "error_code": reason}
    if link_id is not None:
        details["link_id"] = link_id
    await dataclasses.replace(recorder, actor=actor).record(
        action=Action.CONSOLE_SIGN_IN, resource=_SESSION_RESOURCE, outcome=Outcome.FAILURE, details=details
    )


async def sign_in_with_link(
    recorder: Recorder,
    *,
    session: AsyncSession,
    keys: ConsoleKeys,
    token: str,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> NewSession:
    """Use a one-time link: a session for its person, or :class:`SignInRefused` when the link is used or
    expired (recorded, naming the person it was for) or unknown (``anonymous``, not recorded here)."""
    use = (
        await store.use_link(session, keys=keys, token=token, now=now)
        if TOKEN_SHAPE.fullmatch(token)
        else store.LinkUse(None, None, None, store.LinkRefusal.UNKNOWN)
    )
    if use.refusal is not None or use.link_id is None or use.person_name is None or use.role is None:
        reason = (use.refusal or store.LinkRefusal.UNKNOWN).value
        detail = "This sign-in link is not valid: it was used already, has expired or is unknown."
        if use.link_id is None or use.person_name is None or use.role is None:
            raise SignInRefused(reason, detail, anonymous=True)
        actor = _person(f"link:{use.link_id}", use.person_name, use.role)
        await refuse_sign_in(recorder, method="link", reason=reason, actor=actor, link_id=use.link_id)
        raise SignInRefused(reason, detail)
    return await _start(
        recorder,
        session=session,
        keys=keys,
        principal=f"link:{use.link_id}",
        name=use.person_name,
        role=use.role,
        method="link",
        lifetime=lifetime,
        now=now,
        extra={"link_id": use.link_id},
    )


async def sign_in_with_oidc(
    recorder: Recorder,
    *,
    session: AsyncSession,
    keys: ConsoleKeys,
    person: VerifiedPerson,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> NewSession:
    """Start a session for a person the identity provider vouched for (see :mod:`.oidc`)."""
    return await _start(
        recorder,
        session=session,
        keys=keys,
        principal=person.principal,
        name=person.name,
        role=person.role,
        method="oidc",
        lifetime=lifetime,
        now=now,
        extra={},
    )


async def sign_out(recorder: Recorder, *, session: AsyncSession, keys: ConsoleKeys, token: str) -> None:
    """End the cookie's session and record it (nothing to record when there was none)."""
    ended = await store.end_session(session, keys=keys, token=token)
    if ended is None:
        return
    person = dataclasses.replace(recorder, actor=_person(ended.principal, ended.person_name, ended.role))
    await person.record(
        action=Action.CONSOLE_SIGN_OUT,
        resource=_SESSION_RESOURCE,
        details={"sign_in": ended.method, "session_id": ended.session_id, "role": ended.role},
    )
