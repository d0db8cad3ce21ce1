"""The pieces behind the download checks and clean error messages: address classes, allow-list entries,
known error codes, message cleaning, and the settings that feed them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.address_guard import refusal
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.download_target import parse_entry
from odeus_compliance.upstream.error_codes import known_error
from odeus_compliance.upstream.errors import MAX_MESSAGE_CHARS, UpstreamBadRequest


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not publicly routable"),
        ("192.0.2.1", "private"),  # documentation range
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    found = refusal(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::5db8:d822"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("storage.example.com", "storage.example.com", None),
        ("Storage.Example.com:8443", "storage.example.com", 8443),
        (".example.com", ".example.com", None),
        ("127.0.0.1:9001", "127.0.0.1", 9001),
        ("[::1]:9001", "::1", 9001),
        ("::1", "::1", None),
    ],
)
def test_allow_list_entries(text: str, host: str, port: int | None) -> None:
    entry = parse_entry(text)
    assert (entry.host, entry.port) == (host, port)


@pytest.mark.parametrize(
    "text", ["http://x.com", "x.com:0", "x.com:99999", "[nothost]:1", "a b", "x.com/path"]
)
def test_malformed_allow_list_entries_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="download host"):
        parse_entry(text)
    with pytest.raises(ValueError, match="download host"):
        OdeusClientConfig(api_key="sk-x", download_hosts=frozenset({text}))


def test_only_known_error_codes_are_named_in_our_spelling() -> None:
    assert known_error("invalid   DATE range") == "Invalid date range"
    assert known_error("Export too large") == "Export too large"
    assert known_error("Invalid date range \x1b[31m") is None
    assert known_error("jane.doe@example.com") is None
    assert known_error("Bad Request" + " " * 100) is None  # longer than any code: not even normalised


def test_messages_lose_control_and_format_characters_and_stay_bounded() -> None:
    error = UpstreamBadRequest("a\x1b[31mb\r\nc\u202ed\x00" + "x" * 2000)
    assert error.message.startswith("a[31mb  cd")
    assert "\x1b" not in error.message
    assert "\u202e" not in error.message
    assert len(error.message) == MAX_MESSAGE_CHARS
    assert str(error) == error.message


def test_the_settings_read_the_allow_list_and_the_answer_cap(tmp_path: Path) -> None:
    env = {
        "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path),
        "ODEUS_API_KEY": "sk-x",
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": "storage.example.com:8443, 127.0.0.1:9001, [::1]:9002",
        "ODEUS_COMPLIANCE_UPSTREAM_MAX_ANSWER_MB": "512",
    }
    settings = Settings.from_env(env, demo=True)
    assert settings.download_hosts == {"storage.example.com:8443", "127.0.0.1:9001", "[::1]:9002"}
    assert settings.upstream_max_answer_mb == 512
    assert (
        Settings.from_env(
            {**env, "ODEUS_COMPLIANCE_UPSTREAM_MAX_ANSWER_MB": ""}, demo=True
        ).upstream_max_answer_mb
        == 2048
    )
    for bad in (
        {"ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": "https://storage.example.com/"},
        {"ODEUS_COMPLIANCE_UPSTREAM_MAX_ANSWER_MB": "0"},
    ):
        with pytest.raises(ConfigurationError, match=r"DOWNLOAD_HOSTS|MAX_ANSWER_MB"):
            Settings.from_env({**env, **bad}, demo=True)
