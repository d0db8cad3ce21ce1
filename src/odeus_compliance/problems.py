"""Errors in their HTTP form, RFC 9457 problem details (``application/problem+json``).

Every error leaves the service as ``{"type", "title", "status", "detail", "instance", "request_id"}``;
Litestar's own errors (unknown route, wrong method, a request that fails validation) are converted too.

Why no echo: Litestar's validation messages quote the request path with its query string and msgspec's
messages can quote the rejected value; both may be personal data. Client errors that did not come from our
code are answered with a fixed detail, and validation errors list *where* the problem is (field name and
source) and *what is expected* there (:mod:`odeus_compliance.validation_messages`), never what was sent.
"""

from __future__ import annotations

import http
import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import ExceptionHandlersMap

from odeus_compliance.errors import AppError
from odeus_compliance.logging_setup import current_request_id, log_event
from odeus_compliance.validation_messages import allowed_values, field_problem

__all__ = ["PROBLEM_JSON", "exception_handlers", "problem_response"]

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_TYPE_PREFIX: Final = "urn:odeus-compliance:problem:"

_log = logging.getLogger(__name__)
_SAFE_KEY: Final = re.compile(r"[A-Za-z0-9_.\[\]-]{1,80}")
"""What a field key may look like to be repeated (a route's own names; anything else is ``body``)."""
_MISSING_PARAMETER: Final = re.compile(r"Missing required (\w+) parameter '([A-Za-z0-9_.-]{1,80})'")


def problem_response(
    *,
    status: int,
    code: str | None,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """Build a problem+json response; ``instance`` names this occurrence by its request id."""
    request_id = current_request_id()
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id is not None:
        body["instance"] = f"urn:uuid:{request_id}"
        body["request_id"] = request_id
    body.update({k: v for k, v in (extra or {}).items() if k not in body})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client used for a handler parameter (``from`` for ``first``), where it has an alias."""
    try:
        field = request.route_handler.parsed_fn_signature.parameters.get(key)
    except Exception:  # noqa: BLE001 - no route matched: the key is all there is
        return key
    kwarg = getattr(field, "kwarg_definition", None)
    for attribute in ("name", "query", "header", "cookie"):
        alias = getattr(kwarg, attribute, None)
        if isinstance(alias, str) and alias:
            return alias
    return key


def _annotation_of(request: Request[Any, Any, Any], key: str, source: str) -> tuple[Any, str]:
    """The handler's type that ``key`` (from ``source``) is checked against, and the path inside it."""
    try:
        parameters = request.route_handler.parsed_fn_signature.parameters
    except Exception:  # noqa: BLE001 - no route matched: no types to look at
        return None, key
    if source == "body":
        data = parameters.get("data")
        return (data.annotation if data is not None else None), ("" if key == "data" else key)
    for name, field in parameters.items():
        if key in {name, _field_name(request, name)}:
            return field.annotation, ""
    return None, key


def _safe_validation_errors(
    request: Request[Any, Any, Any], exc: ValidationException
) -> list[dict[str, str]]:
    """Each error as ``{key, source, message}``: the field as the client names it and what it must be."""
    if not isinstance(exc.extra, list):
        missing = _MISSING_PARAMETER.match(str(exc.detail))
        if missing is None:
            return []
        return [{"key": missing[2], "source": missing[1], "message": "is required"}]
    errors: list[dict[str, str]] = []
    for item in exc.extra:
        if not isinstance(item, Mapping):
            continue
        # Litestar gives a ParamType member as the source: its value is the word ("query")
        source = str(getattr(item.get("source"), "value", item.get("source") or "body"))
        raw_key = _field_name(request, str(item.get("key") or "data"))

        def allowed(key: str, source: str = source) -> list[str] | None:
            annotation, path = _annotation_of(request, key, source)
            return allowed_values(annotation, path) if annotation is not None else None

        key, message = field_problem(raw_key, str(item.get("message") or ""), allowed)
        errors.append(
            {
                "key": key if _SAFE_KEY.fullmatch(key) and key != "data" else "body",
                "source": source,
                "message": message,
            }
        )
    return errors


def _validation_detail(errors: list[dict[str, str]]) -> str:
    if not errors:
        return "The request does not match what this route accepts."
    return " ".join(f"'{e['key']}' {e['message']}." for e in errors)


def _app_error_handler(_request: Request[Any, Any, Any], exc: AppError) -> Response[dict[str, Any]]:
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
    )


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}}
    if isinstance(exc, ValidationException) or status == 400:
        if isinstance(exc, ValidationException):
            errors = _safe_validation_errors(request, exc)
        elif isinstance(exc.__cause__, SerializationException):  # the body did not decode
            errors = [{"key": "body", "source": "body", "message": "must be valid JSON"}]
        else:
            errors = []
        return problem_response(
            status=status,
            code="validation-failed",
            title="Request is not valid",
            detail=_validation_detail(errors),
            headers=headers,
            extra={"errors": errors},
        )
    if status >= 500:
        log_event(_log, logging.ERROR, "server_error", status=status, error_type=type(exc).__name__)
    return problem_response(
        status=status, code=None, title=_phrase(status), detail=_phrase(status), headers=headers
    )


def _is_undecodable_request(exc: Exception) -> bool:
    """A request body that is not UTF-8: msgspec raises ``UnicodeDecodeError`` (not a ``DecodeError``) and
    Litestar's body parsing lets it through. Only when it comes out of Litestar itself is it the client's
    fault; the same error from our own code is a bug (500)."""
    if not isinstance(exc, UnicodeDecodeError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "/litestar/" in frames[-1].filename.replace("\\", "/")


def _unhandled_handler(_request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if _is_undecodable_request(exc):
        return problem_response(
            status=400,
            code="validation-failed",
            title="Request is not valid",
            detail="The request body is not valid UTF-8.",
            extra={"errors": [{"key": "body", "source": "body", "message": "not valid UTF-8"}]},
        )
    # logged with its frames but without its message (see logging_setup)
    _log.error("unhandled_error", exc_info=exc, extra={"oc_fields": {"error_type": type(exc).__name__}})
    return problem_response(
        status=500,
        code="internal-error",
        title="Internal server error",
        detail="The server failed to handle the request; quote the request id when reporting it.",
    )


def exception_handlers() -> ExceptionHandlersMap:
    """The handlers ``create_app`` installs: our errors, Litestar's HTTP errors, anything else (500)."""
    return {
        AppError: _app_error_handler,
        HTTPException: _http_exception_handler,
        Exception: _unhandled_handler,
    }
