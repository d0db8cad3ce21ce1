"""Recording accesses from HTTP requests: the one call controllers and guards make before handing data out.

    record = await record_access(request, action=Action.AUDIT_READ, resource="audit:entries", purpose=...)

or hand :func:`recorder_of` to the flow of an audited action (``reports/actions.py`` and the like). It
returns only once the record is durable; if it cannot be written the request fails with a 503 problem
(:class:`~odeus_compliance.errors.ServiceUnavailable`) and the caller hands nothing out (fail closed).

Denied requests (401 from authentication, 403 from the role guard) are recorded as ``access.denied`` by
:func:`record_denial`, which the app installs for :mod:`~odeus_compliance.security`: an unauthenticated caller
as ``anonymous`` (never the presented key, not even its prefix), a wrong role with the key's id and name.
A flood of bad requests does not become a flood of records: the app's
:class:`~odeus_compliance.audit.denials.DenialLimiter` counts refusals per client and window, records the
first few one by one and the rest as one summary, and answers 429 past a limit.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final

from litestar.connection import ASGIConnection

from odeus_compliance.audit.appender import ANONYMOUS, Actor, AuditAppender
from odeus_compliance.audit.denials import DenialLimiter, record_single_denial
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, ActorRole, AuditRecord, DetailValue, Outcome
from odeus_compliance.errors import ServiceUnavailable
from odeus_compliance.logging_setup import current_request_id
from odeus_compliance.security import ApiKeyIdentity
from odeus_compliance.state_keys import AUDIT_APPENDER_KEY, DENIAL_LIMITER_KEY

__all__ = ["actor_of", "appender_of", "record_access", "record_denial", "recorder_of", "route_of"]

_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z]+)?\}")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._:/=,+*#-]")
_UNAVAILABLE: Final = "The audit record could not be written, so the request was not carried out."


def appender_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AuditAppender:
    """The app's appender (installed by the lifespan)."""
    appender = connection.app.state.get(AUDIT_APPENDER_KEY)
    if not isinstance(appender, AuditAppender):
        raise ServiceUnavailable(_UNAVAILABLE)
    return appender


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The authenticated caller, or anonymous."""
    user = connection.scope.get("user")
    if isinstance(user, ApiKeyIdentity):
        return Actor(user.key_id, user.name, ActorRole(user.role.value))
    return ANONYMOUS


def route_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The route template in record-safe form (``/api/v1/audit/entries/:seq/proof``), never the raw path."""
    template = connection.scope.get("path_template") or "unmatched"
    return _UNSAFE.sub("_", _PARAM.sub(r":\1", str(template)))[:256] or "unmatched"


def _client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    client = connection.client
    if client is None:
        return None
    try:
        return str(ipaddress.ip_address(client.host))
    except ValueError:
        return None


def recorder_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Recorder:
    """The caller of this request as a :class:`Recorder` (what flows of audited actions take)."""
    return Recorder(
        appender=appender_of(connection),
        actor=actor_of(connection),
        request_id=current_request_id(),
        client_address=_client_address(connection),
    )


async def record_access(
    connection: ASGIConnection[Any, Any, Any, Any],
    *,
    action: Action,
    resource: str,
    purpose: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: Mapping[str, DetailValue] | None = None,
) -> AuditRecord:
    """Write the record of this request's access; 503 if it cannot be written (``RecordError``, a bug in the
    caller's fields, propagates as a 500)."""
    return await recorder_of(connection).record(
        action=action, resource=resource, purpose=purpose, outcome=outcome, details=details
    )


async def record_denial(connection: ASGIConnection[Any, Any, Any, Any], status: int, reason: str) -> None:
    """Count and record a refused request as ``access.denied`` (see the module docstring); raises
    :class:`~odeus_compliance.errors.TooManyRequests` when the client is over the limit (answer 429)."""
    method = str(connection.scope.get("method", "OTHER"))
    method = method if method.isalpha() and len(method) <= 10 else "OTHER"
    route = route_of(connection)
    recorder = recorder_of(connection)
    limiter = connection.app.state.get(DENIAL_LIMITER_KEY)
    if isinstance(limiter, DenialLimiter):
        await limiter.refuse(recorder, status=status, reason=reason, method=method, route=route)
    else:  # an app without its lifespan's limiter: one record per refusal, as before
        await record_single_denial(recorder, status=status, reason=reason, method=method, route=route)
