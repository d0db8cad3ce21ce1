"""``/console/reports/new``: an officer requests the report of a month. The form is checked by the API's
own rules (the same :class:`ReportRequestIn` and :func:`~odeus_compliance.reports.service.parse_request`)
and the request goes through the same audited flow (``report.requested`` with the purpose, then the job is
queued); a refused field is shown beside its input, with everything entered kept."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.params import QueryParameter

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.runtime import console_of
from odeus_compliance.console.web import page
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.policy.service import list_policies
from odeus_compliance.reports import actions, service
from odeus_compliance.reports.schemas import MAX_PURPOSE_LENGTH, ReportRequestIn
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.validation_messages import field_problem

__all__ = ["COMMON_ZONES", "DEFAULT_ZONE", "RequestForm", "check_form", "request_form", "submit_request"]

DEFAULT_ZONE: Final = "Europe/Berlin"
COMMON_ZONES: Final = (
    "UTC",
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Stockholm",
    "Europe/Copenhagen",
    "Europe/Oslo",
    "Europe/Helsinki",
    "Europe/Dublin",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Athens",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
)
"""Offered as suggestions; any IANA zone the service knows is accepted."""
FIELDS: Final = ("month", "timezone", "policy", "purpose", "partial")
_SHAPE_RULES: Final = {
    "month": "must be YYYY-MM",
    "timezone": "is not a known IANA time zone",
    "policy": "must name a valid policy of the policy folder",
}
"""How a field that fails the API's shape check reads in the form (the API names a regular expression)."""
_FORM_WORDING: Final = {
    "or 'from'/'to' is required": "is required",
    'has not ended yet; send "partial": true for a report of the data so far': (
        'has not ended yet: tick "Partial period" for a report of the data so far'
    ),
    "must name a valid policy of the policy folder (GET /api/v1/policies)": (
        "must name a valid policy of the policy folder"
    ),
}
"""The API's messages that speak of its JSON body, said in terms of this form."""
_PROBE_PURPOSE: Final = "checking the other fields"
_MAX_FIELD: Final = 64


@dataclasses.dataclass(frozen=True, slots=True)
class RequestForm:
    """What the officer entered (kept when the form comes back with errors)."""

    month: str = ""
    timezone: str = DEFAULT_ZONE
    policy: str = "default"
    purpose: str = ""
    partial: bool = False

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> RequestForm:
        """The form from posted fields (a missing or non-text field counts as empty)."""

        def text(name: str) -> str:
            value = fields.get(name)
            return value if isinstance(value, str) else ""

        return cls(
            month=text("month").strip(),
            timezone=text("timezone").strip(),
            policy=text("policy").strip(),
            purpose=text("purpose"),
            partial=text("partial") in {"on", "true", "1"},
        )

    def body(self) -> dict[str, Any]:
        """The API's request body for these values (an empty month or zone is left out, as in JSON)."""
        return {
            "purpose": self.purpose,
            "policy": self.policy,
            "month": self.month or None,
            "timezone": self.timezone or None,
            "partial": self.partial,
        }


def _errors_of(exc: ValidationFailed) -> dict[str, str]:
    items = exc.extra.get("errors")
    found: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping):
            key = str(item.get("key") or "")
            message = str(item.get("message") or "")
            found.setdefault(key if key in FIELDS else "form", _FORM_WORDING.get(message, message))
    return found or {"form": exc.detail}


def _checked(entered: RequestForm, settings: Settings) -> service.RequestedReport:
    """The API's checks, in its order: the body's shape (msgspec), then ``parse_request``."""
    try:
        body = msgspec.convert(entered.body(), ReportRequestIn)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at ")
        key = where.strip("`").removeprefix("$.") or "form"
        raise ValidationFailed.at(
            key, _SHAPE_RULES.get(key) or field_problem(key, message, lambda _key: None)[1]
        ) from None
    return service.parse_request(body, settings=settings)


def check_form(
    entered: RequestForm, settings: Settings
) -> tuple[service.RequestedReport | None, dict[str, str]]:
    """The validated request, or the problem of each field (``form`` for one that is no field's)."""
    try:
        return _checked(entered, settings), {}
    except ValidationFailed as exc:
        errors = _errors_of(exc)
    if "purpose" in errors:  # the API checks the purpose first: check the rest too, to show every problem
        try:
            _checked(dataclasses.replace(entered, purpose=_PROBE_PURPOSE), settings)
        except ValidationFailed as exc:
            errors = _errors_of(exc) | errors
    return None, errors


def _form_page(
    request: Request[Any, Any, Any], entered: RequestForm, errors: Mapping[str, str], status: int = 200
) -> Response[str]:
    settings = console_of(request).settings
    policies = [entry.name for entry in list_policies(policy_dir=settings.policy_dir) if entry.policy]
    return page(
        request,
        "officer/request.html",
        title="Request a report" if not errors else "Request a report (check the form)",
        status=status,
        form=entered,
        errors=errors,
        policies=policies,
        zones=COMMON_ZONES,
        max_purpose=MAX_PURPOSE_LENGTH,
    )


_Prefill = Annotated[str | None, QueryParameter(max_length=_MAX_FIELD, required=False)]


@get("/console/reports/new", opt=console_page(Role.OFFICER), include_in_schema=False)
async def request_form(
    request: Request[Any, Any, Any],
    month: _Prefill = None,
    timezone: _Prefill = None,
    policy: _Prefill = None,
) -> Response[str]:
    """The empty form, or one filled in with a report's month, zone and policy ("Request again")."""
    defaults = RequestForm()
    entered = RequestForm(
        month=month or defaults.month,
        timezone=timezone or defaults.timezone,
        policy=policy or defaults.policy,
    )
    return _form_page(request, entered, {})


@post(
    "/console/reports/new",
    opt=console_page(Role.OFFICER),
    include_in_schema=False,
    request_max_body_size=16 * 1024,
)
async def submit_request(request: Request[Any, Any, Any]) -> Response[str]:
    """Check the form as the API checks a request; record and queue it, then show the archive."""
    entered = RequestForm.from_fields(await request.form())
    wanted, errors = check_form(entered, console_of(request).settings)
    if wanted is None:
        return _form_page(request, entered, errors, status=400)
    runtime = service.runtime_of(request)
    await actions.request_report(
        recorder_of(request), jobs=runtime.jobs, wanted=wanted, requested_by=request.user.key_id
    )
    runtime.wake()
    return Response("", status_code=303, headers={"Location": "/console/reports"})
