"""What the console needs at run time, built once per app by ``create_app``: templates, MAC keys, the
database sessions, the identity provider's client and the cookie rules derived from the settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import httpx
from litestar import Litestar
from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.console.oidc import OidcClient
from odeus_compliance.console.recent_reads import RecentReads
from odeus_compliance.console.templating import ConsoleTemplates
from odeus_compliance.console.tokens import ConsoleKeys
from odeus_compliance.errors import ServiceUnavailable
from odeus_compliance.settings import Settings
from odeus_compliance.state_keys import CONSOLE_KEY, SESSIONS_KEY

__all__ = ["SIGN_IN_COOKIE", "ConsoleRuntime", "console_lifespan", "console_of"]

SIGN_IN_COOKIE: Final = "odeus_console_sign_in"
"""Binds an OIDC sign-in to the browser that started it (SameSite=Lax: it must come back from the IdP)."""


@dataclasses.dataclass(slots=True)
class ConsoleRuntime:
    """The console's parts; ``oidc`` is ``None`` without an identity provider configured."""

    settings: Settings
    templates: ConsoleTemplates
    keys: ConsoleKeys
    sessions: async_sessionmaker[AsyncSession]
    oidc: OidcClient | None
    http: httpx.AsyncClient | None
    recent_reads: RecentReads

    @classmethod
    def build(cls, settings: Settings, *, sessions: async_sessionmaker[AsyncSession]) -> ConsoleRuntime:
        """The console for ``settings`` (an HTTP client only when an identity provider is configured)."""
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False) if settings.oidc else None
        oidc = OidcClient(settings.oidc, http=http) if settings.oidc and http else None
        return cls(
            settings=settings,
            templates=ConsoleTemplates(),
            keys=ConsoleKeys(settings.require_master_key()),
            sessions=sessions,
            oidc=oidc,
            http=http,
            recent_reads=RecentReads(),
        )

    async def close(self) -> None:
        """Close the identity provider's connections."""
        if self.http is not None:
            await self.http.aclose()

    @property
    def secure_cookies(self) -> bool:
        """Cookies are ``Secure`` whenever the public URL is https."""
        return (self.settings.public_url or "").startswith("https://")

    @property
    def session_cookie(self) -> str:
        """The session cookie's name: ``__Host-`` prefixed (host-only, path /, Secure) over https."""
        return "__Host-odeus_console" if self.secure_cookies else "odeus_console"

    @property
    def sign_in_cookie(self) -> str:
        """The OIDC sign-in cookie's name: ``__Secure-`` prefixed over https, so no plain-http answer (or
        script of another subdomain) can plant one and tie this browser to someone else's sign-in."""
        return f"__Secure-{SIGN_IN_COOKIE}" if self.secure_cookies else SIGN_IN_COOKIE

    @property
    def idle(self) -> dt.timedelta:
        """The idle timeout."""
        return dt.timedelta(minutes=self.settings.console_idle_minutes)

    @property
    def lifetime(self) -> dt.timedelta:
        """The absolute timeout."""
        return dt.timedelta(hours=self.settings.console_session_hours)

    def base_url(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The service's address as browsers reach it: the public URL, else the request's own."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return str(connection.base_url).rstrip("/")


def console_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan part that builds the console (after the database part: it takes its sessions)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        console = ConsoleRuntime.build(settings, sessions=app.state[SESSIONS_KEY])
        app.state[CONSOLE_KEY] = console
        try:
            yield
        finally:
            await console.close()

    return lifespan


def console_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleRuntime:
    """The app's console (built by the lifespan); 503 before it is."""
    runtime = connection.app.state.get(CONSOLE_KEY)
    if not isinstance(runtime, ConsoleRuntime):
        raise ServiceUnavailable("The console is not ready yet.")
    return runtime
