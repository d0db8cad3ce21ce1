"""The audit record: what auditors expect to read, validated, and its canonical JSON plaintext.

Fields (AU-3 / ISO 27001 A.8.15 / PCI DSS 10.2.2): sequence number, UTC time, the actor (API key id and key
name *at event time*, so the record survives the key's deletion), the actor's role, the action, the resource,
the purpose, the outcome, the request id, the client address, and ``details``.

Canonical plaintext: UTF-8 JSON, keys sorted, no whitespace, every field present (``null`` when absent),
non-ASCII characters written as themselves. This exact byte string is what is encrypted and committed to
(see :mod:`~odeus_compliance.audit.leaf`); :func:`canonical_json` of the parsed JSON gives it back, which is
how an auditor recomputes a commitment from a disclosed record.

Rules, and why:

- ``purpose`` is required for every action in :data:`DATA_ACCESS_ACTIONS` (reading or handing out personal
  data, even pseudonymised, or the audit log itself), unless the outcome is ``denied`` (a refused request
  touched nothing, and may have been refused precisely for lacking a purpose).
- ``details`` never carries raw personal data. Closed by default: keys must be in the allow-list
  :data:`DETAIL_KEYS`; values are ``bool``, ``int`` within ±(2^53-1) (exact in every JSON reader), or short
  identifier-like strings (at most 256 characters from ``A-Z a-z 0-9 . _ : / = , + * # -``: no white space,
  no ``@``), which admits ids, hashes, codes, months, time stamps and time-zone names but not names,
  sentences or e-mail addresses. Free text belongs nowhere but ``purpose``. Adding a key is a reviewed code
  change here.
- Every string field is free of control characters; integers (``seq`` too) stay within 2^53-1, so tools that
  read JSON numbers as doubles (jq 1.6, JavaScript) reproduce the canonical bytes exactly.
- ``time`` is UTC with millisecond precision, written ``YYYY-MM-DDTHH:MM:SS.mmmZ``.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar

__all__ = [
    "DATA_ACCESS_ACTIONS",
    "DETAIL_KEYS",
    "MAX_SAFE_INT",
    "Action",
    "ActorRole",
    "AuditRecord",
    "DetailValue",
    "Outcome",
    "RecordError",
    "canonical_json",
    "format_time",
    "parse_time",
]

MAX_SAFE_INT: Final = (1 << 53) - 1
"""Largest integer in a record (and the largest sequence number): exact as an IEEE double."""

DetailValue = str | int | bool
_E = TypeVar("_E", bound=enum.StrEnum)


class RecordError(ValueError):
    """A record breaks a rule. The message names the field and the rule, never the offending value."""


class Action(enum.StrEnum):
    """What happened. Values are stable public identifiers (they appear in exports)."""

    EXPORT_FETCHED = "export.fetched"
    """A usage export was pulled from the Odeus API."""
    REPORT_REQUESTED = "report.requested"
    REPORT_GENERATED = "report.generated"
    REPORT_DOWNLOADED = "report.downloaded"
    """The signed PDF was handed out."""
    REPORT_VIEWED = "report.viewed"
    """Report metadata (list, status) was read; no personal data."""
    REPORT_VERIFIED = "report.verified"
    REPORT_CANCELLED = "report.cancelled"
    """An officer cancelled a queued or running report job (nothing of it is kept)."""
    DATASET_DOWNLOADED = "dataset.downloaded"
    """The pseudonymised dataset (CSV) was handed out."""
    AUDIT_READ = "audit.read"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_VERIFIED = "audit.verified"
    POLICY_CHANGED = "policy.changed"
    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    APIKEY_CREATED = "apikey.created"
    APIKEY_REVOKED = "apikey.revoked"
    RETENTION_PURGE = "retention.purge"
    """Retention destroyed data or data keys (the affected ranges go in ``details``)."""
    ACCESS_DENIED = "access.denied"
    """Authentication or authorisation refused a request (a summary: ``count`` refusals of one client)."""
    SCHEDULE_CHANGED = "schedule.changed"
    SCHEDULE_RUN = "schedule.run"
    CONSOLE_LINK_CREATED = "console.link_created"
    """A one-time console sign-in link was made (``console link``, ``demo --serve``)."""
    CONSOLE_SIGN_IN = "console.sign_in"
    """A person signed in to the console (outcome ``failure``: a sign-in was refused)."""
    CONSOLE_SIGN_OUT = "console.sign_out"
    """A person signed out of the console."""


DATA_ACCESS_ACTIONS: Final = frozenset(
    {
        Action.EXPORT_FETCHED,
        Action.REPORT_REQUESTED,
        Action.REPORT_GENERATED,
        Action.REPORT_DOWNLOADED,
        Action.DATASET_DOWNLOADED,
        Action.AUDIT_READ,
        Action.AUDIT_EXPORTED,
    }
)
"""Actions that read or hand out personal data (including the audit log): they need a ``purpose``."""


class ActorRole(enum.StrEnum):
    """The actor's role at event time: the API roles, plus ``system`` (jobs) and ``anonymous`` (no key)."""

    OFFICER = "officer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    METRICS = "metrics"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class Outcome(enum.StrEnum):
    """How it ended."""

    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


DETAIL_KEYS: Final = frozenset(
    {
        "byte_count",  # size of what was handed out
        "channel",  # how a file went out: email, webhook
        "checkpoint_size",  # tree size of the checkpoint an action used
        "count",  # generic count (rows listed, entries returned)
        "dataset_id",
        "entry_count",  # audit entries exported or read
        "epoch",  # key epoch
        "error_code",  # a stable error code, never a message
        "export_type",  # upstream export type (users, agents, ...)
        "format",  # pdf, csv, json
        "from_seq",
        "from_time",
        "http_status",
        "job_id",
        "key_id",
        "key_kind",
        "legal_basis",  # a code such as gdpr-6-1-c
        "method",  # HTTP method
        "month",  # YYYY-MM
        "page",
        "page_size",
        "period_from",
        "period_to",
        "policy",  # policy name
        "policy_hash",
        "policy_version",
        "problem_count",
        "pruned_count",
        "purged_count",
        "rate_limited_count",  # refused requests answered 429 (an access.denied summary)
        "reason",  # a code such as wrong_role, no_key, expired
        "recipients",  # keyed hashes of e-mail recipients, comma-separated (never the addresses)
        "report_id",
        "retention_rule",
        "role",  # an API key's role
        "route",  # the route template, never the concrete path with its query
        "row_count",
        "run_id",
        "schedule",
        "session_id",  # a console session's public id (ses_...)
        "sha256",
        "sign_in",  # how a console sign-in was made: link or oidc
        "link_id",  # a one-time sign-in link's public id (lnk_...)
        "status",
        "timezone",
        "to_seq",
        "to_time",
        "upstream_request_id",
        "valid",
    }
)
"""The allow-list of ``details`` keys."""

MAX_DETAILS: Final = 32
_DETAIL_STR = re.compile(r"[A-Za-z0-9._:/=,+*#-]{0,256}")
_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_RESOURCE = re.compile(r"[A-Za-z0-9._:/=,+*#-]{1,256}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Exactly the Unicode categories Cc and Cs (checked over every code point by a test); a regular expression
instead of ``unicodedata.category`` per character, which cost a third of an append."""
_FIELDS: Final = (
    "action",
    "actor_key_id",
    "actor_name",
    "client_address",
    "details",
    "outcome",
    "purpose",
    "request_id",
    "resource",
    "role",
    "seq",
    "time",
)


_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""One encoder for every call: ``json.dumps`` with options builds a new encoder each time (same output)."""


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace; raises :class:`RecordError` if not representable."""
    try:
        return _CANONICAL.encode(value).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise RecordError("value is not representable as canonical JSON") from exc


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (milliseconds, truncated)."""
    if moment.tzinfo is None:
        raise RecordError("time must be timezone-aware")
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such years unpadded: keep its exact output
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # ``isoformat`` truncates to milliseconds like the format above and ends in "+00:00" for UTC; it is the
    # C implementation, several times faster than formatting the fields (a test compares it with strftime)
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Parse the exact form :func:`format_time` writes."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise RecordError("time must be YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        return datetime.strptime(text[:-1] + "000", "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecordError("time is not a valid date and time") from exc


def _plain_text(value: str, name: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise RecordError(f"{name} must be a non-empty string of at most {limit} characters")
    if _CONTROL_OR_SURROGATE.search(value):
        raise RecordError(f"{name} must not contain control characters")
    if value != value.strip():
        raise RecordError(f"{name} must not start or end with white space")


def _check_details(details: Mapping[str, DetailValue]) -> dict[str, DetailValue]:
    if not isinstance(details, Mapping) or len(details) > MAX_DETAILS:
        raise RecordError(f"details must be a mapping of at most {MAX_DETAILS} entries")
    out: dict[str, DetailValue] = {}
    for key in sorted(details):
        value = details[key]
        if key not in DETAIL_KEYS:
            raise RecordError("details key is not in the allow-list")
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
                raise RecordError(f"details[{key}] is out of the safe integer range")
        elif isinstance(value, str):
            if not _DETAIL_STR.fullmatch(value):
                raise RecordError(f"details[{key}] must be a short identifier-like string")
        else:
            raise RecordError(f"details[{key}] must be a string, an integer or a boolean")
        out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record. Construction validates every rule; ``time`` is normalised to UTC milliseconds."""

    seq: int
    time: datetime
    actor_key_id: str | None
    actor_name: str | None
    role: ActorRole
    action: Action
    resource: str
    purpose: str | None
    outcome: Outcome
    request_id: str | None = None
    client_address: str | None = None
    details: Mapping[str, DetailValue] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:  # noqa: PLR0912 - one rule per branch reads best
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or not 0 <= self.seq <= MAX_SAFE_INT:
            raise RecordError("seq must be an integer in 0..2^53-1")
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise RecordError("time must be a timezone-aware datetime")
        utc = self.time.astimezone(UTC)
        object.__setattr__(self, "time", utc.replace(microsecond=utc.microsecond // 1000 * 1000))
        for name, enum_type in (("role", ActorRole), ("action", Action), ("outcome", Outcome)):
            try:
                object.__setattr__(self, name, enum_type(getattr(self, name)))
            except ValueError as exc:
                raise RecordError(f"{name} is not one of the known values") from exc
        if self.role is ActorRole.ANONYMOUS:
            if self.actor_key_id is not None or self.actor_name is not None:
                raise RecordError("an anonymous actor has no key id and no name")
        else:
            if self.actor_key_id is None or not _IDENT.fullmatch(self.actor_key_id):
                raise RecordError("actor_key_id is required: 1-128 characters from A-Z a-z 0-9 . _ : -")
            _plain_text(self.actor_name or "", "actor_name", 128)
        if not isinstance(self.resource, str) or not _RESOURCE.fullmatch(self.resource):
            raise RecordError("resource must be 1-256 identifier-like characters")
        if self.purpose is not None:
            _plain_text(self.purpose, "purpose", 500)
        elif self.action in DATA_ACCESS_ACTIONS and self.outcome is not Outcome.DENIED:
            raise RecordError(f"purpose is required for {self.action.value}")
        if self.request_id is not None and not (
            isinstance(self.request_id, str) and _IDENT.fullmatch(self.request_id)
        ):
            raise RecordError("request_id must be 1-128 characters from A-Z a-z 0-9 . _ : -")
        if self.client_address is not None:
            try:
                address = ipaddress.ip_address(self.client_address)
            except ValueError as exc:
                raise RecordError("client_address must be an IPv4 or IPv6 address") from exc
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # one spelling for IPv4 clients on dual-stack sockets
            object.__setattr__(self, "client_address", str(address))
        object.__setattr__(self, "details", MappingProxyType(_check_details(self.details)))

    def to_json_obj(self) -> dict[str, Any]:
        """The record as a JSON object (every field present)."""
        return {
            "action": self.action.value,
            "actor_key_id": self.actor_key_id,
            "actor_name": self.actor_name,
            "client_address": self.client_address,
            "details": dict(self.details),
            "outcome": self.outcome.value,
            "purpose": self.purpose,
            "request_id": self.request_id,
            "resource": self.resource,
            "role": self.role.value,
            "seq": self.seq,
            "time": format_time(self.time),
        }

    def plaintext(self) -> bytes:
        """The canonical JSON plaintext: what is encrypted and committed to."""
        return self.plaintext_and_time()[0]

    def plaintext_and_time(self) -> tuple[bytes, str]:
        """:meth:`plaintext` and :attr:`time_text` at once (the sealing path needs both).

        Written directly rather than through the JSON encoder: every key is fixed and the fields are sorted
        by hand, strings (the enumerations too: they are ``str``) go through the encoder's own string writer,
        and everything else is an integer, a boolean or ``null``. Byte-identical to
        ``canonical_json(self.to_json_obj())`` (a property test holds the two together) at a third of the
        cost.
        """
        time_text = format_time(self.time)
        details = self.details
        if details:
            detail_text = ",".join(f'"{key}":{_detail_json(details[key])}' for key in sorted(details))
        else:
            detail_text = ""
        text = (
            f'{{"action":{_string(self.action)},"actor_key_id":{_string_or_null(self.actor_key_id)},'
            f'"actor_name":{_string_or_null(self.actor_name)},'
            f'"client_address":{_string_or_null(self.client_address)},"details":{{{detail_text}}},'
            f'"outcome":{_string(self.outcome)},"purpose":{_string_or_null(self.purpose)},'
            f'"request_id":{_string_or_null(self.request_id)},"resource":{_string(self.resource)},'
            f'"role":{_string(self.role)},"seq":{int.__repr__(self.seq)},"time":"{time_text}"}}'
        )
        try:
            return text.encode("utf-8"), time_text
        except UnicodeEncodeError as exc:  # a lone surrogate: not representable (validation refuses them)
            raise RecordError("value is not representable as canonical JSON") from exc

    @property
    def time_text(self) -> str:
        """``time`` as written in the record and the leaf."""
        return format_time(self.time)

    @classmethod
    def from_json_obj(cls, obj: object) -> AuditRecord:
        """Rebuild a record from its JSON object: the fields of :meth:`to_json_obj`, strictly typed."""
        if not isinstance(obj, dict) or set(obj) != set(_FIELDS):
            raise RecordError("a record has exactly the fields " + ", ".join(_FIELDS))
        seq = obj["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise RecordError("seq must be an integer")
        for name in ("actor_key_id", "actor_name", "purpose", "request_id", "client_address"):
            if obj[name] is not None and not isinstance(obj[name], str):
                raise RecordError(f"{name} must be a string or null")
        for name in ("role", "action", "outcome", "resource"):
            if not isinstance(obj[name], str):
                raise RecordError(f"{name} must be a string")
        if not isinstance(obj["details"], dict):
            raise RecordError("details must be an object")
        record = cls(
            seq=seq,
            time=parse_time(obj["time"]),
            actor_key_id=obj["actor_key_id"],
            actor_name=obj["actor_name"],
            role=_member(ActorRole, obj["role"], "role"),
            action=_member(Action, obj["action"], "action"),
            resource=obj["resource"],
            purpose=obj["purpose"],
            outcome=_member(Outcome, obj["outcome"], "outcome"),
            request_id=obj["request_id"],
            client_address=obj["client_address"],
            details=obj["details"],
        )
        if record.to_json_obj() != obj:
            raise RecordError("the record is not in canonical form (time or address normalised differently)")
        return record

    @classmethod
    def from_plaintext(cls, plaintext: bytes) -> AuditRecord:
        """Parse and validate a canonical plaintext; refuses anything that is not byte-for-byte canonical."""
        try:
            obj = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RecordError("the plaintext is not JSON") from exc
        record = cls.from_json_obj(obj)
        if record.plaintext() != plaintext:
            raise RecordError("the plaintext is not canonical JSON")
        return record


_string: Final[Callable[[str], str]] = json.encoder.encode_basestring
"""The string writer of a ``JSONEncoder`` with ``ensure_ascii=False`` (the C one when available)."""


def _string_or_null(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _detail_json(value: DetailValue) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return _string(value)


def _member(enum_type: type[_E], value: str, name: str) -> _E:
    try:
        return enum_type(value)
    except ValueError as exc:
        raise RecordError(f"{name} is not one of the known values") from exc
