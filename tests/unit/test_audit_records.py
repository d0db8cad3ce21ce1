"""The audit record: required fields, the purpose rule, the details allow-list, canonical JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odeus_compliance.audit.records import (
    DATA_ACCESS_ACTIONS,
    DETAIL_KEYS,
    Action,
    ActorRole,
    AuditRecord,
    Outcome,
    RecordError,
    canonical_json,
    format_time,
    parse_time,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make(**overrides: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "seq": 7,
        "time": T0,
        "actor_key_id": "key_01J0",
        "actor_name": "Jördis (officer)",
        "role": ActorRole.OFFICER,
        "action": Action.REPORT_DOWNLOADED,
        "resource": "report:2026-02:r42",
        "purpose": "Monthly works-council review",
        "outcome": Outcome.SUCCESS,
        "request_id": "req-9f2c",
        "client_address": "192.0.2.10",
        "details": {"report_id": "r42", "byte_count": 52311, "format": "pdf"},
    }
    fields.update(overrides)
    return AuditRecord(**fields)


def test_canonical_plaintext_is_exact() -> None:
    r = make()
    expected = (
        '{"action":"report.downloaded","actor_key_id":"key_01J0","actor_name":"Jördis (officer)",'
        '"client_address":"192.0.2.10","details":{"byte_count":52311,"format":"pdf","report_id":"r42"},'
        '"outcome":"success","purpose":"Monthly works-council review","request_id":"req-9f2c",'
        '"resource":"report:2026-02:r42","role":"officer","seq":7,"time":"2026-03-01T12:00:00.123Z"}'
    ).encode()
    assert r.plaintext() == expected
    assert AuditRecord.from_plaintext(expected) == r
    assert canonical_json(json.loads(expected)) == expected


def test_time_is_utc_milliseconds() -> None:
    berlin = timezone(timedelta(hours=1))
    r = make(time=datetime(2026, 3, 1, 13, 0, 0, 999999, tzinfo=berlin))
    assert r.time_text == "2026-03-01T12:00:00.999Z"
    assert parse_time(r.time_text) == r.time
    with pytest.raises(RecordError):
        make(time=datetime(2026, 3, 1))  # noqa: DTZ001 - the point of the test
    for bad in ["2026-03-01T12:00:00Z", "2026-03-01T12:00:00.000+00:00", "2026-13-01T12:00:00.000Z"]:
        with pytest.raises(RecordError):
            parse_time(bad)
    assert format_time(T0) == "2026-03-01T12:00:00.123Z"


@pytest.mark.parametrize("action", sorted(DATA_ACCESS_ACTIONS))
def test_purpose_required_for_data_access(action: Action) -> None:
    with pytest.raises(RecordError, match="purpose is required"):
        make(action=action, purpose=None)
    # A refused request touched nothing: it is recorded without a purpose.
    assert make(action=action, purpose=None, outcome=Outcome.DENIED).purpose is None


def test_purpose_not_required_elsewhere() -> None:
    assert make(action=Action.KEY_ROTATED, purpose=None, role=ActorRole.ADMIN).purpose is None


@pytest.mark.parametrize("purpose", ["", " padded", "line\nbreak", "x" * 501, "nul\x00"])
def test_bad_purpose(purpose: str) -> None:
    with pytest.raises(RecordError):
        make(purpose=purpose)


@pytest.mark.parametrize(
    "details",
    [
        {"email": "a"},  # not in the allow-list
        {"report_id": "jane.doe@example.com"},  # '@' refused
        {"report_id": "Jane Doe"},  # white space refused
        {"report_id": "x" * 257},
        {"row_count": 2**53},
        {"row_count": 1.5},
        {"row_count": None},
        {"row_count": [1]},
        {f"k{i}": 1 for i in range(40)},
    ],
)
def test_details_are_restricted(details: dict[str, Any]) -> None:
    with pytest.raises(RecordError):
        make(details=details)


def test_details_allowed_values() -> None:
    r = make(
        details={"valid": True, "row_count": -(2**53 - 1), "timezone": "Europe/Berlin", "month": "2026-02"}
    )
    assert dict(r.details) == {
        "month": "2026-02",
        "row_count": -(2**53 - 1),
        "timezone": "Europe/Berlin",
        "valid": True,
    }
    assert "email" not in DETAIL_KEYS
    with pytest.raises(TypeError):
        r.details["valid"] = False  # type: ignore[index]


def test_actor_rules() -> None:
    anon = make(
        role=ActorRole.ANONYMOUS,
        actor_key_id=None,
        actor_name=None,
        action=Action.ACCESS_DENIED,
        outcome=Outcome.DENIED,
        purpose=None,
        details={"reason": "no_key"},
    )
    assert anon.actor_key_id is None
    with pytest.raises(RecordError):
        make(role=ActorRole.ANONYMOUS)
    with pytest.raises(RecordError):
        make(actor_key_id=None)
    with pytest.raises(RecordError):
        make(actor_name="")
    with pytest.raises(RecordError):
        make(actor_key_id="has space")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", -1),
        ("seq", 2**53),
        ("seq", True),
        ("role", "root"),
        ("action", "report.deleted"),
        ("outcome", "maybe"),
        ("resource", ""),
        ("resource", "report 42"),
        ("request_id", "a b"),
        ("client_address", "example.com"),
    ],
)
def test_field_validation(field: str, value: object) -> None:
    with pytest.raises(RecordError):
        make(**{field: value})


def test_client_address_is_normalised() -> None:
    assert make(client_address="::ffff:192.0.2.1").client_address == "192.0.2.1"
    assert make(client_address="2001:DB8:0:0::1").client_address == "2001:db8::1"


def test_from_json_obj_is_strict() -> None:
    obj = make().to_json_obj()
    assert AuditRecord.from_json_obj(obj) == make()
    mutations: list[Callable[[dict[str, Any]], object]] = [
        lambda o: o.pop("purpose"),
        lambda o: o.update(extra=1),
        lambda o: o.update(seq="7"),
        lambda o: o.update(details=[]),
        lambda o: o.update(role=1),
        lambda o: o.update(client_address="::ffff:192.0.2.10"),  # valid but not canonical
    ]
    for mutate in mutations:
        bad = dict(obj)
        mutate(bad)
        with pytest.raises(RecordError):
            AuditRecord.from_json_obj(bad)
    with pytest.raises(RecordError):
        AuditRecord.from_plaintext(b'{"seq": 7}')
    with pytest.raises(RecordError):
        AuditRecord.from_plaintext(json.dumps(obj, indent=1).encode())  # not canonical bytes
    with pytest.raises(RecordError):
        AuditRecord.from_plaintext(b"\xff")


@given(
    purpose=st.text(min_size=1, max_size=60).filter(lambda s: s == s.strip()),
    name=st.text(min_size=1, max_size=30).filter(lambda s: s == s.strip()),
    count=st.integers(-(2**53 - 1), 2**53 - 1),
)
def test_round_trip_property(purpose: str, name: str, count: int) -> None:
    try:
        r = make(purpose=purpose, actor_name=name, details={"count": count})
    except RecordError:
        return  # control characters or surrogates: refused, fine
    assert AuditRecord.from_plaintext(r.plaintext()) == r
    assert canonical_json(json.loads(r.plaintext())) == r.plaintext()


@given(st.datetimes(timezones=st.timezones()))
def test_fast_format_time_equals_strftime(moment: datetime) -> None:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return
    expected = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert format_time(moment) == expected


_DETAIL_VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.from_regex(r"[A-Za-z0-9._:/=,+*#-]{0,20}", fullmatch=True),
)


@given(
    name=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    purpose=st.one_of(st.none(), st.text(min_size=1, max_size=60)),
    request_id=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True)),
    address=st.one_of(st.none(), st.ip_addresses().map(str)),
    details=st.dictionaries(st.sampled_from(sorted(DETAIL_KEYS)), _DETAIL_VALUES, max_size=6),
    role=st.sampled_from(list(ActorRole)),
    action=st.sampled_from(list(Action)),
    outcome=st.sampled_from(list(Outcome)),
    seq=st.integers(0, 2**53 - 1),
    moment=st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.timezones()),  # noqa: DTZ001 - bound
)
def test_written_plaintext_is_the_encoders_canonical_json(
    name: str | None,
    purpose: str | None,
    request_id: str | None,
    address: str | None,
    details: dict[str, Any],
    role: ActorRole,
    action: Action,
    outcome: Outcome,
    seq: int,
    moment: datetime,
) -> None:
    """``plaintext`` writes the JSON by hand: byte for byte what the canonical encoder makes of the record."""
    anonymous = role is ActorRole.ANONYMOUS
    try:
        r = make(
            seq=seq,
            time=moment,
            role=role,
            actor_key_id=None if anonymous else "key_01J0",
            actor_name=None if anonymous else name,
            action=action,
            outcome=outcome,
            purpose=purpose,
            request_id=request_id,
            client_address=address,
            details=details,
        )
    except (RecordError, OverflowError):
        return  # broke a rule (control characters, a missing purpose, ...): nothing to write
    plaintext, time_text = r.plaintext_and_time()
    assert plaintext == canonical_json(r.to_json_obj())
    assert time_text == r.time_text
    assert AuditRecord.from_plaintext(plaintext) == r
