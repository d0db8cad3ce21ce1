"""Who performs an audited action, and the one way an action's flow writes its record.

Every entry point (HTTP route, command, demo, scheduler, console) builds a :class:`Recorder` for the person
or process acting, and passes it to the action's flow function; the flow writes the record through it, so
one action has one record shape whatever called it. A record that cannot be written raises
:class:`AuditUnavailable` (503 over HTTP, one line on the command line), and the flow hands nothing out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from odeus_compliance.audit.appender import Actor, AuditAppender, AuditWriteError
from odeus_compliance.audit.records import Action, AuditRecord, DetailValue, Outcome
from odeus_compliance.errors import ServiceUnavailable
from odeus_compliance.keys.ring import KeyRingError

__all__ = ["AuditUnavailable", "Recorder"]


class AuditUnavailable(ServiceUnavailable):
    """The audit record could not be written, so the action was not carried out."""

    def __init__(self) -> None:
        super().__init__("The audit record could not be written, so the request was not carried out.")


@dataclass(frozen=True, slots=True)
class Recorder:
    """An actor (and, over HTTP, the request's id and client address) bound to the audit log."""

    appender: AuditAppender
    actor: Actor
    request_id: str | None = None
    client_address: str | None = None

    async def record(
        self,
        *,
        action: Action,
        resource: str,
        purpose: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditRecord:
        """Write one record and return it once it is durable; :class:`AuditUnavailable` if it cannot be
        (``RecordError``, a field breaking a rule, is a bug of the caller and propagates)."""
        record = self.appender.build_record(
            actor=self.actor,
            action=action,
            resource=resource,
            purpose=purpose,
            outcome=outcome,
            request_id=self.request_id,
            client_address=self.client_address,
            details=details,
        )
        try:
            return await self.appender.append_record(record)
        except (AuditWriteError, KeyRingError, SQLAlchemyError, OSError):
            raise AuditUnavailable from None
