"""Signed webhook notifications: "the scheduled report for this period is ready".

The body is canonical JSON (sorted keys, no white space) naming the schedule, the period, the run and the
report - ids, times and a hash, no personal data and no file. It is signed with HMAC-SHA-256 under the key in
the environment variable the schedule names (``ODEUS_COMPLIANCE_WEBHOOK_<NAME>``)::

    Odeus-Compliance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(key, "<t>." || body)>
    Odeus-Compliance-Delivery: <run id>

A receiver recomputes the HMAC over the exact bytes it received, compares in constant time, refuses a ``t``
far from its own clock (replay), and uses the delivery id to ignore repeats: delivery is at least once (a
retry after a lost answer repeats a notification the receiver already has). Only a 2xx answer counts; a
redirect is not followed (it would send the signed body somewhere the admin did not name).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from odeus_compliance import __version__
from odeus_compliance.settings import Secret

__all__ = [
    "DELIVERY_HEADER",
    "EVENT",
    "SIGNATURE_HEADER",
    "WebhookSender",
    "notification_body",
    "sign",
    "verify",
]

SIGNATURE_HEADER: Final = "Odeus-Compliance-Signature"
DELIVERY_HEADER: Final = "Odeus-Compliance-Delivery"
EVENT: Final = "scheduled_report.succeeded"
TIMEOUT_SECONDS: Final = 10.0
MIN_KEY_BYTES: Final = 16
"""Shortest webhook key signed with (128 bits; ``openssl rand -base64 32`` makes a good one)."""


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(key: bytes, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Whether ``header`` signs ``body`` under ``key``, sent within ``tolerance`` s of ``now`` (receivers)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(key, timestamp, body).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def notification_body(fields: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the notification ``{"event": ..., **fields}``."""
    return json.dumps(
        {"event": EVENT, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


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

    async def send(self, *, url: str, key_variable: str, body: bytes, delivery_id: str) -> str | None:
        """Deliver ``body``; ``None`` when the receiver answered 2xx, else a reason safe to store and show
        (an HTTP status or the kind of error: never the URL, which may carry a token).

        The signature's ``t`` is the real time of sending, never the scheduler's clock: the receiver checks it
        against its own clock, so a tick run with ``run-due --now`` (a backfill) must not look like a replay.
        """
        key = self._keys.get(key_variable)
        if key is None:
            return f"the webhook key variable {key_variable} is not set in the service's environment"
        if len(key.reveal().encode("utf-8")) < MIN_KEY_BYTES:
            # a short key makes the signature guessable: refuse to sign rather than sign weakly
            return f"the webhook key in {key_variable} is shorter than {MIN_KEY_BYTES} bytes"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"odeus-compliance/{__version__}",
            SIGNATURE_HEADER: sign(key.reveal().encode("utf-8"), int(self._wall_clock()), body),
            DELIVERY_HEADER: delivery_id,
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
