"""The one error type of the simulator: an HTTP status with Odeus's ``{"error", "message"}`` body."""

from __future__ import annotations


class OdeusError(Exception):
    """An answer in Odeus's error shape; ``headers`` carries e.g. ``Retry-After``."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        """The JSON body."""
        return {"error": self.error, "message": self.message}
