"""An epoch's data key as the key ring hands it out: its id and the unwrapped AES-256 key, never shown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_SIZE", "DataKey", "DataKeyError"]

KEY_SIZE: Final = 32
_KEY_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class DataKeyError(ValueError):
    """A data key with a malformed id or of the wrong size."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """An epoch's AES-256 data key as the key ring hands it out (unwrapped); never shown in ``repr``."""

    key_id: str
    key: bytes = field(repr=False)
    aead: AESGCM = field(init=False, repr=False, compare=False)
    """The ``AESGCM`` object of ``key``, made once (it costs as much as sealing a record)."""

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise DataKeyError("key_id must be 1-64 characters from A-Z a-z 0-9 . _ : -")
        if len(self.key) != KEY_SIZE:
            raise DataKeyError("a data key is 32 bytes")
        object.__setattr__(self, "aead", AESGCM(self.key))
