"""The console's secrets: random tokens for browsers, keyed hashes of them for the database.

Three MAC keys are derived from the master key with HKDF, each with its own label, so a hash of one kind can
never stand for another: sign-in links, sessions (and the OIDC sign-in cookie), CSRF tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["TOKEN_SHAPE", "ConsoleKeys", "new_public_id", "new_token"]

TOKEN_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
"""What :func:`new_token` makes (32 random bytes, URL-safe base64): anything else is refused unread."""


def new_token() -> str:
    """32 random bytes as URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def new_public_id(prefix: str) -> str:
    """A random public id such as ``ses_...``: names a row in audit records, grants nothing."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _derive(master_key: bytes, label: str) -> bytes:
    info = f"odeus-compliance/console/{label}/v1".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


class ConsoleKeys:
    """The console's MAC keys; ``repr`` shows none of them."""

    __slots__ = ("_csrf", "_link", "_session")

    def __init__(self, master_key: bytes) -> None:
        self._link = _derive(master_key, "sign-in-link")
        self._session = _derive(master_key, "session")
        self._csrf = _derive(master_key, "csrf")

    def link_hash(self, token: str) -> str:
        """The stored form of a sign-in link's token."""
        return hmac.new(self._link, token.encode(), hashlib.sha256).hexdigest()

    def session_hash(self, token: str) -> str:
        """The stored form of a session cookie or an OIDC sign-in cookie."""
        return hmac.new(self._session, token.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session_token: str) -> str:
        """The CSRF token of a session: derived from its cookie, so no page can know it without the
        session, and nothing more is stored."""
        return hmac.new(self._csrf, session_token.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, session_token: str, presented: str) -> bool:
        """Whether ``presented`` is the session's CSRF token (compared in constant time; as bytes, since
        ``compare_digest`` raises TypeError for a str that is not ASCII, and a form can send any text)."""
        return hmac.compare_digest(
            self.csrf_token(session_token).encode(), presented.encode("utf-8", "surrogatepass")
        )

    def __repr__(self) -> str:
        return "ConsoleKeys('**********')"
