"""E-mail notifications over SMTP: a scheduled report is ready (a link, or the signed PDF attached), a
scheduled run or the daily retention run failed, a retention run finished.

The mail server comes from ``ODEUS_COMPLIANCE_SMTP_URL``: ``smtp://host:port`` (plain, for a local relay;
a user and password only to a loopback host, never in clear over the network),
``smtp+starttls://user:password@host:587`` or ``smtps://user:password@host:465``. Sending runs the standard
library's ``smtplib`` in a thread. Failures become reasons safe to store and show: the kind of error, never
the server's reply (it can quote recipient addresses) and never an address.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Final
from urllib.parse import unquote, urlsplit

from odeus_compliance.settings import Secret, Settings

__all__ = ["MailSender", "SmtpServer", "parse_smtp_url"]

TIMEOUT_SECONDS: Final = 30.0
_PORTS: Final = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to send: host, port, security (``plain``, ``starttls``, ``tls``) and optional login."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: Secret[str] | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """The server of an ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URL; ``ValueError`` (the message
    names the rule, not the URL, which may hold a password) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in _PORTS or not parts.hostname:
        msg = "ODEUS_COMPLIANCE_SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host"
        raise ValueError(msg)
    try:
        port = parts.port or _PORTS[parts.scheme]
    except ValueError:
        msg = "ODEUS_COMPLIANCE_SMTP_URL has an invalid port"
        raise ValueError(msg) from None
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
    if security == "plain" and (parts.username or parts.password) and parts.hostname not in _LOOPBACK:
        # a login over a plain connection would send the password in clear across the network
        msg = "ODEUS_COMPLIANCE_SMTP_URL with a user or password needs smtp+starttls:// or smtps://"
        raise ValueError(msg)
    username = unquote(parts.username) if parts.username else None
    password = Secret(unquote(parts.password)) if parts.password else None
    return SmtpServer(parts.hostname, port, security, username, password)


class MailSender:
    """Sends one message to a list of recipients (see the module docstring)."""

    def __init__(
        self, *, server: SmtpServer | None, mail_from: str, public_url: str | None, problem: str | None = None
    ) -> None:
        self._server = server
        self._problem = problem
        self.mail_from = mail_from
        self.public_url = public_url.rstrip("/") if public_url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSender:
        """A sender for the configured server (an unusable URL leaves e-mail off, and each try says why)."""
        server = problem = None
        if settings.smtp_url is not None:
            try:
                server = parse_smtp_url(settings.smtp_url.reveal())
            except ValueError as exc:
                problem = str(exc)  # names the rule, never the URL
        return cls(
            server=server, mail_from=settings.mail_from, public_url=settings.public_url, problem=problem
        )

    async def send(
        self,
        *,
        recipients: Sequence[str],
        subject: str,
        text: str,
        attachment: tuple[str, bytes] | None = None,
    ) -> str | None:
        """Send; ``None`` when the server accepted the message, else a reason safe to store."""
        if self._server is None:
            return self._problem or "no mail server is configured (ODEUS_COMPLIANCE_SMTP_URL)"
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="odeus-compliance")
        message.set_content(text)
        if attachment is not None:
            name, data = attachment
            message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
        try:
            await asyncio.to_thread(_deliver, self._server, message, list(recipients))
        except (smtplib.SMTPException, OSError) as exc:
            return f"the mail server refused the message or could not be reached ({type(exc).__name__})"
        return None


def _deliver(server: SmtpServer, message: EmailMessage, recipients: list[str]) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.security == "tls":
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
    with client:
        if server.security == "starttls":
            client.starttls(context=context)
        if server.username is not None and server.password is not None:
            client.login(server.username, server.password.reveal())
        client.send_message(message, to_addrs=recipients)
