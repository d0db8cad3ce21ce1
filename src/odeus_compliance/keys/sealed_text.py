"""Short free text kept beside the audit log (a report's purpose, a schedule's e-mail recipients), sealed the
way the log seals its records, so it is protected and shredded with them.

The audit log encrypts each record under the current ``audit-data`` key epoch and shreds a whole epoch by
destroying its key (:mod:`odeus_compliance.keys.ring`). A purpose or an address stored in clear in an
ordinary table would outlive that: readable in the database file, and kept after the records that name it
were shredded. :class:`TextSealer` closes the gap with the same mechanism: AES-256-GCM under the epoch's
data key that is current when the text is written, so

- the database holds ``sealed:v1:<key id>:<base64(nonce || ciphertext || tag)>``, never the text;
- reading opens it with the key ring (the master key is needed, as for the log's records);
- destroying the epoch's key (retention) makes every text sealed under it unreadable: :meth:`open` then
  answers ``None``, exactly as the log shows the epoch's records as pruned.

The associated data names the use and the row (``context``, e.g. ``report-purpose:<report id>``) and the key
id, so a sealed value copied to another row or field does not open. Values written before sealing existed
(no ``sealed:v1:`` prefix) are read as they are.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from typing import Final

from cryptography.exceptions import InvalidTag

from odeus_compliance.keys.datakey import DataKey
from odeus_compliance.keys.ring import (
    Executor,
    KeyEncryptionKey,
    KeyKind,
    KeyRingError,
    current_data_key,
    data_keys,
)

__all__ = ["SEALED_PREFIX", "SealedTextError", "TextSealer", "is_sealed", "sealed_key_id"]

SEALED_PREFIX: Final = "sealed:v1:"
_NONCE: Final = 12


class SealedTextError(KeyRingError):
    """A sealed value is malformed, names a key the ring does not hold, or does not open (altered)."""


def is_sealed(value: str) -> bool:
    """Whether ``value`` is a sealed text (else a value stored in clear before sealing existed)."""
    return value.startswith(SEALED_PREFIX)


def sealed_key_id(value: str) -> str:
    """The key id a sealed value names (``<kind>:<epoch>:<hex>``)."""
    key_id, sep, _ = value.removeprefix(SEALED_PREFIX).rpartition(":")
    if not is_sealed(value) or not sep or not key_id:
        raise SealedTextError("a sealed value has the form sealed:v1:<key id>:<base64>")
    return key_id


def _ad(context: str, key_id: str) -> bytes:
    return f"odeus-compliance/sealed-text/v1\n{context}\n{key_id}".encode()


class TextSealer:
    """Seals and opens short texts under ``audit-data`` key epochs (see the module docstring)."""

    __slots__ = ("_kek",)

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self._kek = kek

    async def seal(self, executor: Executor, text: str, *, context: str) -> str:
        """``text`` sealed under the current ``audit-data`` key, bound to ``context``."""
        key = await current_data_key(executor=executor, kek=self._kek, kind=KeyKind.AUDIT_DATA)
        nonce = secrets.token_bytes(_NONCE)
        sealed = key.aead.encrypt(nonce, text.encode("utf-8"), _ad(context, key.key_id))
        return f"{SEALED_PREFIX}{key.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    async def open(self, executor: Executor, value: str, *, context: str) -> str | None:
        """The text, or ``None`` if its key epoch was destroyed (shredded by retention)."""
        return (await self.open_many(executor, [(value, context)]))[0]

    async def open_many(self, executor: Executor, values: Iterable[tuple[str, str]]) -> list[str | None]:
        """Each ``(value, context)`` opened (one key-ring query for all); ``None`` where shredded."""
        wanted = list(values)
        keys = await data_keys(
            executor=executor,
            kek=self._kek,
            key_ids={sealed_key_id(v) for v, _c in wanted if is_sealed(v)},
        )
        return [_open(v, c, keys) if is_sealed(v) else v for v, c in wanted]

    def __repr__(self) -> str:
        return "TextSealer('**********')"


def _open(value: str, context: str, keys: dict[str, DataKey | None]) -> str | None:
    key_id = sealed_key_id(value)
    if key_id not in keys:
        raise SealedTextError("a sealed value names a key the key ring does not hold")
    key = keys[key_id]
    if key is None:
        return None
    try:
        raw = base64.b64decode(value.rpartition(":")[2].encode("ascii"), validate=True)
        plain = key.aead.decrypt(raw[:_NONCE], raw[_NONCE:], _ad(context, key_id))
        return plain.decode("utf-8")
    except (binascii.Error, InvalidTag, UnicodeError, ValueError):
        raise SealedTextError("a sealed value does not open (altered, or moved from another row)") from None
