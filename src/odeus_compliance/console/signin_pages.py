"""Sign-in and sign-out pages: one-time links, the identity provider (OIDC with PKCE), and sign-out.

After a sign-in the browser gets a small page that moves on to the console by a meta refresh rather than a
redirect: the session cookie is ``SameSite=Strict``, and a browser does not send such a cookie on a redirect
chain that began at another site (the identity provider), so a redirect would land signed out.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Final

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, QueryParameter

from odeus_compliance.audit.recording import record_denial, recorder_of
from odeus_compliance.console import actions, store
from odeus_compliance.console.auth import session_token
from odeus_compliance.console.navigation import home_of
from odeus_compliance.console.oidc import OidcFailure, new_pending
from odeus_compliance.console.routing import ANY_PERSON, console_page, console_public, safe_return_path
from odeus_compliance.console.runtime import ConsoleRuntime, console_of
from odeus_compliance.console.tokens import TOKEN_SHAPE, new_token
from odeus_compliance.console.web import page
from odeus_compliance.core.clock import utcnow
from odeus_compliance.errors import NotFound, ServiceUnavailable
from odeus_compliance.logging_setup import log_event
from odeus_compliance.security import Role

__all__ = ["oidc_callback", "oidc_start", "sign_in_page", "sign_in_with_link", "sign_out"]

_CALLBACK: Final = "/console/sign-in/oidc/callback"
MAX_PENDING_SIGN_INS: Final = 10_000
"""OIDC sign-ins that may wait for the provider's answer at once (each is kept at most ten minutes)."""
_RETRY_AFTER_SECONDS: Final = 60
_log = logging.getLogger(__name__)
_OIDC_COOKIE_PATH: Final = "/console/sign-in/oidc"
_Next = Annotated[str | None, QueryParameter(name="next", required=False, max_length=200)]


def _session_cookie(console: ConsoleRuntime, token: str | None) -> Cookie:
    return Cookie(
        key=console.session_cookie,
        value=token or "",
        path="/",
        httponly=True,
        secure=console.secure_cookies,
        samesite="strict",
        max_age=int(console.lifetime.total_seconds()) if token else 0,
    )


async def _signed_in(
    request: Request[Any, Any, Any], new: actions.NewSession, return_to: str
) -> Response[str]:
    console = console_of(request)
    previous = session_token(request)
    if previous is not None:  # the browser's session before this sign-in ends (its cookie is replaced)
        async with console.sessions() as session:
            await actions.sign_out(recorder_of(request), session=session, keys=console.keys, token=previous)
    target = return_to if return_to != "/console/" else home_of(Role(new.row.role))
    response = page(request, "signed_in.html", title="Signed in", target=target, person=new.row.person_name)
    response.cookies.append(_session_cookie(console, new.token))
    return response


@get("/console/sign-in", opt=console_public(), include_in_schema=False)
async def sign_in_page(request: Request[Any, Any, Any], next_path: _Next = None) -> Response[str]:
    """How to sign in: the identity provider's button (when configured) or a one-time link."""
    console = console_of(request)
    return page(
        request,
        "sign_in.html",
        title="Sign in",
        oidc=console.oidc is not None,
        next_path=safe_return_path(next_path),
        signed_out=request.query_params.get("signed_out") == "1",
    )


@get("/console/sign-in/{token:str}", opt=console_public(), include_in_schema=False)
async def sign_in_with_link(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """Use a one-time sign-in link: it works once, until it expires."""
    console = console_of(request)
    try:
        async with console.sessions() as session:
            await store.purge_expired(session, idle=console.idle, now=utcnow())
            new = await actions.sign_in_with_link(
                recorder_of(request),
                session=session,
                keys=console.keys,
                token=token,
                lifetime=console.lifetime,
                now=utcnow(),
            )
    except actions.SignInRefused as refusal:
        if refusal.anonymous:
            await record_denial(request, 403, refusal.reason)
        raise
    return await _signed_in(request, new, "/console/")


@get(_OIDC_COOKIE_PATH, opt=console_public(), include_in_schema=False)
async def oidc_start(request: Request[Any, Any, Any], next_path: _Next = None) -> Response[str]:
    """Send the browser to the identity provider, with state, nonce and a PKCE challenge kept here."""
    console = console_of(request)
    if console.oidc is None:
        raise NotFound("Sign-in with an identity provider is not configured here.")
    pending = new_pending(safe_return_path(next_path))
    try:
        target = await console.oidc.authorization_url(
            pending, redirect_uri=console.base_url(request) + _CALLBACK
        )
    except OidcFailure as failure:
        # an outage, not an access attempt: said in the log (no audit record per click), answered 503
        log_event(_log, logging.WARNING, "oidc_provider_unavailable", error_code=failure.code)
        raise ServiceUnavailable(
            "The identity provider cannot be reached; try again later.",
            headers={"Retry-After": str(_RETRY_AFTER_SECONDS)},
        ) from None
    browser = new_token()
    async with console.sessions() as session:
        await store.purge_expired(session, idle=console.idle, now=utcnow())
        if await store.count_pending(session) >= MAX_PENDING_SIGN_INS:
            # each start stores a row for ten minutes: a flood of starts must not fill the database
            raise ServiceUnavailable(
                "Too many sign-ins are in progress; try again in a minute.",
                headers={"Retry-After": str(_RETRY_AFTER_SECONDS)},
            )
        await store.save_pending(
            session, keys=console.keys, browser_token=browser, pending=pending, now=utcnow()
        )
    cookie = Cookie(
        key=console.sign_in_cookie,
        value=browser,
        path=_OIDC_COOKIE_PATH,
        httponly=True,
        secure=console.secure_cookies,
        samesite="lax",  # it must come back with the provider's redirect
        max_age=int(store.PENDING_LIFETIME.total_seconds()),
    )
    return Response("", status_code=303, headers={"Location": target}, cookies=[cookie])


@get(_CALLBACK, opt=console_public(), include_in_schema=False)
async def oidc_callback(
    request: Request[Any, Any, Any],
    code: Annotated[str | None, QueryParameter(name="code", required=False, max_length=4096)] = None,
    given_state: Annotated[str | None, QueryParameter(name="state", required=False, max_length=256)] = None,
    error: Annotated[str | None, QueryParameter(name="error", required=False, max_length=256)] = None,
) -> Response[str]:
    """The identity provider's answer: the code is redeemed only for the browser and state that asked."""
    console = console_of(request)
    recorder = recorder_of(request)
    if console.oidc is None:
        raise NotFound("Sign-in with an identity provider is not configured here.")
    browser = request.cookies.get(console.sign_in_cookie)
    pending = None
    if browser is not None and TOKEN_SHAPE.fullmatch(browser):
        async with console.sessions() as session:
            pending = await store.take_pending(
                session, keys=console.keys, browser_token=browser, now=utcnow()
            )
    reason = None
    # compared as bytes: compare_digest raises TypeError for a str that is not ASCII
    if (
        pending is None
        or given_state is None
        or not secrets.compare_digest(pending.state.encode(), given_state.encode("utf-8", "surrogatepass"))
    ):
        reason = "sign_in_not_started"
    elif error is not None or code is None:
        reason = "provider_denied"
    if reason is not None or pending is None or code is None:
        # nobody is named yet, and anyone can send this: a refused request, counted and bounded
        await record_denial(request, 403, reason or "provider_denied")
        raise actions.SignInRefused(
            reason or "provider_denied",
            "The sign-in could not be completed (it was cancelled, took too long or was not started here). "
            "Start again from the sign-in page.",
        )
    try:
        person = await console.oidc.redeem(
            code=code, pending=pending, redirect_uri=console.base_url(request) + _CALLBACK
        )
    except OidcFailure as failure:
        if failure.code == "no_console_role":  # a person the provider vouched for
            await actions.refuse_sign_in(recorder, method="oidc", reason=failure.code)
        else:
            await record_denial(request, 403, failure.code)
        detail = (
            "Your account has no role in this console: ask an administrator to add you to one of its groups."
            if failure.code == "no_console_role"
            else "The identity provider's answer could not be used; start again from the sign-in page."
        )
        raise actions.SignInRefused(failure.code, detail) from None
    async with console.sessions() as session:
        new = await actions.sign_in_with_oidc(
            recorder,
            session=session,
            keys=console.keys,
            person=person,
            lifetime=console.lifetime,
            now=utcnow(),
        )
    response = await _signed_in(request, new, pending.return_to)
    response.cookies.append(
        Cookie(
            key=console.sign_in_cookie,
            value="",
            path=_OIDC_COOKIE_PATH,
            max_age=0,
            httponly=True,
            secure=console.secure_cookies,
        )
    )
    return response


@post("/console/sign-out", opt=console_page(*ANY_PERSON), include_in_schema=False, status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[str]:
    """End the session (recorded) and clear its cookie."""
    console = console_of(request)
    token = session_token(request)
    if token is not None:
        async with console.sessions() as session:
            await actions.sign_out(recorder_of(request), session=session, keys=console.keys, token=token)
    return Response(
        "",
        status_code=303,
        headers={"Location": "/console/sign-in?signed_out=1"},
        cookies=[_session_cookie(console, None)],
    )
