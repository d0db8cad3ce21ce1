"""Structured logging: JSON lines on stderr, each with the request id of the request that caused it.

Why allow-listed fields: logs leave the process (journald, a log shipper) and are read by people who are not
allowed to see usage data. Our code logs an *event name* plus keyword fields through :func:`log_event`; any
field whose name is not in :data:`ALLOWED_FIELDS` is dropped, so a careless call cannot ship a user's name.
Foreign loggers (uvicorn, SQLAlchemy, alembic) keep their message, but an exception is rendered as its type
and stack frames only: exception messages can quote data (a failed INSERT repeats its parameters).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
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
    }
)
"""Field names our log calls may carry. Add a name here only for values that are never personal data."""

_OWN_PREFIX: Final = "odeus_compliance"
_FIELDS_ATTR: Final = "oc_fields"


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
            # the format string itself is the event name; arguments are never interpolated
            out["event"] = str(record.msg)
            fields = getattr(record, _FIELDS_ATTR, None)
            if isinstance(fields, dict):
                out.update({k: v for k, v in fields.items() if k in ALLOWED_FIELDS})
        else:
            out["message"] = record.getMessage()
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
    for name in ("httpx", "httpcore"):
        # httpx logs every request URL at INFO: upstream query strings and signed download URLs (bearer
        # credentials) must not reach the log
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
