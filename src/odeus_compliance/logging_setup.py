"""Structured logging: JSON lines on stderr, each with the request id of the request that caused it.

Why allow-listed fields: logs leave the process (journald, a log shipper) and are read by people who are not
allowed to see usage data. Our code logs an *event name* plus keyword fields through :func:`log_event`; any
field whose name is not in :data:`ALLOWED_FIELDS` is dropped, so a careless call cannot ship a user's name.
Foreign loggers (uvicorn, SQLAlchemy, alembic) keep their message with every quoted part replaced by
``<redacted>`` (reprs of values, of exceptions and of statement parameters are quoted), and an exception is
rendered as its type and stack frames only: exception messages can quote data (a failed INSERT repeats its
parameters). The database drivers log every statement with its parameters at DEBUG, so they are held at
WARNING whatever the configured level. Our own records show their event name only if it looks like one
(a fixed name, not a sentence built from data).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import traceback
from typing import Any, Final

__all__ = [
    "ALLOWED_FIELDS",
    "JsonFormatter",
    "configure_logging",
    "current_request_id",
    "log_event",
    "request_id_var",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("odeus_request_id", default=None)
"""The id of the request being served in this task (set by the request-log middleware)."""

ALLOWED_FIELDS: Final = frozenset(
    {
        "method",
        "route",
        "status",
        "duration_ms",
        "key_id",
        "role",
        "error_type",
        "revision",
        "expected_revision",
        "database",
        "host",
        "port",
        "job_id",
        "report_id",
        "schedule",
        "period",
        "policy",
        "count",
        "seq",
        "reason",
        "channel",
    }
)
"""Field names our log calls may carry. Add a name here only for values that are never personal data."""

_OWN_PREFIX: Final = "odeus_compliance"
_FIELDS_ATTR: Final = "oc_fields"
_EVENT_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_. -]{0,79}")
_QUOTED: Final = re.compile(r"'[^']*'|\"[^\"]*\"")
QUIET_LOGGERS: Final = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "httpx",
    "httpcore",
    "multipart",
    "python_multipart",
)
"""Foreign loggers held at WARNING: below it they print statement parameters, request URLs or form fields."""


def current_request_id() -> str | None:
    """The request id of the request being served, if any."""
    return request_id_var.get()


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log ``event`` (a fixed snake_case name, never built from data) with allow-listed fields."""
    if not logger.isEnabledFor(level):
        return
    safe = {k: v for k, v in fields.items() if k in ALLOWED_FIELDS}
    logger.log(level, event, extra={_FIELDS_ATTR: safe}, stacklevel=2)


def _frames_only(exc_info: Any) -> dict[str, Any]:
    """An exception as type and frames, without its message (which may quote personal data)."""
    exc_type, _exc, tb = exc_info
    frames = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]
    return {"error_type": getattr(exc_type, "__qualname__", str(exc_type)), "frames": frames[-15:]}


def _foreign_message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format call must not lose the record (or show its args)
        return str(record.msg)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event/message, request_id and safe fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; our own records carry only the event name and allow-listed fields."""
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name.startswith(_OWN_PREFIX):
            # the format string itself is the event name; arguments are never interpolated, and a message
            # that is not a plain name (an f-string with data in it) is not shown at all
            event = str(record.msg)
            out["event"] = event if _EVENT_NAME.fullmatch(event) else "unnamed_event"
            fields = getattr(record, _FIELDS_ATTR, None)
            if isinstance(fields, dict):
                out.update({k: v for k, v in fields.items() if k in ALLOWED_FIELDS})
        else:
            out["message"] = _QUOTED.sub("<redacted>", _foreign_message(record))
        if (request_id := request_id_var.get()) is not None:
            out["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            out.update(_frames_only(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Send every logger to one JSON handler on stderr; silence uvicorn's access log and httpx's URLs.

    uvicorn's access log prints the raw path with its query string (which may hold personal data) and the
    client address; our request-log middleware writes a safe line instead.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in QUIET_LOGGERS:
        # httpx logs every request URL at INFO (upstream query strings, signed download URLs that are bearer
        # credentials); aiosqlite, asyncpg and SQLAlchemy's engine log statements with their parameters
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
