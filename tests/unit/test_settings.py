"""Settings: secrets required outside the demo, refused with one line naming the variable, never shown."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.settings import Secret, Settings, load_environment

KEY = base64.b64encode(os.urandom(32)).decode()
UPSTREAM = "upstream-secret-abc"


def env(**extra: str) -> dict[str, str]:
    return {"ODEUS_COMPLIANCE_MASTER_KEY": KEY, "ODEUS_API_KEY": UPSTREAM, **extra}


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(ODEUS_COMPLIANCE_DATA_DIR=str(tmp_path)))
    assert s.data_dir == tmp_path
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'odeus-compliance.sqlite3'}"
    assert s.odeus_base_url == "https://api.odeus.ai"
    assert s.master_key is not None
    assert s.master_key.reveal() == base64.b64decode(KEY)
    assert s.download_hosts == frozenset()
    assert s.tsa_url is None
    assert s.log_level == "INFO"
    assert s.policy_dir.name == "policies"
    assert s.template_dir.name == "report_templates"


def test_everything_set(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            ODEUS_COMPLIANCE_DATABASE_URL="postgresql://u:pw@db/x",
            ODEUS_BASE_URL="http://127.0.0.1:9000",
            ODEUS_COMPLIANCE_SIGNING_KEY_FILE=str(tmp_path / "k.pem"),
            ODEUS_COMPLIANCE_SIGNING_CERT_FILE=str(tmp_path / "c.pem"),
            ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE=str(tmp_path / "s.p12"),
            ODEUS_COMPLIANCE_SIGNING_PKCS12_PASSWORD="p12-secret",
            ODEUS_COMPLIANCE_TSA_URL="https://tsa.example",
            ODEUS_COMPLIANCE_POLICY_DIR=str(tmp_path / "pol"),
            ODEUS_COMPLIANCE_TEMPLATE_DIR=str(tmp_path / "tpl"),
            ODEUS_COMPLIANCE_DOWNLOAD_HOSTS="127.0.0.1, LocalHost",
            ODEUS_COMPLIANCE_LOG_LEVEL="debug",
        )
    )
    assert s.database_url == "postgresql+asyncpg://u:pw@db/x"
    assert not s.is_sqlite
    assert s.odeus_base_url == "http://127.0.0.1:9000"
    assert s.signing_pkcs12_password == Secret("p12-secret")
    assert s.policy_dir == tmp_path / "pol"
    assert s.template_dir == tmp_path / "tpl"
    assert s.download_hosts == {"127.0.0.1", "localhost"}
    assert s.log_level == "DEBUG"
    assert s.tsa_url == "https://tsa.example"


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            ODEUS_COMPLIANCE_DATABASE_URL="postgresql+asyncpg://u:db-password-xyz@db/x",
            ODEUS_COMPLIANCE_SIGNING_PKCS12_PASSWORD="p12-secret",
        )
    )
    for text in (repr(s), str(s), repr(s.master_key), str(s.odeus_api_key)):
        assert KEY not in text
        assert UPSTREAM not in text
        assert "p12-secret" not in text
        assert "db-password-xyz" not in text
    assert "Secret('**********')" in repr(s)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"ODEUS_API_KEY": "x"}, "ODEUS_COMPLIANCE_MASTER_KEY"),
        (
            {"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY": "not base64!!"},
            "ODEUS_COMPLIANCE_MASTER_KEY",
        ),
        (
            {"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(b"short").decode()},
            "ODEUS_COMPLIANCE_MASTER_KEY",
        ),
        ({"ODEUS_COMPLIANCE_MASTER_KEY": KEY}, "ODEUS_API_KEY"),
        (env(ODEUS_COMPLIANCE_MASTER_KEY_FILE="/nonexistent/key"), "ODEUS_COMPLIANCE_MASTER_KEY_FILE"),
        (env(ODEUS_COMPLIANCE_DATABASE_URL="mysql://x/y"), "ODEUS_COMPLIANCE_DATABASE_URL"),
        (env(ODEUS_COMPLIANCE_LOG_LEVEL="chatty"), "ODEUS_COMPLIANCE_LOG_LEVEL"),
        (env(ODEUS_BASE_URL="ftp://x"), "ODEUS_BASE_URL"),
    ],
)
def test_refused_with_one_line_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(environ)
    message = str(info.value)
    assert variable in message
    assert "\n" not in message
    for value in environ.values():
        if len(value) > 8 and value not in {"/nonexistent/key"}:
            assert value not in message


def test_short_key_value_not_echoed() -> None:
    bad = base64.b64encode(b"sixteen-byte-key").decode()
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY": bad})
    assert bad not in str(info.value)


def test_master_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY + "\n")
    s = Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(key_file)})
    assert s.require_master_key() == base64.b64decode(KEY)
    with pytest.raises(ConfigurationError, match="only one"):
        Settings.from_env(env(ODEUS_COMPLIANCE_MASTER_KEY_FILE=str(key_file)))


def test_demo_needs_no_secrets() -> None:
    s = Settings.from_env({}, demo=True)
    assert s.master_key is None
    assert s.odeus_api_key is None
    assert s.demo
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY"):
        s.require_master_key()


def test_frozen(tmp_path: Path) -> None:
    s = Settings.for_tests(tmp_path)
    with pytest.raises(AttributeError):
        s.log_level = "DEBUG"  # type: ignore[misc]


def test_dotenv_does_not_override_real_variables(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ODEUS_API_KEY=from-dotenv\nODEUS_COMPLIANCE_LOG_LEVEL=DEBUG\n")
    merged = load_environment(dotenv, {"ODEUS_API_KEY": "from-env"})
    assert merged["ODEUS_API_KEY"] == "from-env"
    assert merged["ODEUS_COMPLIANCE_LOG_LEVEL"] == "DEBUG"
    assert "ODEUS_API_KEY" not in os.environ or os.environ["ODEUS_API_KEY"] != "from-dotenv"
