"""The problem documents in the OpenAPI document: their one schema, and each route's error responses.

Every error leaves the service as an RFC 9457 problem document (:mod:`odeus_compliance.problems` builds it);
:class:`ProblemDetails` describes that document once, and :func:`problem_responses` builds a route's
``responses=`` from the statuses the route really answers with, so a generated client parses every error
into one typed model. The statuses that come from authentication follow from the route's ``opt`` (its
declared roles), so they cannot drift from what the guard does::

    @get("/api/v1/reports/{id}", opt=READERS, responses=problem_responses(READERS, 404))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPIFormat,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.problems import PROBLEM_JSON, PROBLEM_TYPE_PREFIX
from odeus_compliance.security import PUBLIC_OPT, ROLES_OPT, Role

__all__ = [
    "FieldProblem",
    "ProblemDetails",
    "ProblemDocuments",
    "ProblemOperation",
    "problem_responses",
]


class FieldProblem(msgspec.Struct, frozen=True):
    """One part of a request that is not valid: where it is and what it must be, never what was sent."""

    key: Annotated[
        str,
        msgspec.Meta(
            description="The field or parameter as the client names it (`month`, `from.date`, `purpose`), "
            "or `body` for the body as a whole.",
            examples=["month"],
        ),
    ]
    source: Annotated[
        str,
        msgspec.Meta(description="Where it was: `body`, `query`, `path` or `header`.", examples=["body"]),
    ]
    message: Annotated[
        str,
        msgspec.Meta(
            description="What is expected of it (a rule, never the value sent).",
            examples=["must match the pattern ^[0-9]{4}-(0[1-9]|1[0-2])$"],
        ),
    ]


class ProblemDetails(msgspec.Struct, frozen=True):
    """An RFC 9457 problem document (`application/problem+json`): what every error of this API looks like.

    Routes may add extension members: `check` (`/health/ready`: the check that failed), `reason`
    (`verifyReport`'s 422: the limit the file hit). Nothing in a problem repeats a value the request sent."""

    type: Annotated[
        str,
        msgspec.Meta(
            description=f"The kind of problem: `{PROBLEM_TYPE_PREFIX}<code>` (`validation-failed`, "
            "`not-authenticated`, `permission-denied`, `not-found`, `conflict`, `payload-too-large`, "
            "`too-many-requests`, `service-unavailable`, ...), or `about:blank` where the status says all.",
            examples=[f"{PROBLEM_TYPE_PREFIX}not-found"],
        ),
    ]
    title: Annotated[str, msgspec.Meta(description="A short summary of the kind.", examples=["Not found"])]
    status: Annotated[int, msgspec.Meta(description="The HTTP status code.", examples=[404])]
    detail: Annotated[
        str,
        msgspec.Meta(
            description="What went wrong this time, written for the client (no personal data).",
            examples=["There is no report with that id."],
        ),
    ]
    instance: Annotated[
        str | None,
        msgspec.Meta(
            description="This occurrence: `urn:uuid:<request_id>`.",
            examples=["urn:uuid:0b7f4a52-8d2c-4c3e-9a55-3e1c2f0f6d11"],
        ),
    ] = None
    request_id: Annotated[
        str | None,
        msgspec.Meta(
            description="The request's id (also sent as `X-Request-ID`); quote it when reporting a problem.",
            examples=["0b7f4a52-8d2c-4c3e-9a55-3e1c2f0f6d11"],
        ),
    ] = None
    errors: Annotated[
        list[FieldProblem] | None,
        msgspec.Meta(
            description="On a 400 (`validation-failed`): each part of the request that is not valid, with "
            "what it must be."
        ),
    ] = None


_WHY: Final[Mapping[int, str]] = {
    400: "The request is not valid: `errors` names each field and what it must be (never the value sent).",
    401: "No API key, or one that is unknown or revoked (`WWW-Authenticate: Bearer`).",
    403: "The key's role may not do this.",
    404: "Not found.",
    409: "The request conflicts with the current state.",
    413: "The request body is larger than this operation accepts.",
    422: "The request is well-formed but cannot be processed.",
    429: "This client was refused (401, 403) too often in the current window: wait `Retry-After` seconds. "
    "A request with a valid key for this operation is still served.",
    503: "Not available right now and nothing was done: the database or the audit log could not be reached "
    "(every refusal and every access is recorded first); retry later (after `Retry-After` seconds where "
    "given).",
}
_CODES: Final[Mapping[int, tuple[str, str]]] = {
    400: ("validation-failed", "Request is not valid"),
    401: ("not-authenticated", "Not authenticated"),
    403: ("permission-denied", "Permission denied"),
    404: ("not-found", "Not found"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    422: ("pdf-not-verifiable", "PDF could not be verified"),
    429: ("too-many-requests", "Too many requests"),
    503: ("service-unavailable", "Service unavailable"),
}


def _auth_statuses(access: Mapping[str, Any]) -> tuple[int, ...]:
    """What authentication adds to a route with ``access`` as its ``opt``: none for a public route;
    401, 429 and 503 (a refusal is recorded before it is answered) for one with roles, and 403 unless every
    role may call it."""
    if access.get(PUBLIC_OPT) is True:
        return ()
    roles = set(access.get(ROLES_OPT) or ())
    return (401, 429, 503) if roles >= set(Role) else (401, 403, 429, 503)


def _example(status: int, detail: str) -> Example:
    code, title = _CODES[status]
    value: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "urn:uuid:0b7f4a52-8d2c-4c3e-9a55-3e1c2f0f6d11",
        "request_id": "0b7f4a52-8d2c-4c3e-9a55-3e1c2f0f6d11",
    }
    if status == 400:
        value["errors"] = [{"key": "month", "source": "body", "message": "must be YYYY-MM"}]
        value["detail"] = "'month' must be YYYY-MM."
    return Example(summary=title, value=value)


def problem_responses(
    access: Mapping[str, Any], *statuses: int, why: Mapping[int, str] | None = None
) -> dict[int, ResponseSpec]:
    """The ``responses=`` of a route whose ``opt`` is ``access``: a problem document for each of
    ``statuses`` and for those its authentication adds; ``why`` describes a status for this route (the
    default says what the status means everywhere)."""
    reasons = dict(why or {})
    unknown = set(reasons) - {*statuses, *_auth_statuses(access)}
    if unknown:
        msg = f"problem_responses: a reason for a status the route does not declare: {sorted(unknown)}"
        raise ValueError(msg)
    declared = sorted({*statuses, *_auth_statuses(access)})
    return {
        status: ResponseSpec(
            ProblemDetails,
            description=reasons.get(status, _WHY[status]),
            media_type=PROBLEM_JSON,
            generate_examples=False,
            examples=[_example(status, reasons.get(status, _WHY[status]))],
        )
        for status in declared
    }


def _is_problem(response: object) -> bool:
    return isinstance(response, OpenAPIResponse) and PROBLEM_JSON in (response.content or {})


@dataclass
class ProblemOperation(Operation):
    """An operation whose error responses are only the problem documents its route declares: Litestar adds
    a 400 of its own (``status_code``, ``detail``, ``extra``) to every route with parameters, which is not
    what this service answers (a path parameter alone cannot fail: an unknown id is a 404). A file it
    answers with is typed as bytes."""

    def __post_init__(self) -> None:
        if self.responses:
            self.responses = {
                status: _as_file(response) if status.startswith("2") else response
                for status, response in self.responses.items()
                if not status.startswith(("4", "5")) or _is_problem(response)
            }


def _as_file(response: OpenAPIResponse | Reference) -> OpenAPIResponse | Reference:
    """A streamed file is bytes (a PDF) or text (a CSV): Litestar leaves its schema empty, so a client would
    not know."""
    if isinstance(response, OpenAPIResponse):
        for media_type, content in (response.content or {}).items():
            if content.schema != Schema() or "json" in media_type:
                continue
            binary = not media_type.startswith("text/")
            content.schema = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY if binary else None)
    return response


class ProblemDocuments(ReceiveRoutePlugin):
    """The app plugin that gives every route a :class:`ProblemOperation` as it is registered (a route's own
    operation class must extend it)."""

    def receive_route(self, route: BaseRoute) -> None:
        """Set the operation class of each of ``route``'s handlers."""
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if handler.operation_class is Operation:
                handler.operation_class = ProblemOperation
            elif not issubclass(handler.operation_class, ProblemOperation):
                msg = f"route {route.path}: its operation_class must extend ProblemOperation"
                raise ConfigurationError(msg)
