"""The schedule form of the admins' console: its fields read into the API's own input (``ScheduleIn``) by
the same rules, and every refusal (msgspec's or the schedule model's) as a message for one field."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from odeus_compliance.errors import ValidationFailed
from odeus_compliance.scheduling.model import ScheduleError
from odeus_compliance.scheduling.schemas import ScheduleIn, ScheduleOut
from odeus_compliance.validation_messages import allowed_values, field_problem

__all__ = ["FORM_FIELDS", "ScheduleForm", "form_errors", "read_form", "schedule_input", "schedule_refusal"]

FORM_FIELDS: Final = ("name", "every", "day", "time", "timezone", "policy", "catch_up", "enabled")
"""The fields the form offers (the API's ``ScheduleIn`` without ``delivery``, an officer's, and
``active_from``, which the form leaves at its default)."""
_TEXT_FIELDS: Final = ("name", "every", "day", "time", "timezone", "policy", "catch_up")
_FIELD_FIRST: Final = re.compile(r"(?:delivery\.)?([a-z_]+) (.+)")
_AT_PATH: Final = re.compile(r"(.+) - at `\$\.([a-z_]+)`")
_MAX_FIELD: Final = 200


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleForm:
    """What the form shows: the values as typed, and a message per field (``body``: the form as a whole)."""

    values: Mapping[str, str]
    enabled: bool
    errors: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def blank(cls) -> ScheduleForm:
        """A new schedule's form, with the API's defaults."""
        return cls(
            values={
                "name": "",
                "every": "month",
                "day": "1",
                "time": "06:00",
                "timezone": "Europe/Berlin",
                "policy": "default",
                "catch_up": "run-missed-once",
            },
            enabled=True,
        )

    @classmethod
    def of(cls, data: ScheduleOut) -> ScheduleForm:
        """The form of a stored schedule."""
        values = {name: str(getattr(data, name)) for name in _TEXT_FIELDS}
        return cls(values=values, enabled=data.enabled)


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip()[:_MAX_FIELD] if isinstance(value, str) else ""


def read_form(form: Mapping[str, Any], *, name: str | None = None) -> ScheduleForm:
    """The values posted (``name`` fixed when a stored schedule is changed: the API matches by name)."""
    values = {field: _text(form, field) for field in _TEXT_FIELDS}
    if name is not None:
        values["name"] = name
    return ScheduleForm(values=values, enabled=form.get("enabled") == "on")


def schedule_input(form: ScheduleForm) -> ScheduleIn:
    """The API's input built from the form, by the API's own rules; :class:`ValidationFailed` naming each
    field that breaks one (the rule, never the value)."""
    data: dict[str, Any] = {**form.values, "enabled": form.enabled}
    try:
        return msgspec.convert(data, ScheduleIn, strict=False)
    except msgspec.ValidationError as exc:
        match = _AT_PATH.fullmatch(str(exc))
        raw, key = (match[1], match[2]) if match else (str(exc), "body")
        key, message = field_problem(key, raw, lambda path: allowed_values(ScheduleIn, path))
        raise ValidationFailed(
            f"'{key}' {message}.", extra={"errors": [{"key": key, "source": "body", "message": message}]}
        ) from None


def schedule_refusal(exc: ScheduleError) -> ValidationFailed:
    """A broken schedule rule as the API words it: the field its message starts with, and the rule."""
    text = str(exc)
    match = _FIELD_FIRST.fullmatch(text)
    key, rule = (match[1], match[2]) if match and match[1] in FORM_FIELDS else ("body", text)
    return ValidationFailed(text, extra={"errors": [{"key": key, "source": "body", "message": rule}]})


def form_errors(exc: ValidationFailed) -> dict[str, str]:
    """The messages of a refusal by field (``body`` for the form as a whole)."""
    errors: dict[str, str] = {}
    for item in (exc.extra or {}).get("errors", []):
        key = str(item.get("key") or "body")
        errors.setdefault(key if key in FORM_FIELDS else "body", str(item.get("message") or ""))
    return errors or {"body": str(exc)}
