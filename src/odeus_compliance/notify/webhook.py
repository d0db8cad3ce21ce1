"""Signed webhook notifications, as the Standard Webhooks specification (1.0) has them.

Each notification is a ``POST`` of canonical JSON (sorted keys, no white space) in the specification's
payload shape, ``{"data": {...}, "timestamp": <RFC 3339 time of the event>, "type": <event type>}``, with
three headers::

    webhook-id: <the event's id: the same on every retry of it>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA-256(key, "<webhook-id>.<webhook-timestamp>.<body>")>

The key comes from the environment variable the sender is told (``ODEUS_COMPLIANCE_WEBHOOK_<NAME>``) and is a
Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 random bytes (the HMAC key is those bytes), so
a receiver can use the specification's ready-made verifiers (``standardwebhooks`` for Python, and its
siblings for other languages) with the same string. Delivery is at least once: a receiver ignores an id it
has seen. Only a 2xx answer counts; a redirect is not followed (it would send the signed body somewhere the
admin did not name).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from odeus_compliance import __version__
from odeus_compliance.settings import Secret

__all__ = [
    "ID_HEADER",
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "event_body",
    "secret_key",
    "sign",
]

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the specification's marker of a secret, not one
MIN_SECRET_BYTES: Final = 24
"""The specification's shortest symmetric secret (192 bits)."""
MAX_SECRET_BYTES: Final = 64
TIMEOUT_SECONDS: Final = 15.0
"""The specification recommends 15 to 30 s for a receiver to answer."""
_MESSAGE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""No ``.`` in an id: the signed content joins id, time and body with full stops."""


def secret_key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret of 24 to 64 bytes, or ``None`` if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES else None


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode("ascii") + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def event_body(event_type: str, occurred: dt.datetime, data: Mapping[str, Any]) -> bytes:
    """Canonical JSON of ``{"type", "timestamp", "data"}``; ``occurred`` is when the event happened (it
    stays the same on every retry, unlike ``webhook-timestamp``)."""
    stamp = occurred.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    payload = {"type": event_type, "timestamp": stamp, "data": dict(data)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebhookSender:
    """Posts signed notifications. Keys come from settings (``webhook_keys``); nothing else is read."""

    def __init__(
        self,
        keys: Mapping[str, Secret[str]],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._transport = transport
        self._wall_clock = wall_clock

    async def send(self, *, url: str, key_variable: str, body: bytes, message_id: str) -> str | None:
        """Deliver ``body`` as the event ``message_id``; ``None`` when the receiver answered 2xx, else a
        reason safe to store and show (an HTTP status or the kind of error: never the URL, which may carry a
        token).

        ``webhook-timestamp`` is the real time of sending, never the scheduler's clock: the receiver checks
        it against its own clock, so a tick run with ``run-due --now`` (a backfill) must not look like a
        replay.
        """
        if not _MESSAGE_ID.fullmatch(message_id):
            msg = "a webhook id is 1-128 characters of A-Z a-z 0-9 _ -"
            raise ValueError(msg)
        secret = self._keys.get(key_variable)
        if secret is None:
            return f"the webhook key variable {key_variable} is not set in the service's environment"
        key = secret_key(secret.reveal())
        if key is None:
            # a key receivers' verifiers cannot use, or a short one: refuse to sign rather than sign weakly
            return (
                f"the webhook key in {key_variable} is not a Standard Webhooks secret ({SECRET_PREFIX} and "
                f"the base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes)"
            )
        timestamp = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"odeus-compliance/{__version__}",
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(key, message_id, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(
                timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=self._transport
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"the webhook could not be reached ({type(exc).__name__})"
        if 200 <= response.status_code < 300:
            return None
        return f"the webhook answered HTTP {response.status_code}"
