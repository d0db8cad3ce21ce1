"""A named background task of a service part (a ticker, a flusher): started with the app, cancelled and
awaited when it stops, so no task outlives the app that owns it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTask"]


class BackgroundTask:
    """At most one running task under ``name``."""

    __slots__ = ("_name", "_task")

    def __init__(self, name: str) -> None:
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background."""
        self._task = asyncio.create_task(work, name=self._name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (nothing to do when it never started)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
