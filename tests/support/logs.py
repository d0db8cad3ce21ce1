"""Capture the service's JSON log lines (as ``serve`` configures them) and give pytest's handlers back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from odeus_compliance.logging_setup import configure_logging

__all__ = ["captured_json_logs", "parse_lines"]


@contextmanager
def captured_json_logs(level: str = "INFO") -> Iterator[io.StringIO]:
    """Every log record as a JSON line in a buffer while the block runs."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = [*logging.root.manager.loggerDict, "aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore"]
    levels = {name: logging.getLogger(name).level for name in names}
    access = logging.getLogger("uvicorn.access")
    buffer = io.StringIO()
    configure_logging(level, stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)
        access.disabled = False
        access.propagate = True


def parse_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The captured lines, each parsed (every line must be one JSON object)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]
