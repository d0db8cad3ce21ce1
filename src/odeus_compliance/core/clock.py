"""The one real clock: aware UTC time. Code that decides by time takes a :data:`Clock` to be testable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], dt.datetime]
"""Returns the current instant, aware, in UTC."""


def utcnow() -> dt.datetime:
    """Now, aware, in UTC."""
    return dt.datetime.now(dt.UTC)
