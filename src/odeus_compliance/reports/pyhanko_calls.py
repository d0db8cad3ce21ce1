"""Calling pyHanko's synchronous API from anywhere: outside any running event loop, its log kept off stderr.

- pyHanko's sync wrappers call ``asyncio.run``, which refuses to start inside a running loop. Async callers
  should run signing and verification in a worker thread (``asyncio.to_thread``) so the loop stays free;
  should one call them directly anyway, :func:`call_pyhanko` moves the call to a one-off thread instead of
  failing (correct, but that loop waits for it: tens of milliseconds).
- pyHanko logs a failed certificate path as a WARNING with a traceback. In the CLI no handler of ours is
  installed, so Python's last-resort handler would print that traceback on stderr (the CLI promises one
  line, never a traceback). A ``NullHandler`` on pyHanko's loggers stops that; their records still reach
  the service's JSON handler through the root logger when one is configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["call_pyhanko"]

T = TypeVar("T")
_LOGGERS = ("pyhanko", "pyhanko_certvalidator")


def _keep_off_last_resort() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def call_pyhanko(function: Callable[[], T]) -> T:
    """``function()``, in a one-off thread if this thread runs an event loop."""
    _keep_off_last_resort()
    if not _in_running_loop():
        return function()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(function).result()
