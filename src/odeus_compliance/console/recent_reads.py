"""Which session read which page lately, so a page's own htmx refresh is not recorded every 2 seconds.

Any client can send ``HX-Request: true``: the header alone must not skip the record the API writes for the
same read. A refresh is left unrecorded only when the same session's read of the same resource was recorded
(or refreshed) within the window; anything else is recorded like a page view. Kept in memory: on another
replica, or after a restart, a refresh is simply recorded once more. The console's runtime holds one
(``create_app`` builds it); ``web.is_quiet_refresh`` and ``web.note_read`` use it for a request.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Final

__all__ = ["RecentReads"]

_WINDOW: Final = dt.timedelta(minutes=2)
_LIMIT: Final = 10_000


class RecentReads:
    """(session, resource) -> when it was last read; the oldest are dropped beyond ``limit``."""

    def __init__(self, *, window: dt.timedelta = _WINDOW, limit: int = _LIMIT) -> None:
        self._window = window
        self._limit = limit
        self._seen: OrderedDict[tuple[str, str], dt.datetime] = OrderedDict()

    def is_fresh(self, session_id: str, resource: str, now: dt.datetime) -> bool:
        """Whether the session read ``resource`` (recorded) within the window."""
        last = self._seen.get((session_id, resource))
        return last is not None and now - last < self._window

    def mark(self, session_id: str, resource: str, now: dt.datetime) -> None:
        """The session has read ``resource`` now (call after its record is written, or it was fresh)."""
        key = (session_id, resource)
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
