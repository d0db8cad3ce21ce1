"""The console's settings: OIDC all or nothing, a role map that names only console roles, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.settings import Settings
from odeus_compliance.settings_check import settings_with_warnings

_BASE = {
    "ODEUS_COMPLIANCE_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "ODEUS_API_KEY": "upstream",
}
_OIDC = {
    "ODEUS_COMPLIANCE_OIDC_ISSUER": "https://idp.example/realms/acme/",
    "ODEUS_COMPLIANCE_OIDC_CLIENT_ID": "odeus-compliance",
    "ODEUS_COMPLIANCE_OIDC_CLIENT_SECRET": "s3cret-value",
    "ODEUS_COMPLIANCE_OIDC_ROLE_MAP": "compliance=officer, audit = auditor,it-admins=admin",
    "ODEUS_COMPLIANCE_PUBLIC_URL": "https://compliance.example",
}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({**_BASE, "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path), **env})


def test_no_oidc_variables_means_links_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.oidc is None
    assert (settings.console_idle_minutes, settings.console_session_hours) == (30, 10)


def test_a_full_oidc_configuration_is_read_with_its_role_map_in_order(tmp_path: Path) -> None:
    oidc = _settings(tmp_path, **_OIDC).oidc
    assert oidc is not None
    assert oidc.issuer == "https://idp.example/realms/acme"  # the trailing slash is not part of the issuer
    assert list(oidc.role_map.items()) == [
        ("compliance", "officer"),
        ("audit", "auditor"),
        ("it-admins", "admin"),
    ]
    assert oidc.role_claim == "groups"
    assert "s3cret-value" not in repr(oidc)


@pytest.mark.parametrize(
    "missing", ["ODEUS_COMPLIANCE_OIDC_CLIENT_ID", "ODEUS_COMPLIANCE_OIDC_CLIENT_SECRET"]
)
def test_a_partial_oidc_configuration_is_refused_naming_what_is_missing(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in _OIDC.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        _settings(tmp_path, **env)


@pytest.mark.parametrize("mapping", ["", "compliance=root", "=officer", "compliance"])
def test_a_role_map_must_give_console_roles(tmp_path: Path, mapping: str) -> None:
    with pytest.raises(ConfigurationError, match="ROLE_MAP") as caught:
        _settings(tmp_path, **{**_OIDC, "ODEUS_COMPLIANCE_OIDC_ROLE_MAP": mapping})
    assert "s3cret-value" not in str(caught.value)


def test_a_role_claim_must_be_a_claim_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ROLE_CLAIM"):
        _settings(tmp_path, **{**_OIDC, "ODEUS_COMPLIANCE_OIDC_ROLE_CLAIM": "groups; drop"})


def test_timeouts_are_positive_whole_numbers(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, ODEUS_COMPLIANCE_CONSOLE_IDLE_MINUTES="5", ODEUS_COMPLIANCE_CONSOLE_SESSION_HOURS="2"
    )
    assert (settings.console_idle_minutes, settings.console_session_hours) == (5, 2)
    with pytest.raises(ConfigurationError, match="CONSOLE_IDLE_MINUTES"):
        _settings(tmp_path, ODEUS_COMPLIANCE_CONSOLE_IDLE_MINUTES="0")


def test_console_variables_are_known_settings(tmp_path: Path) -> None:
    env = {
        **_BASE,
        "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path),
        **_OIDC,
        "ODEUS_COMPLIANCE_OIDC_ROLECLAIM": "x",
    }
    _settings_read, warnings = settings_with_warnings(env)
    assert warnings == [
        (
            "warning: ODEUS_COMPLIANCE_OIDC_ROLECLAIM is not a setting of odeus-compliance; "
            "did you mean ODEUS_COMPLIANCE_OIDC_ROLE_CLAIM?"
        )
    ]


def test_oidc_needs_the_public_url_for_its_redirect_uri(tmp_path: Path) -> None:
    env = {k: v for k, v in _OIDC.items() if k != "ODEUS_COMPLIANCE_PUBLIC_URL"}
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_PUBLIC_URL"):
        _settings(tmp_path, **env)
