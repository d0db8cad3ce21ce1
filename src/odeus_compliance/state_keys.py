"""Names of the values the app's lifespan puts into ``app.state`` (one place, so no typo goes unnoticed)."""

from __future__ import annotations

from typing import Final

__all__ = ["ENGINE_KEY", "SESSIONS_KEY", "SETTINGS_KEY"]

SETTINGS_KEY: Final = "settings"
"""The :class:`~odeus_compliance.settings.Settings` the app was built with."""
ENGINE_KEY: Final = "db_engine"
"""The app's :class:`~sqlalchemy.ext.asyncio.AsyncEngine` (lifespan-owned)."""
SESSIONS_KEY: Final = "db_sessions"
"""The app's ``async_sessionmaker`` (lifespan-owned)."""
