"""Typed, frozen settings read from the environment (and an optional ``.env``).

Why frozen and passed around explicitly: the app factory, the CLI and the tests each build their own
``Settings`` and hand it down; nothing reads ``os.environ`` after start-up and no module holds config.

Closed by default: a missing or malformed secret outside the demo is refused with one line that names the
variable and never repeats its value. Secret values are wrapped in :class:`Secret`, whose ``repr``/``str``
show only asterisks, so a settings object can be logged or shown in a traceback without leaking anything.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import os
import re
import secrets
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Final, Generic, TypeVar
from urllib.parse import urlsplit

from odeus_compliance.errors import ConfigurationError

__all__ = [
    "CONSOLE_ROLES",
    "ENV_PREFIX",
    "OidcSettings",
    "Secret",
    "Settings",
    "load_environment",
    "shipped_dir",
]

T = TypeVar("T")

ENV_PREFIX: Final = "ODEUS_COMPLIANCE_"
MASTER_KEY_VAR: Final = "ODEUS_COMPLIANCE_MASTER_KEY"
MASTER_KEY_FILE_VAR: Final = "ODEUS_COMPLIANCE_MASTER_KEY_FILE"
MASTER_KEY_BYTES: Final = 32
DEFAULT_BASE_URL: Final = "https://api.odeus.ai"
LOG_LEVELS: Final = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
SQLITE_FILE_NAME: Final = "odeus-compliance.sqlite3"
WEBHOOK_KEY_PREFIX: Final = "ODEUS_COMPLIANCE_WEBHOOK_"
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}")
_POSTGRES_SCHEMES: Final = frozenset({"postgres", "postgresql"})
# host, host:port, .domain[:port], [IPv6]:port or a bare IPv6 address (checked in full by the upstream client)
_DOWNLOAD_HOST: Final = re.compile(
    r"(?:\.?[a-z0-9][a-z0-9.-]*|\[[0-9a-f:.]+\])(?::\d{1,5})?|[0-9a-f:.]*:[0-9a-f:.]*"
)
_GENERATE_HINT: Final = (
    'generate one with: python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"'
)


class Secret(Generic[T]):
    """A value that must not be shown: ``repr`` and ``str`` print asterisks; read it with :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The wrapped value. Call it only where the secret is used, never to log or print it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        a, b = self._value, other._value
        if isinstance(a, bytes | str) and isinstance(b, bytes | str) and type(a) is type(b):
            return secrets.compare_digest(a, b)  # type: ignore[arg-type]
        return bool(a == b)

    def __hash__(self) -> int:
        return hash((Secret, type(self._value)))


def shipped_dir(name: str) -> Path:
    """Where the shipped ``policies``/``report_templates`` folder is.

    In a wheel, hatch's ``force-include`` puts them at ``odeus_compliance/_shipped/<name>``; in an editable
    install (the source tree) they are the repository's top-level folders.
    """
    packaged = resources.files("odeus_compliance").joinpath("_shipped", name)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / name


def load_environment(
    dotenv_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment overlaid on an optional ``.env`` file (real variables win).

    The ``.env`` is read without touching ``os.environ``, so nothing else in the process sees its secrets.
    A ``.env`` that cannot be read or parsed is refused (one line naming the line number, never its content):
    silently skipping a line could drop a setting, and the parser's own warning is a second line on stderr.
    """
    from dotenv import dotenv_values  # noqa: PLC0415 - only the CLI needs it
    from dotenv.parser import parse_stream  # noqa: PLC0415

    path = Path(".env") if dotenv_path is None else dotenv_path
    merged: dict[str, str] = {}
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path} cannot be read as UTF-8 text ({type(exc).__name__})") from None
        for binding in parse_stream(io.StringIO(text)):
            if binding.error:
                raise ConfigurationError(f"{path} line {binding.original.line} cannot be parsed")
        values = dotenv_values(stream=io.StringIO(text))
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _decode_master_key(raw: str, variable: str) -> Secret[bytes]:
    """Standard or URL-safe base64, padding optional, whitespace ignored; anything else is refused.

    Strict on purpose: a lenient decoder skips stray characters, so a damaged key (a pasted quote, a
    truncated line) could decode to some other 32 bytes instead of being refused.
    """
    text = "".join(raw.split())
    if not _BASE64.fullmatch(text):
        raise ConfigurationError(f"{variable} is not valid base64; {_GENERATE_HINT}")
    text = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{variable} is not valid base64; {_GENERATE_HINT}") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigurationError(
            f"{variable} must decode to exactly {MASTER_KEY_BYTES} bytes (got {len(key)}); {_GENERATE_HINT}"
        )
    return Secret(key)


def read_master_key_file(path: Path) -> Secret[bytes]:
    """The master key from a file holding it in base64 (what ``..._MASTER_KEY_FILE`` names)."""
    try:
        content = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{MASTER_KEY_FILE_VAR} names a file that cannot be read ({type(exc).__name__})"
        ) from None
    return _decode_master_key(content, MASTER_KEY_FILE_VAR)


def _read_master_key(env: Mapping[str, str], *, required: bool) -> Secret[bytes] | None:
    value = env.get(MASTER_KEY_VAR, "")
    file_name = env.get(MASTER_KEY_FILE_VAR, "")
    if value and file_name:
        raise ConfigurationError(f"set only one of {MASTER_KEY_VAR} and {MASTER_KEY_FILE_VAR}, not both")
    if file_name:
        return read_master_key_file(Path(file_name))
    if value:
        return _decode_master_key(value, MASTER_KEY_VAR)
    if required:
        raise ConfigurationError(
            f"{MASTER_KEY_VAR} (or {MASTER_KEY_FILE_VAR}) is required: 32 random bytes, base64; "
            f"{_GENERATE_HINT}"
        )
    return None


def _normalise_database_url(raw: str) -> str:
    """Accept the async drivers we ship (aiosqlite, asyncpg); map the plain scheme names onto them."""
    # SQLAlchemy is imported here, not at module level: reading settings must stay cheap for the CLI
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigurationError("ODEUS_COMPLIANCE_DATABASE_URL is not a valid SQLAlchemy URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in _POSTGRES_SCHEMES:  # postgres:// is what Heroku, Render and psql print
        url = url.set(drivername="postgresql+asyncpg")
        if "sslmode" in url.query:  # libpq's name; asyncpg takes the same values as "ssl"
            sslmode = url.query["sslmode"]
            url = url.difference_update_query(["sslmode"])
            if "ssl" not in url.query:
                url = url.update_query_dict({"ssl": sslmode})
    else:
        raise ConfigurationError(
            "ODEUS_COMPLIANCE_DATABASE_URL must be sqlite+aiosqlite:///... or postgresql+asyncpg://..."
        )
    return url.render_as_string(hide_password=False)


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _positive(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        number = 0
    if not 0 < number < 10**9:
        kind = "a positive whole number" if integer else "a positive number of seconds"
        raise ConfigurationError(f"{name} must be {kind}")
    return number


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no setting: unset or empty is no; a value that is neither is refused (a typo must not pass)."""
    value = env.get(name, "").strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise ConfigurationError(f"{name} must be true or false")


def _denial_settings(env: Mapping[str, str]) -> tuple[float, int, int]:
    """The window, the number of refusals recorded one by one, and the limit before 429."""
    records_var = "ODEUS_COMPLIANCE_DENIAL_RECORDS"
    records_text = env.get(records_var, "").strip() or "10"
    if not (records_text.isascii() and records_text.isdigit()) or int(records_text) >= 10**9:
        raise ConfigurationError(f"{records_var} must be a whole number, 0 or more")
    records = int(records_text)
    limit = int(_positive(env, "ODEUS_COMPLIANCE_DENIAL_LIMIT", 100, integer=True))
    if limit < records:
        raise ConfigurationError(f"ODEUS_COMPLIANCE_DENIAL_LIMIT must be at least {records_var}")
    return _positive(env, "ODEUS_COMPLIANCE_DENIAL_WINDOW_SECONDS", 60.0), records, limit


def _download_hosts(raw: str) -> frozenset[str]:
    hosts = frozenset(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not _DOWNLOAD_HOST.fullmatch(host):
            raise ConfigurationError(
                "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS must list host, host:port, .domain or [IPv6]:port entries"
            )
    return hosts


def _notify_url(env: Mapping[str, str], name: str) -> str | None:
    """A webhook URL: https, or plain http to this host's loopback address; no user or password (errors name
    the variable, never the value: a URL may carry a token)."""
    value = env.get(name, "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    loopback = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"}
    if (parts.scheme != "https" and not loopback) or not parts.hostname or parts.username or parts.password:
        msg = f"{name} must be an https:// URL without user or password (plain http only to loopback)"
        raise ConfigurationError(msg)
    return value


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated plain e-mail addresses (errors name the entry's number, never the address)."""
    entries = tuple(a.strip() for a in env.get(name, "").split(",") if a.strip())
    for number, address in enumerate(entries, start=1):
        if not re.fullmatch(r"[!-?A-~]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}", address):
            raise ConfigurationError(f"{name} entry {number} is not a plain e-mail address")
    return entries


def _https_or_http_url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name, "").strip() or default
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigurationError(f"{name} must be an http(s) URL")
    return value


CONSOLE_ROLES: Final = frozenset({"officer", "auditor", "admin"})
_CLAIM_NAME: Final = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OidcSettings:
    """The company's identity provider for console sign-in (``ODEUS_COMPLIANCE_OIDC_*``)."""

    issuer: str
    """The provider's issuer URL (discovery at ``/.well-known/openid-configuration`` below it)."""
    client_id: str
    """This service's client id at the provider."""
    client_secret: Secret[str]
    """Its client secret (sent to the token endpoint only)."""
    role_claim: str = "groups"
    """The ID token claim that lists the person's groups."""
    role_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Group -> console role; a person in no mapped group cannot sign in."""


def _oidc(env: Mapping[str, str]) -> OidcSettings | None:
    """All of issuer, client id, secret and role map, or none of them (sign-in by one-time links only)."""
    prefix = "ODEUS_COMPLIANCE_OIDC_"
    issuer = _https_or_http_url(env, prefix + "ISSUER", None)
    client_id = env.get(prefix + "CLIENT_ID", "").strip()
    secret = env.get(prefix + "CLIENT_SECRET", "").strip()
    claim = env.get(prefix + "ROLE_CLAIM", "").strip() or "groups"
    mapping = env.get(prefix + "ROLE_MAP", "").strip()
    if not (issuer or client_id or secret or mapping):
        return None
    missing = [
        prefix + name
        for name, value in (("ISSUER", issuer), ("CLIENT_ID", client_id), ("CLIENT_SECRET", secret))
        if not value
    ]
    if missing:
        raise ConfigurationError(f"console sign-in by OIDC also needs {', '.join(missing)}")
    if not _CLAIM_NAME.fullmatch(claim):
        raise ConfigurationError(f"{prefix}ROLE_CLAIM must be a claim name")
    role_map: dict[str, str] = {}
    for number, entry in enumerate((e.strip() for e in mapping.split(",") if e.strip()), start=1):
        group, _, role = entry.rpartition("=")
        if not group.strip() or role.strip() not in CONSOLE_ROLES:
            raise ConfigurationError(
                f"{prefix}ROLE_MAP entry {number} must be group=role with role officer, auditor or admin"
            )
        role_map[group.strip()] = role.strip()
    if not role_map:
        raise ConfigurationError(f"{prefix}ROLE_MAP is required: group=role,... (who may use the console)")
    if not _https_or_http_url(env, "ODEUS_COMPLIANCE_PUBLIC_URL", None):
        # the redirect URI sent to the provider must not come from a request's Host header
        raise ConfigurationError(
            "console sign-in by OIDC also needs ODEUS_COMPLIANCE_PUBLIC_URL (the redirect URI registered "
            "at the identity provider is <public URL>/console/sign-in/oidc/callback)"
        )
    return OidcSettings(
        issuer=(issuer or "").rstrip("/"),
        client_id=client_id,
        client_secret=Secret(secret),
        role_claim=claim,
        role_map=role_map,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Settings:
    """Everything the service reads from its environment, validated once.

    Build it with :meth:`from_env` (the CLI) or directly / with :meth:`for_tests` (tests, the demo).
    """

    data_dir: Path
    """Where the SQLite file, the key ring and the artifacts live (``ODEUS_COMPLIANCE_DATA_DIR``)."""
    database_url: str
    """SQLAlchemy async URL (``ODEUS_COMPLIANCE_DATABASE_URL``); may hold a password, masked in ``repr``."""
    master_key: Secret[bytes] | None
    """The 32-byte key-encryption key; ``None`` only in the demo before it makes its own."""
    odeus_base_url: str = DEFAULT_BASE_URL
    """The upstream Odeus API (``ODEUS_BASE_URL``)."""
    odeus_api_key: Secret[str] | None = None
    """The upstream API key (``ODEUS_API_KEY``); required outside the demo."""
    signing_key_file: Path | None = None
    """PEM private key for report signatures (``ODEUS_COMPLIANCE_SIGNING_KEY_FILE``)."""
    signing_cert_file: Path | None = None
    """PEM certificate (chain) matching the signing key (``ODEUS_COMPLIANCE_SIGNING_CERT_FILE``)."""
    signing_pkcs12_file: Path | None = None
    """Alternatively a PKCS#12 bundle (``ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE``)."""
    signing_pkcs12_password: Secret[str] | None = None
    """Its password (``ODEUS_COMPLIANCE_SIGNING_PKCS12_PASSWORD``)."""
    allow_demo_certificate: bool = False
    """Whether reports may be signed with the self-signed demo certificate outside the ``demo`` command
    (``ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE``, for trials): off, a service with no signing key configured
    signs nothing and is not ready, rather than issue reports nobody should trust."""
    tsa_url: str | None = None
    """RFC 3161 time-stamp authority (``ODEUS_COMPLIANCE_TSA_URL``); none means PAdES B-B."""
    trust_anchors_file: Path | None = None
    """PEM CA certificates that report signatures (and their time stamps) must chain to
    (``ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE``); none means the demo CA that ``keys init`` made."""
    policy_dir: Path = dataclasses.field(default_factory=lambda: shipped_dir("policies"))
    """Policy files (``ODEUS_COMPLIANCE_POLICY_DIR``), the shipped ones by default."""
    template_dir: Path = dataclasses.field(default_factory=lambda: shipped_dir("report_templates"))
    """Report templates (``ODEUS_COMPLIANCE_TEMPLATE_DIR``), the shipped ones by default."""
    download_hosts: frozenset[str] = frozenset()
    """The download allow-list (``ODEUS_COMPLIANCE_DOWNLOAD_HOSTS``, comma-separated ``host``, ``host:port``,
    ``.domain[:port]`` or ``[IPv6]:port``; no port: 443 for https, 80 for http): signed export downloads
    come only from a listed host and port. Empty: https on port 443 of a public address only. A host name
    must resolve to public addresses; an entry naming an IP address (the simulator's ``127.0.0.1:<port>``)
    allows that address. A download on the ``ODEUS_BASE_URL`` origin itself is always allowed."""
    upstream_max_answer_mb: int = 2048
    """The largest export file (streamed, never held whole) or JSON answer the service accepts from Odeus,
    in MiB (``ODEUS_COMPLIANCE_UPSTREAM_MAX_ANSWER_MB``); a larger one fails the fetch with that reason.
    A CSV-route answer (the small envelope with the download URL) is held to 256 KiB whatever this says."""
    log_level: str = "INFO"
    """``ODEUS_COMPLIANCE_LOG_LEVEL``: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    audit_checkpoint_records: int = 1000
    """Sign an audit checkpoint at least every this many records
    (``ODEUS_COMPLIANCE_AUDIT_CHECKPOINT_RECORDS``)."""
    audit_checkpoint_seconds: float = 60.0
    """... and at least this often while the log grows (``ODEUS_COMPLIANCE_AUDIT_CHECKPOINT_SECONDS``)."""
    report_worker_memory_mb: int = 2048
    """Address-space limit of the report worker process in MiB (``ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB``):
    a report that needs more fails with that reason instead of starving the service."""
    report_timeout_seconds: float = 600.0
    """How long the worker may take to render, sign and verify one report
    (``ODEUS_COMPLIANCE_REPORT_TIMEOUT_SECONDS``); a report that takes longer fails with that reason and
    the worker process is stopped."""
    verify_worker_memory_mb: int = 1024
    """Address-space limit in MiB of each process that verifies an uploaded PDF
    (``ODEUS_COMPLIANCE_VERIFY_WORKER_MEMORY_MB``): a file that needs more is refused (422), the service's
    own memory is untouched."""
    verify_timeout_seconds: float = 60.0
    """How long one verification (upload included) may take (``ODEUS_COMPLIANCE_VERIFY_TIMEOUT_SECONDS``);
    then its process is stopped and the file refused (422)."""
    verify_concurrency: int = 2
    """How many PDFs are verified at once, each in a process of its own
    (``ODEUS_COMPLIANCE_VERIFY_CONCURRENCY``)."""
    verify_queue: int = 4
    """How many more verifications may wait for a free slot (``ODEUS_COMPLIANCE_VERIFY_QUEUE``); beyond
    that a request is answered 503 with ``Retry-After`` at once."""
    report_lease_seconds: float = 60.0
    """How long a report job's claim lasts without a sign of life (``ODEUS_COMPLIANCE_REPORT_LEASE_SECONDS``);
    a job whose runner died is taken over after this."""
    report_max_attempts: int = 3
    """How often a report job is started before an interrupted one is marked failed
    (``ODEUS_COMPLIANCE_REPORT_MAX_ATTEMPTS``)."""
    report_concurrency: int = 2
    """How many report jobs one service process runs at once (``ODEUS_COMPLIANCE_REPORT_CONCURRENCY``): a
    job held up by a slow upstream takes one slot, the other jobs (scheduled ones too) go on in the rest."""
    fetch_deadline_seconds: float = 1800.0
    """The longest a report's export pull may take from its first request to its last byte
    (``ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS``); a pull still going then fails the job with that reason."""
    fetch_min_bytes_per_second: float = 1024.0
    """The slowest an Odeus answer or download may arrive, measured over the last
    :attr:`fetch_throughput_window_seconds` (``ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND``); a body that
    drips slower fails the job with that reason."""
    fetch_throughput_window_seconds: float = 60.0
    """The window the minimum throughput is measured over
    (``ODEUS_COMPLIANCE_FETCH_THROUGHPUT_WINDOW_SECONDS``): a body shorter than this is never too slow, and
    no byte for this long is too slow."""
    schedule_tick_seconds: float = 60.0
    """How often the service looks for due scheduled reports (``ODEUS_COMPLIANCE_SCHEDULE_TICK_SECONDS``);
    every replica ticks, the database lets exactly one of them run each period."""
    retention_dataset_days: int = 90
    """Pseudonymised datasets (``data.csv`` of a report) are deleted this many days after their report was
    made (``ODEUS_COMPLIANCE_RETENTION_DATASET_DAYS``); see docs/retention.md for why 90."""
    retention_report_days: int = 3653
    """Reports (signed PDF, figures, archive row) are deleted this many days after they were made
    (``ODEUS_COMPLIANCE_RETENTION_REPORT_DAYS``; 3653 days: ten years including leap days)."""
    retention_audit_days: int = 3653
    """Audit-log payloads are shredded (their key epoch destroyed) once every record of the epoch is this
    many days old (``ODEUS_COMPLIANCE_RETENTION_AUDIT_DAYS``); the leaves and proofs stay."""
    retention_key_epoch_days: int = 30
    """The retention run starts a new ``audit-data``/``report-data`` key epoch when the current one is this
    many days old (``ODEUS_COMPLIANCE_RETENTION_KEY_EPOCH_DAYS``): the grain at which data can be shredded."""
    mail_recipients: frozenset[str] = frozenset()
    """Addresses and ``@domains`` a scheduled report may be e-mailed to
    (``ODEUS_COMPLIANCE_MAIL_RECIPIENTS``, comma-separated); none: no e-mail recipient is allowed."""
    smtp_url: Secret[str] | None = None
    """The mail server for scheduled-report e-mails (``ODEUS_COMPLIANCE_SMTP_URL``): ``smtp://host:port``,
    ``smtp+starttls://user:password@host:587`` or ``smtps://user:password@host:465``; none: no e-mail."""
    mail_from: str = "odeus-compliance@localhost"
    """Sender address of those e-mails (``ODEUS_COMPLIANCE_MAIL_FROM``)."""
    public_url: str | None = None
    """The service's address as its users reach it (``ODEUS_COMPLIANCE_PUBLIC_URL``), for links in e-mails."""
    webhook_keys: Mapping[str, Secret[str]] = dataclasses.field(default_factory=dict)
    """HMAC keys of schedule webhooks: every ``ODEUS_COMPLIANCE_WEBHOOK_<NAME>`` variable, by variable name (a
    schedule names its key's variable; the key itself is never stored in the database)."""
    retention_webhook_url: str | None = None
    """Where the daily retention run's outcome is posted (``ODEUS_COMPLIANCE_RETENTION_WEBHOOK_URL``: events
    ``retention.succeeded`` and ``retention.failed``, signed with the key in
    ``ODEUS_COMPLIANCE_WEBHOOK_RETENTION``); none: no webhook."""
    retention_mail_to: tuple[str, ...] = ()
    """Who is e-mailed the daily retention run's outcome (``ODEUS_COMPLIANCE_RETENTION_MAIL_TO``,
    comma-separated; over ``ODEUS_COMPLIANCE_SMTP_URL``); none: no e-mail."""
    denial_window_seconds: float = 60.0
    """Refused requests (401, 403) are counted per client and window of this many seconds
    (``ODEUS_COMPLIANCE_DENIAL_WINDOW_SECONDS``); see docs/audit-records.md, "Refused requests"."""
    denial_records: int = 10
    """The first this many refusals of a client in a window are each recorded at once as ``access.denied``;
    the rest are counted and recorded as one summary when the window ends
    (``ODEUS_COMPLIANCE_DENIAL_RECORDS``; 0: every refusal goes into the summary)."""
    denial_limit: int = 100
    """After this many refusals in a window, a client's requests that fail authentication or authorisation
    are answered 429 with ``Retry-After`` until the window ends (``ODEUS_COMPLIANCE_DENIAL_LIMIT``; at
    least ``denial_records``)."""
    oidc: OidcSettings | None = None
    """Console sign-in through the company's identity provider; ``None``: one-time links only."""
    console_idle_minutes: int = 30
    """A console session ends this long after its last request (``..._CONSOLE_IDLE_MINUTES``)."""
    console_session_hours: int = 10
    """... and this long after sign-in in any case (``ODEUS_COMPLIANCE_CONSOLE_SESSION_HOURS``)."""
    demo: bool = False
    """Built for the ``demo`` command: secrets may be absent (the demo makes its own)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, demo: bool = False, upstream: bool = True) -> Settings:
        """Read and validate every variable; raise :class:`ConfigurationError` (one line) on a problem.

        ``upstream=False`` is for commands that never call Odeus: they do not need ``ODEUS_API_KEY``.
        """
        env = environ
        data_dir = Path(env.get("ODEUS_COMPLIANCE_DATA_DIR", "").strip() or "./data").expanduser()
        raw_url = env.get("ODEUS_COMPLIANCE_DATABASE_URL", "").strip()
        database_url = _normalise_database_url(raw_url) if raw_url else default_sqlite_url(data_dir)
        master_key = _read_master_key(env, required=not demo)
        api_key = env.get("ODEUS_API_KEY", "").strip()
        if not api_key and not demo and upstream:
            raise ConfigurationError("ODEUS_API_KEY is required: the Odeus Usage Export API key")
        log_level = env.get("ODEUS_COMPLIANCE_LOG_LEVEL", "").strip().upper() or "INFO"
        if log_level not in LOG_LEVELS:
            raise ConfigurationError(
                f"ODEUS_COMPLIANCE_LOG_LEVEL must be one of {', '.join(sorted(LOG_LEVELS))}"
            )
        password = env.get("ODEUS_COMPLIANCE_SIGNING_PKCS12_PASSWORD", "")
        hosts = env.get("ODEUS_COMPLIANCE_DOWNLOAD_HOSTS", "")
        overrides: dict[str, Path] = {}
        denial_window, denial_records, denial_limit = _denial_settings(env)
        for field, var in (("policy_dir", "POLICY_DIR"), ("template_dir", "TEMPLATE_DIR")):
            if (path := _optional_path(env, ENV_PREFIX + var)) is not None:
                overrides[field] = path
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            master_key=master_key,
            odeus_base_url=_https_or_http_url(env, "ODEUS_BASE_URL", DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
            odeus_api_key=Secret(api_key) if api_key else None,
            signing_key_file=_optional_path(env, "ODEUS_COMPLIANCE_SIGNING_KEY_FILE"),
            signing_cert_file=_optional_path(env, "ODEUS_COMPLIANCE_SIGNING_CERT_FILE"),
            signing_pkcs12_file=_optional_path(env, "ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE"),
            signing_pkcs12_password=Secret(password) if password else None,
            allow_demo_certificate=_flag(env, "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE"),
            tsa_url=_https_or_http_url(env, "ODEUS_COMPLIANCE_TSA_URL", None),
            trust_anchors_file=_optional_path(env, "ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE"),
            download_hosts=_download_hosts(hosts),
            upstream_max_answer_mb=int(
                _positive(env, "ODEUS_COMPLIANCE_UPSTREAM_MAX_ANSWER_MB", 2048, integer=True)
            ),
            log_level=log_level,
            audit_checkpoint_records=int(
                _positive(env, "ODEUS_COMPLIANCE_AUDIT_CHECKPOINT_RECORDS", 1000, integer=True)
            ),
            audit_checkpoint_seconds=_positive(env, "ODEUS_COMPLIANCE_AUDIT_CHECKPOINT_SECONDS", 60.0),
            report_worker_memory_mb=int(
                _positive(env, "ODEUS_COMPLIANCE_REPORT_WORKER_MEMORY_MB", 2048, integer=True)
            ),
            report_timeout_seconds=_positive(env, "ODEUS_COMPLIANCE_REPORT_TIMEOUT_SECONDS", 600.0),
            verify_worker_memory_mb=int(
                _positive(env, "ODEUS_COMPLIANCE_VERIFY_WORKER_MEMORY_MB", 1024, integer=True)
            ),
            verify_timeout_seconds=_positive(env, "ODEUS_COMPLIANCE_VERIFY_TIMEOUT_SECONDS", 60.0),
            verify_concurrency=int(_positive(env, "ODEUS_COMPLIANCE_VERIFY_CONCURRENCY", 2, integer=True)),
            verify_queue=int(_positive(env, "ODEUS_COMPLIANCE_VERIFY_QUEUE", 4, integer=True)),
            report_lease_seconds=_positive(env, "ODEUS_COMPLIANCE_REPORT_LEASE_SECONDS", 60.0),
            report_max_attempts=int(_positive(env, "ODEUS_COMPLIANCE_REPORT_MAX_ATTEMPTS", 3, integer=True)),
            report_concurrency=int(_positive(env, "ODEUS_COMPLIANCE_REPORT_CONCURRENCY", 2, integer=True)),
            fetch_deadline_seconds=_positive(env, "ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS", 1800.0),
            fetch_min_bytes_per_second=_positive(env, "ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND", 1024.0),
            fetch_throughput_window_seconds=_positive(
                env, "ODEUS_COMPLIANCE_FETCH_THROUGHPUT_WINDOW_SECONDS", 60.0
            ),
            schedule_tick_seconds=_positive(env, "ODEUS_COMPLIANCE_SCHEDULE_TICK_SECONDS", 60.0),
            retention_dataset_days=int(
                _positive(env, "ODEUS_COMPLIANCE_RETENTION_DATASET_DAYS", 90, integer=True)
            ),
            retention_report_days=int(
                _positive(env, "ODEUS_COMPLIANCE_RETENTION_REPORT_DAYS", 3653, integer=True)
            ),
            retention_audit_days=int(
                _positive(env, "ODEUS_COMPLIANCE_RETENTION_AUDIT_DAYS", 3653, integer=True)
            ),
            retention_key_epoch_days=int(
                _positive(env, "ODEUS_COMPLIANCE_RETENTION_KEY_EPOCH_DAYS", 30, integer=True)
            ),
            mail_recipients=frozenset(
                r.strip().casefold()
                for r in env.get("ODEUS_COMPLIANCE_MAIL_RECIPIENTS", "").split(",")
                if r.strip()
            ),
            smtp_url=Secret(smtp) if (smtp := env.get("ODEUS_COMPLIANCE_SMTP_URL", "").strip()) else None,
            mail_from=env.get("ODEUS_COMPLIANCE_MAIL_FROM", "").strip() or "odeus-compliance@localhost",
            public_url=_https_or_http_url(env, "ODEUS_COMPLIANCE_PUBLIC_URL", None),
            webhook_keys={
                name: Secret(value)
                for name, value in env.items()
                if name.startswith(WEBHOOK_KEY_PREFIX) and len(name) > len(WEBHOOK_KEY_PREFIX) and value
            },
            retention_webhook_url=_notify_url(env, "ODEUS_COMPLIANCE_RETENTION_WEBHOOK_URL"),
            retention_mail_to=_addresses(env, "ODEUS_COMPLIANCE_RETENTION_MAIL_TO"),
            denial_window_seconds=denial_window,
            denial_records=denial_records,
            denial_limit=denial_limit,
            oidc=_oidc(env),
            console_idle_minutes=int(
                _positive(env, "ODEUS_COMPLIANCE_CONSOLE_IDLE_MINUTES", 30, integer=True)
            ),
            console_session_hours=int(
                _positive(env, "ODEUS_COMPLIANCE_CONSOLE_SESSION_HOURS", 10, integer=True)
            ),
            demo=demo,
            **overrides,
        )

    @classmethod
    def for_tests(cls, data_dir: Path, *, database_url: str | None = None, **changes: object) -> Settings:
        """Settings for a test or the demo: a fresh random master key, SQLite in ``data_dir`` by default.

        Unlike :meth:`from_env`, the demo signing certificate is allowed (most tests sign with it); a test of
        the production default passes ``allow_demo_certificate=False``.
        """
        base = cls(
            data_dir=data_dir,
            database_url=database_url or default_sqlite_url(data_dir),
            master_key=Secret(secrets.token_bytes(MASTER_KEY_BYTES)),
            odeus_api_key=Secret("test-upstream-key"),
            allow_demo_certificate=True,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def require_master_key(self) -> bytes:
        """The master key's bytes, or a :class:`ConfigurationError` naming the variable."""
        if self.master_key is None:
            raise ConfigurationError(f"{MASTER_KEY_VAR} (or {MASTER_KEY_FILE_VAR}) is required")
        return self.master_key.reveal()

    @property
    def signing_key_configured(self) -> bool:
        """Whether a report-signing key of the installation's own is configured (PEM files or PKCS#12)."""
        return bool(self.signing_pkcs12_file or self.signing_key_file or self.signing_cert_file)

    @property
    def demo_certificate_allowed(self) -> bool:
        """Whether the self-signed demo certificate may sign reports: in the demo, or where allowed."""
        return self.demo or self.allow_demo_certificate

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file (single process) rather than PostgreSQL."""
        return self.database_url.startswith("sqlite")

    def __repr__(self) -> str:
        fields = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "database_url":
                from sqlalchemy.engine import make_url  # noqa: PLC0415 - see _normalise_database_url

                value = make_url(value).render_as_string(hide_password=True)
            fields.append(f"{field.name}={value!r}")
        return f"Settings({', '.join(fields)})"

    __str__ = __repr__


def default_sqlite_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data dir (absolute, so a ``chdir`` cannot move it)."""
    return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILE_NAME).resolve()}"
