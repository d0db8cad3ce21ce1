"""A Standard Webhooks receiver's verifier, written from the specification (1.0) and independent of ours.

It does what the specification's ready-made verifiers do (``standardwebhooks.Webhook(secret).verify``):
strip ``whsec_`` and base64-decode the secret, recompute HMAC-SHA-256 over
``<webhook-id>.<webhook-timestamp>.<body>``, compare it in constant time with each ``v1,`` entry of
``webhook-signature`` (space-separated), and refuse a timestamp more than five minutes from now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

__all__ = ["SPEC_VECTOR", "Receiver", "new_secret", "verify_standard_webhook"]

TOLERANCE_SECONDS = 5 * 60

SPEC_VECTOR = {
    # the signing vector of the specification's Python library (libraries/python/tests/test_webhooks.py)
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": 1614265330,
    "body": b'{"test": 2432232314}',
    "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}


def new_secret(size: int = 32) -> str:
    """A fresh ``whsec_`` secret, as an operator makes one."""
    import secrets  # noqa: PLC0415

    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    """Whether ``headers`` (lower-case names) sign ``body`` under ``secret``, sent within the tolerance."""
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(expected, value)
        for version, _, value in (entry.partition(",") for entry in signatures)
    )


class Receiver:
    """A webhook receiver on loopback: records every request, answers with the queued statuses (then 204)."""

    def __init__(self, statuses: list[int], on_request: Callable[[], None] | None = None) -> None:
        import http.server  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if on_request is not None:
                    on_request()  # a slow receiver, say
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/odeus"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
