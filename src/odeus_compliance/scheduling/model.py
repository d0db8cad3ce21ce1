"""A schedule's definition, validated: what to report, how often, when, in which zone, and what to do with it.

Every error names the field and the rule, never the value given (a webhook URL can carry a token, an e-mail
address is personal data): :class:`ScheduleError` messages are safe for logs, stderr and problem documents.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.scheduling.periods import MAX_DAY, Every

__all__ = [
    "SCHEDULE_NAME",
    "CatchUp",
    "Delivery",
    "ScheduleError",
    "ScheduleSpec",
    "parse_time_of_day",
    "validate_timezone",
]

SCHEDULE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A schedule's name: it appears in audit records and report purposes, so identifier-like only."""
_TIME: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_SECRET_REF: Final = re.compile(r"ODEUS_COMPLIANCE_WEBHOOK_[A-Z0-9_]{1,40}")
"""Webhook keys live in the environment under this prefix (settings collect them, nothing else is read)."""
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
_EMAIL: Final = re.compile(r"[^@\s,;<>]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
MAX_RECIPIENTS: Final = 20


class ScheduleError(OdeusComplianceError):
    """A schedule definition breaks a rule; the message names the field and the rule, never the value."""


class CatchUp(enum.StrEnum):
    """What to do with periods whose due time passed while no replica ran (the service was down)."""

    RUN_MISSED_ONCE = "run-missed-once"
    """Run every missed period, each once, oldest first."""
    SKIP_AND_RECORD = "skip-and-record"
    """Run only the latest due period; record each older missed one as a ``skipped`` run."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a finished report goes. The archive always; a webhook and e-mail are optional.

    Secrets are never stored here: ``webhook_secret_env`` names the environment variable
    (``ODEUS_COMPLIANCE_WEBHOOK_<NAME>``) that holds the webhook's HMAC key. E-mail goes over the SMTP server
    of ``ODEUS_COMPLIANCE_SMTP_URL`` (:mod:`odeus_compliance.notify.mail`). The addresses are stored
    sealed (:mod:`odeus_compliance.scheduling.service`); ``recipients_shredded`` marks a stored delivery whose
    addresses retention shredded with their key epoch (its e-mail then fails, saying so).
    """

    webhook_url: str | None = None
    webhook_secret_env: str | None = None
    email_to: tuple[str, ...] = ()
    email_attach_pdf: bool = False
    recipients_shredded: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "archive": True,
            "webhook_url": self.webhook_url,
            "webhook_secret_env": self.webhook_secret_env,
            "email_to": list(self.email_to),
            "email_attach_pdf": self.email_attach_pdf,
        }

    def describe(self) -> dict[str, Any]:
        """What may be shown to an admin or officer: no URL (it may carry a token), no addresses."""
        return {
            "archive": True,
            "webhook": self.webhook_url is not None,
            "email_recipients": len(self.email_to),
            "email_attach_pdf": self.email_attach_pdf,
            **({"email_recipients_shredded": True} if self.recipients_shredded else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Delivery:
        """Validate and build from the stored form (or a request body)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ScheduleError("delivery must be an object")
        unknown = set(data) - {"archive", "webhook_url", "webhook_secret_env", "email_to", "email_attach_pdf"}
        if unknown:
            raise ScheduleError(
                "delivery has unknown fields: " + ", ".join(sorted(_safe(k) for k in unknown))
            )
        if data.get("archive", True) is not True:
            raise ScheduleError("delivery.archive cannot be turned off: every report is archived")
        url, secret_env = _webhook(data.get("webhook_url"), data.get("webhook_secret_env"))
        emails = data.get("email_to", [])
        if not isinstance(emails, Sequence) or isinstance(emails, str) or len(emails) > MAX_RECIPIENTS:
            raise ScheduleError(f"delivery.email_to must be a list of at most {MAX_RECIPIENTS} addresses")
        for number, address in enumerate(emails, start=1):
            if not isinstance(address, str) or not _EMAIL.fullmatch(address):
                raise ScheduleError(f"delivery.email_to entry {number} is not an e-mail address")
        attach = data.get("email_attach_pdf", False)
        if not isinstance(attach, bool):
            raise ScheduleError("delivery.email_attach_pdf must be true or false")
        return cls(
            webhook_url=url, webhook_secret_env=secret_env, email_to=tuple(emails), email_attach_pdf=attach
        )


def _webhook(url: object, secret_env: object) -> tuple[str | None, str | None]:
    """The webhook URL and the name of its secret's variable, validated (neither is echoed in errors)."""
    if url is not None:
        if not isinstance(url, str) or len(url) > 2000:
            raise ScheduleError("delivery.webhook_url must be a URL of at most 2000 characters")
        parts = urlsplit(url)
        plain_ok = parts.scheme == "http" and parts.hostname in _LOOPBACK  # a sidecar, or a test receiver
        if (
            (parts.scheme != "https" and not plain_ok)
            or not parts.hostname
            or parts.username
            or parts.password
        ):
            raise ScheduleError(
                "delivery.webhook_url must be an https:// URL without user or password "
                "(plain http only to this host's loopback address)"
            )
        if secret_env is None:
            raise ScheduleError("delivery.webhook_secret_env is required with a webhook (the HMAC key)")
    if secret_env is not None and (not isinstance(secret_env, str) or not _SECRET_REF.fullmatch(secret_env)):
        raise ScheduleError(
            "delivery.webhook_secret_env must name an environment variable ODEUS_COMPLIANCE_WEBHOOK_<NAME> "
            "(A-Z, 0-9, _) that holds the key, not hold the key itself"
        )
    return url, secret_env


def _safe(text: str) -> str:
    """A field name from a request, shown only if it is identifier-like."""
    return text if re.fullmatch(r"[A-Za-z0-9_]{1,40}", text) else "<unnamed>"


def validate_timezone(name: object) -> str:
    """An IANA zone name that zoneinfo knows, or :class:`ScheduleError`."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ScheduleError("timezone must be an IANA time zone name such as Europe/Berlin")
    # 'localtime' and 'posixrules' are files of the zone database, not zones anyone means
    if name in {"localtime", "posixrules", "Factory"} or name.startswith("/") or ".." in name:
        raise ScheduleError("timezone is not a known IANA time zone (for example Europe/Berlin)")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError("timezone is not a known IANA time zone (for example Europe/Berlin)") from None
    return name


def parse_time_of_day(text: object) -> dt.time:
    """``HH:MM`` (24-hour) as a time, or :class:`ScheduleError`."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError("time must be HH:MM on a 24-hour clock, for example 07:30")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _enum_member(kind: type[enum.StrEnum], value: object, name: str) -> Any:
    try:
        if not isinstance(value, str):
            raise ValueError
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ScheduleError(f"{name} must be one of: {allowed}") from None


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A validated schedule definition (construct with :meth:`build`, which checks every rule)."""

    name: str
    every: Every
    day: int
    time: dt.time
    timezone: str
    policy: str
    catch_up: CatchUp = CatchUp.RUN_MISSED_ONCE
    delivery: Delivery = field(default_factory=Delivery)
    enabled: bool = True

    @classmethod
    def build(
        cls,
        *,
        name: object,
        every: object,
        day: object,
        time: object,
        timezone: object,
        policy: object,
        catch_up: object = CatchUp.RUN_MISSED_ONCE.value,
        delivery: Mapping[str, Any] | None = None,
        enabled: object = True,
    ) -> ScheduleSpec:
        """Validate every field; the policy's existence is checked by the service (it knows the folder)."""
        if not isinstance(name, str) or not SCHEDULE_NAME.fullmatch(name):
            raise ScheduleError(
                "name must be 1-64 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)"
            )
        every_member: Every = _enum_member(Every, every, "every")
        limit = MAX_DAY[every_member.value]
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= limit:
            what = "an ISO weekday (1 = Monday)" if every_member is Every.WEEK else "a day of the month"
            raise ScheduleError(f"day must be {what} from 1 to {limit} for every {every_member.value}")
        if not isinstance(policy, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", policy):
            raise ScheduleError("policy must be the name of a policy file (letters, digits, _ and -)")
        if not isinstance(enabled, bool):
            raise ScheduleError("enabled must be true or false")
        return cls(
            name=name,
            every=every_member,
            day=day,
            time=parse_time_of_day(time),
            timezone=validate_timezone(timezone),
            policy=policy,
            catch_up=_enum_member(CatchUp, catch_up, "catch_up"),
            delivery=Delivery.from_json(delivery),
            enabled=enabled,
        )

    @property
    def time_text(self) -> str:
        """``HH:MM``."""
        return self.time.strftime("%H:%M")

    @property
    def purpose(self) -> str:
        """The purpose every report of this schedule is requested with."""
        return f"scheduled {_ADJECTIVE[self.every]} report {self.name}"


_ADJECTIVE: Final = {Every.MONTH: "monthly", Every.QUARTER: "quarterly", Every.WEEK: "weekly"}
