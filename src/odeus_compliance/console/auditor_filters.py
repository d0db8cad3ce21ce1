"""The audit log page's filter form: the query parameters of ``GET /api/v1/audit/entries`` (same names, same
limits, the same parse functions), read from a GET form. Unlike the API, the purpose is required: the page
shows no entry, and records nothing, until the person says why they read the log.

Every field is checked, so each message can sit beside its own field; a message names the rule, never the
value sent."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from odeus_compliance.audit.controllers import MAX_PAGE, parse_choice, parse_time
from odeus_compliance.audit.records import MAX_SAFE_INT, Action, Outcome
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.purpose import check_purpose

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_FIELDS",
    "LogFilter",
    "LogFilterForm",
    "field_message",
    "read_filter_form",
]

FILTER_FIELDS: Final = ("purpose", "actor", "action", "resource", "outcome", "from", "to", "after", "limit")
"""The form's fields: the API's query parameters."""
DEFAULT_LIMIT: Final = 100
# the API's declared limits of the same query parameters (audit/controllers.py: audit_entries)
_ACTOR: Final = re.compile(r"[!-~]{1,128}")
_MAX_RESOURCE: Final = 256
_MAX_TIME: Final = 64
_MAX_NUMBER_TEXT: Final = 20

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class LogFilter:
    """The accepted filter: what ``EntryFilter`` and the ``audit.read`` record take."""

    purpose: str
    actor: str | None
    action: str | None
    resource: str | None
    outcome: str | None
    time_from: dt.datetime | None
    time_to: dt.datetime | None
    after: int | None
    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class LogFilterForm:
    """The form as sent (to show it again), each field's message, and the filter once all are accepted."""

    values: dict[str, str]
    errors: dict[str, str]
    accepted: LogFilter | None

    @property
    def submitted(self) -> bool:
        """Whether any field was sent (a first visit shows only the empty form)."""
        return any(self.values.values())


def field_message(exc: ValidationFailed) -> str:
    """The rule a refusal names for its field (``errors[0].message``), else its detail."""
    errors = exc.extra.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or exc.detail)
    return exc.detail


def _whole_number(name: str, lowest: int, highest: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        rule = f"must be a whole number from {lowest} to {highest}"
        if len(text) > _MAX_NUMBER_TEXT or not re.fullmatch(r"-?[0-9]+", text):
            raise ValidationFailed.at(name, rule, source="query")
        number = int(text)
        if not lowest <= number <= highest:
            raise ValidationFailed.at(name, rule, source="query")
        return number

    return parse


def _actor(text: str) -> str:
    if not _ACTOR.fullmatch(text):
        raise ValidationFailed.at("actor", "must be 1 to 128 printable ASCII characters", source="query")
    return text


def _resource(text: str) -> str:
    if len(text) > _MAX_RESOURCE:
        raise ValidationFailed.at("resource", f"at most {_MAX_RESOURCE} characters", source="query")
    return text


def _time(name: str) -> Callable[[str], dt.datetime | None]:
    def parse(text: str) -> dt.datetime | None:
        if len(text) > _MAX_TIME:
            raise ValidationFailed.at(name, f"at most {_MAX_TIME} characters", source="query")
        return parse_time(text, name)

    return parse


def read_filter_form(params: Mapping[str, str]) -> LogFilterForm:
    """Read and check the form (an empty field is no filter; the purpose is required)."""
    values = {name: params.get(name) or "" for name in FILTER_FIELDS}
    errors: dict[str, str] = {}

    def field(name: str, parse: Callable[[str], T]) -> T | None:
        text = values[name]
        if name != "purpose" and not text:
            return None
        try:
            return parse(text)
        except ValidationFailed as exc:
            errors[name] = field_message(exc)
            return None

    purpose = field("purpose", lambda text: check_purpose(text, required_for="read the audit log"))
    accepted = LogFilter(
        purpose=purpose or "",
        actor=field("actor", _actor),
        action=field("action", lambda text: parse_choice(text, "action", Action)),
        resource=field("resource", _resource),
        outcome=field("outcome", lambda text: parse_choice(text, "outcome", Outcome)),
        time_from=field("from", _time("from")),
        time_to=field("to", _time("to")),
        after=field("after", _whole_number("after", -1, MAX_SAFE_INT)),
        limit=field("limit", _whole_number("limit", 1, MAX_PAGE)) or DEFAULT_LIMIT,
    )
    return LogFilterForm(values=values, errors=errors, accepted=None if errors else accepted)
