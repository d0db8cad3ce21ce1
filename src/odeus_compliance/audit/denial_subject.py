"""Who a refused request came from, as the denial counters store it: a keyed tag and a sealed payload.

The counters (``access_denial_windows``) are an ordinary table, so the client's address and the API key's
name never lie there in clear: the row is found by an HMAC tag of the client and key id, and what the summary
record will name (address, key id, name, role) is sealed with AES-256-GCM, bound to its tag. Both keys are
derived from the master key with HKDF, each under its own label.

Clients are counted by IPv4 address, and by /64 network for IPv6 (one subscriber usually holds a whole
/64, so counting single IPv6 addresses would let one client spread a flood over 2^64 counters).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from odeus_compliance.audit.appender import Actor
from odeus_compliance.audit.records import ActorRole

__all__ = ["DenialSealer", "Subject", "SubjectError", "client_bucket"]

_NONCE: Final = 12
_IPV6_PREFIX: Final = 64


class SubjectError(ValueError):
    """A sealed subject does not open (another master key, or the row was altered)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """The client address (``None``: unknown) and the actor of a refused request."""

    client_address: str | None
    actor: Actor


def client_bucket(client_address: str | None) -> str:
    """What refusals are counted by: the IPv4 address, the IPv6 /64 network, or ``unknown``."""
    if client_address is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(client_address)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


def _derive(master_key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master_key)


class DenialSealer:
    """Tags and seals :class:`Subject` values; ``repr`` never shows its keys."""

    __slots__ = ("_aead", "_tag_key")
    _TAG_INFO: Final = b"odeus-compliance/access-denial-tag/v1"
    _SEAL_INFO: Final = b"odeus-compliance/access-denial-seal/v1"

    def __init__(self, master_key: bytes) -> None:
        self._tag_key = _derive(master_key, self._TAG_INFO)
        self._aead = AESGCM(_derive(master_key, self._SEAL_INFO))

    def tag(self, subject: Subject) -> str:
        """HMAC-SHA-256 (hex) of the client's bucket and the API key id: one counter per client and key."""
        text = f"{client_bucket(subject.client_address)}\n{subject.actor.key_id or ''}"
        return hmac.new(self._tag_key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, subject: Subject, tag: str) -> bytes:
        """``nonce ‖ AES-256-GCM(subject as JSON, associated data = tag)``."""
        actor = subject.actor
        plain = json.dumps(
            {
                "address": subject.client_address,
                "key_id": actor.key_id,
                "name": actor.name,
                "role": actor.role,
            },
            sort_keys=True,
        ).encode("utf-8")
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, plain, tag.encode("ascii"))

    def open(self, sealed: bytes, tag: str) -> Subject:
        """The sealed subject back; :class:`SubjectError` if it does not open or is malformed."""
        try:
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], tag.encode("ascii"))
            obj = json.loads(plain)
            actor = Actor(obj["key_id"], obj["name"], ActorRole(obj["role"]))
            address = obj["address"]
        except (InvalidTag, ValueError, KeyError, TypeError, UnicodeError):
            raise SubjectError("a sealed denial subject does not open under this master key") from None
        if address is not None and not isinstance(address, str):
            raise SubjectError("a sealed denial subject is malformed")
        return Subject(address, actor)

    def __repr__(self) -> str:
        return "DenialSealer('**********')"
