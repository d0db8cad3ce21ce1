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


RAW = b"\xfb\xff" * 16  # base64 "+//7...": holds both characters the URL-safe alphabet replaces


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
        "  " + base64.b64encode(RAW).decode()[:20] + "\n" + base64.b64encode(RAW).decode()[20:] + "\n",
    ],
)
def test_master_key_forms_that_decode_to_the_key(text: str) -> None:
    s = Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY": text})
    assert s.require_master_key() == RAW


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(RAW).decode() + "!!",  # stray characters were skipped before
        base64.b64encode(RAW).decode()[:-1] + "#=",
        '"' + base64.b64encode(RAW).decode() + '"',  # pasted with its quotes
        base64.b64encode(RAW).decode().replace("+", "-", 1),  # mixed alphabets
        "=" + base64.b64encode(RAW).decode(),
        "   ",
        RAW.hex(),
    ],
)
def test_damaged_master_key_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY") as info:
        Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY": text})
    if text.strip():
        assert text.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:pw@db:5432/x", "postgresql+asyncpg://u:pw@db:5432/x"),
        ("postgresql://u:pw@db/x", "postgresql+asyncpg://u:pw@db/x"),
        ("postgresql+asyncpg://u:pw@db/x", "postgresql+asyncpg://u:pw@db/x"),
        ("postgresql+psycopg://u:pw@db/x", "postgresql+asyncpg://u:pw@db/x"),
        ("postgres://u:p%40w@db/x?sslmode=require", "postgresql+asyncpg://u:p%40w@db/x?ssl=require"),
        ("sqlite:////srv/oc.sqlite3", "sqlite+aiosqlite:////srv/oc.sqlite3"),
    ],
)
def test_database_url_forms_are_normalised(url: str, expected: str) -> None:
    assert Settings.from_env(env(ODEUS_COMPLIANCE_DATABASE_URL=url)).database_url == expected


def test_master_key_file_forms(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.urlsafe_b64encode(RAW).decode().rstrip("=") + "\r\n")
    s = Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(key_file)})
    assert s.require_master_key() == RAW
    key_file.write_bytes(b"\xff" * 44)
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY_FILE"):
        Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(key_file)})
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY_FILE"):
        Settings.from_env({"ODEUS_API_KEY": "x", "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(tmp_path)})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"ODEUS_API_KEY=\xff\xfe-secret\n", "cannot be read as UTF-8"),
        (b'ODEUS_API_KEY=k\nODEUS_COMPLIANCE_MASTER_KEY="unterminated-secret\n', "line 2 cannot be parsed"),
    ],
)
def test_a_broken_dotenv_is_refused_in_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(content)
    with pytest.raises(ConfigurationError, match=expected) as info:
        load_environment(dotenv, {})
    assert "\n" not in str(info.value)
    assert "secret" not in str(info.value)


def test_errors_and_settings_never_show_secrets_in_repr(tmp_path: Path) -> None:
    s = Settings.from_env(env(ODEUS_COMPLIANCE_DATABASE_URL="postgres://u:db-password-xyz@db/x"))
    assert "db-password-xyz" not in repr(s)
    assert KEY not in repr(s)
    assert "db-password-xyz" not in str(s)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env(ODEUS_COMPLIANCE_DATABASE_URL="mysql://u:db-password-xyz@db/x"))
    assert "db-password-xyz" not in repr(info.value)
    assert "db-password-xyz" not in str(info.value)


def test_commands_that_never_call_odeus_do_not_need_its_api_key() -> None:
    settings = Settings.from_env({"ODEUS_COMPLIANCE_MASTER_KEY": KEY}, upstream=False)
    assert settings.odeus_api_key is None
    assert settings.require_master_key() == base64.b64decode(KEY)
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY"):
        Settings.from_env({}, upstream=False)  # the master key stays required


def test_report_concurrency_and_fetch_limits(tmp_path: Path) -> None:
    defaults = Settings.from_env(env(ODEUS_COMPLIANCE_DATA_DIR=str(tmp_path)))
    assert defaults.report_concurrency == 2
    assert defaults.fetch_deadline_seconds == 1800.0
    assert defaults.fetch_min_bytes_per_second == 1024.0
    assert defaults.fetch_throughput_window_seconds == 60.0
    s = Settings.from_env(
        env(
            ODEUS_COMPLIANCE_REPORT_CONCURRENCY="4",
            ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS="600",
            ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND="512",
            ODEUS_COMPLIANCE_FETCH_THROUGHPUT_WINDOW_SECONDS="30",
        )
    )
    assert (s.report_concurrency, s.fetch_deadline_seconds) == (4, 600.0)
    assert (s.fetch_min_bytes_per_second, s.fetch_throughput_window_seconds) == (512.0, 30.0)
    for variable, value in (
        ("ODEUS_COMPLIANCE_REPORT_CONCURRENCY", "0"),
        ("ODEUS_COMPLIANCE_REPORT_CONCURRENCY", "1.5"),
        ("ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS", "-1"),
    ):
        with pytest.raises(ConfigurationError, match=variable):
            Settings.from_env(env(**{variable: value}))


def test_the_demo_certificate_is_not_allowed_unless_said_so(tmp_path: Path) -> None:
    default = Settings.from_env(env(ODEUS_COMPLIANCE_DATA_DIR=str(tmp_path)))
    assert default.allow_demo_certificate is False
    assert default.demo_certificate_allowed is False
    assert Settings.from_env(env(), demo=True).demo_certificate_allowed  # the demo command signs with it
    for text, expected in (("true", True), ("1", True), ("YES", True), ("false", False), ("0", False)):
        allowed = Settings.from_env(env(ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=text))
        assert allowed.demo_certificate_allowed is expected, text
    with pytest.raises(
        ConfigurationError, match="ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE must be true or false"
    ):
        Settings.from_env(env(ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE="maybe"))
