"""The readiness probe's signing check, remembered for a while: probes come every few seconds, a trial
signature costs a few hundred milliseconds of CPU (the demo key is decrypted, two RSA operations).

A success is kept for a minute (a certificate that expires in between fails the next report's own
verification, which names the reason); a failure for a few seconds, so a fix (a certificate file put in
place, ``init`` run) shows within one probe interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from odeus_compliance.reports.signing_check import SigningCheck, check_signing
from odeus_compliance.settings import Settings

__all__ = ["SigningProbe"]

OK_SECONDS: Final = 60.0
FAILED_SECONDS: Final = 5.0
TIMEOUT_SECONDS: Final = 10.0


class SigningProbe:
    """:func:`check_signing` for ``settings``, run in a thread, one at a time, its answer kept a while."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: SigningCheck | None = None
        self._until = 0.0

    async def check(self) -> SigningCheck:
        """The current answer (a fresh trial when the kept one is too old)."""
        async with self._lock:
            if self._last is not None and self._clock() < self._until:
                return self._last
            try:
                result = await asyncio.wait_for(
                    asyncio.to_thread(check_signing, self._settings), timeout=TIMEOUT_SECONDS
                )
            except TimeoutError:
                result = SigningCheck(
                    ok=False,
                    reason="the signing check did not finish in time",
                    detail=f"a trial signature took longer than {TIMEOUT_SECONDS:.0f} s",
                )
            self._last = result
            self._until = self._clock() + (OK_SECONDS if result.ok else FAILED_SECONDS)
            return result
