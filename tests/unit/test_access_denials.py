"""The pieces of the denial counters: windows every replica agrees on, who counts as one client, the sealed
subject, and the settings."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from odeus_compliance.audit.appender import ANONYMOUS, Actor
from odeus_compliance.audit.denial_subject import DenialSealer, Subject, SubjectError, client_bucket
from odeus_compliance.audit.denials import DenialRules
from odeus_compliance.audit.records import ActorRole
from odeus_compliance.errors import ConfigurationError
from odeus_compliance.settings import Settings

BASE_ENV = {"ODEUS_COMPLIANCE_MASTER_KEY": "A" * 43 + "=", "ODEUS_API_KEY": "upstream"}


def test_windows_are_aligned_to_the_epoch_and_half_open() -> None:
    rules = DenialRules(window_seconds=60, records=10, limit=100)
    start, end = rules.window(dt.datetime(2026, 12, 7, 10, 0, 59, 999000, tzinfo=dt.UTC))
    assert (start, end) == (
        dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 7, 10, 1, tzinfo=dt.UTC),
    )
    assert rules.window(end)[0] == end  # the end belongs to the next window
    # the same bounds whatever the zone the clock reports in (replicas agree)
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert rules.window(dt.datetime(2026, 12, 7, 11, 0, 30, tzinfo=berlin)) == (start, end)
    odd = DenialRules(window_seconds=1.5, records=1, limit=1)
    first = odd.window(dt.datetime(1970, 1, 1, 0, 0, 2, tzinfo=dt.UTC))
    assert first == (
        dt.datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, 0, 0, 3, tzinfo=dt.UTC),
    )


def test_one_client_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert client_bucket("192.0.2.7") == "192.0.2.7"
    assert client_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    assert (
        client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket(None) == client_bucket("not-an-address") == "unknown"


def test_the_subject_is_tagged_and_sealed_never_stored_in_clear() -> None:
    master = secrets.token_bytes(32)
    sealer = DenialSealer(master)
    key = Actor("k-1", "Erika's laptop", ActorRole.OFFICER)
    subject = Subject("2001:db8:1:2::1", key)
    tag = sealer.tag(subject)
    # one counter per client and key: another address of the same /64 shares it, another key does not
    assert sealer.tag(Subject("2001:db8:1:2::99", key)) == tag
    assert sealer.tag(Subject("2001:db8:1:2::1", ANONYMOUS)) != tag
    assert "2001" not in tag
    sealed = sealer.seal(subject, tag)
    assert b"2001:db8" not in sealed
    assert b"Erika" not in sealed
    assert sealer.open(sealed, tag) == subject
    with pytest.raises(SubjectError):
        sealer.open(sealed, sealer.tag(Subject("192.0.2.1", key)))  # bound to its row
    with pytest.raises(SubjectError):
        DenialSealer(secrets.token_bytes(32)).open(sealed, tag)
    assert "*" in repr(sealer)


def test_denial_settings() -> None:
    defaults = Settings.from_env(BASE_ENV)
    assert (defaults.denial_window_seconds, defaults.denial_records, defaults.denial_limit) == (60.0, 10, 100)
    env = {
        **BASE_ENV,
        "ODEUS_COMPLIANCE_DENIAL_WINDOW_SECONDS": "5",
        "ODEUS_COMPLIANCE_DENIAL_RECORDS": "0",
        "ODEUS_COMPLIANCE_DENIAL_LIMIT": "3",
    }
    settings = Settings.from_env(env)
    assert (settings.denial_window_seconds, settings.denial_records, settings.denial_limit) == (5.0, 0, 3)
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_DENIAL_LIMIT must be at least"):
        Settings.from_env({**env, "ODEUS_COMPLIANCE_DENIAL_RECORDS": "4"})
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_DENIAL_RECORDS") as caught:
            Settings.from_env({**env, "ODEUS_COMPLIANCE_DENIAL_RECORDS": bad})
        assert bad not in str(caught.value)
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_DENIAL_WINDOW_SECONDS"):
        Settings.from_env({**env, "ODEUS_COMPLIANCE_DENIAL_WINDOW_SECONDS": "0"})
