"""Signed download URLs: HMAC-SHA-256 over the file path and the expiry, with a per-simulator secret.

The signature is a bearer credential for one file until ``expires`` (seconds since the epoch); the storage
app refuses an expired or altered URL with 403, as the real storage host does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    """What the storage app makes of a URL's signature."""

    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class UrlSigner:
    """Signs and checks ``(path, expires)`` pairs."""

    def __init__(self, clock: Callable[[], float], secret: bytes | None = None) -> None:
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, path: str, ttl_seconds: float) -> tuple[int, str]:
        """``(expires, signature)`` for a URL that lives ``ttl_seconds``."""
        expires = int(self._clock() + ttl_seconds)
        return expires, self._mac(path, expires)

    def check(self, path: str, expires: str | None, signature: str | None) -> Verdict:
        """Whether the URL is genuine and still valid (a tampered expiry is invalid, not expired)."""
        if not expires or not signature or not expires.isdigit():
            return Verdict.INVALID
        if not hmac.compare_digest(self._mac(path, int(expires)), signature):
            return Verdict.INVALID
        return Verdict.EXPIRED if self._clock() > int(expires) else Verdict.VALID
