"""Bounds on what a request body may hold before any route decodes it: size and JSON nesting depth.

msgspec decodes nested JSON recursively: a body of a few thousand ``[`` ends in a ``RecursionError`` (a 500)
before any schema is looked at, and an ``Any`` field would pass a deep value on to code that recurses too.
Our bodies are flat objects, so the app refuses, for every route that decodes a body (``data``), one nested
deeper than :data:`MAX_JSON_DEPTH` with a 400 naming the body; and no body may exceed
:data:`MAX_BODY_BYTES` unless its route says otherwise (the PDF upload), a 413.
"""

from __future__ import annotations

import re
from typing import Any, Final

from litestar import Request

from odeus_compliance.errors import ValidationFailed

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "bound_json_body", "json_too_deep"]

MAX_JSON_DEPTH: Final = 32
"""The deepest nesting of arrays and objects a request body may have."""
MAX_BODY_BYTES: Final = 1024 * 1024
"""The largest request body of a route that does not set its own limit."""
_TOKENS: Final = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)  # an escape pair, a quote or a bracket


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays and objects deeper than ``limit`` (brackets in strings do not count).

    Not a parser: invalid JSON is left to the decoder. Linear; a body with few brackets is not scanned."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) == 2:  # an escape pair
            continue
        elif token in {b"[", b"{"}:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


async def bound_json_body(request: Request[Any, Any, Any]) -> None:
    """The app's ``before_request``: refuse a too deeply nested body of a route that decodes one (after the
    guards: only an authorised caller's body is read)."""
    if "data" not in request.route_handler.parsed_fn_signature.parameters:
        return
    if json_too_deep(await request.body()):
        message = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise ValidationFailed(
            f"The request body is {message}.",
            extra={"errors": [{"key": "body", "source": "body", "message": message}]},
        )
