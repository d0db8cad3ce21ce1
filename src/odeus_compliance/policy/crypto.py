"""Keyed primitives for pseudonyms: HKDF domain keys, HMAC-SHA-256 tokens, deterministic AES-SIV tokens.

Why these: an unkeyed hash of an e-mail address is reversed by a dictionary in a day, so every token here
is keyed. Each (purpose, policy domain, token class, epoch) gets its own HKDF-derived key, so tokens of two
domains cannot be linked without the root key, and destroying an epoch's root key makes its tokens
permanently unlinkable (crypto-shredding). ``per_report`` linkability mixes a random per-report salt into
the derivation, so two reports share no token.

Tokens carry their epoch: ``u1_<26 base32 chars>`` (HMAC, 130 bits) and ``e1_<base32>`` (AES-SIV). Keys
never appear in a ``repr``, a message or a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from odeus_compliance.policy.bulktokens import hmac_tokens

MIN_ROOT_KEY_BYTES = 32
TOKEN_CHARS = 26  # 26 base32 characters = 130 bits of the HMAC
REPORT_SALT_BYTES = 32
_INFO_PREFIX = b"odeus-compliance/policy/v1"
_SIV_AD_LABEL = b"odeus-compliance/encrypt/v1"
_ENCRYPTED_PREFIX = "e"
_ENCRYPTED_RE = re.compile(r"^e(?P<epoch>[0-9]+)_(?P<body>[a-z2-7]+)$")
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")


class CryptoError(Exception):
    """A key or token problem. Messages name the rule, never a key or a cleartext value."""


class ReidentificationError(CryptoError):
    """A token could not be decrypted: tampered, from another column/domain/epoch/report, or malformed."""


@dataclass(frozen=True, slots=True)
class KeyContext:
    """The secret material one run tokenises under.

    ``root_key`` is the epoch's pseudonymisation root key from the key ring (at least 32 random bytes);
    ``policy_domain`` is the policy's pseudonymisation domain; ``report_salt`` is set only for
    ``per_report`` linkability (see :func:`new_report_salt`).
    """

    root_key: bytes = field(repr=False)
    epoch: int
    policy_domain: str
    report_salt: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.root_key) < MIN_ROOT_KEY_BYTES:
            msg = f"the pseudonymisation root key must be at least {MIN_ROOT_KEY_BYTES} random bytes"
            raise CryptoError(msg)
        if self.epoch < 0:
            msg = "the key epoch must be a non-negative integer"
            raise CryptoError(msg)
        _check_label(self.policy_domain, "policy domain")
        if self.report_salt is not None and len(self.report_salt) < 16:
            msg = "a per-report salt must be at least 16 random bytes"
            raise CryptoError(msg)


def new_report_salt() -> bytes:
    """A fresh random salt for one report under ``per_report`` linkability (keep it in the manifest)."""
    return secrets.token_bytes(REPORT_SALT_BYTES)


def derive_key(context: KeyContext, *, purpose: str, label: str, length: int = 32) -> bytes:
    """HKDF-SHA-256 key for one purpose and domain label under the context's root key and epoch.

    The info string binds purpose, policy domain, label and epoch; the per-report salt (if any) is the
    HKDF salt. Labels are restricted to a safe alphabet, so distinct inputs never encode to the same info.
    """
    _check_label(purpose, "purpose")
    _check_label(label, "domain label")
    info = b"\x00".join(
        (
            _INFO_PREFIX,
            purpose.encode(),
            context.policy_domain.encode(),
            label.encode(),
            str(context.epoch).encode(),
        )
    )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=context.report_salt, info=info)
    return hkdf.derive(context.root_key)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 (RFC 2104 / RFC 4231)."""
    return hmac.new(key, message, hashlib.sha256).digest()


def format_token(prefix: str, epoch: int, mac: bytes) -> str:
    """``<prefix><epoch>_<base32 lowercase, no padding, TOKEN_CHARS long>``."""
    body = base64.b32encode(mac).decode("ascii").lower().rstrip("=")[:TOKEN_CHARS]
    return f"{prefix}{epoch}_{body}"


class Tokenizer:
    """Derives and caches the per-domain keys of one run and makes tokens with them.

    One instance per run (per report): the cache is instance state, never module state.
    """

    __slots__ = ("_context", "_keys")

    def __init__(self, context: KeyContext) -> None:
        self._context = context
        self._keys: dict[tuple[str, str], bytes] = {}

    @property
    def epoch(self) -> int:
        """The key epoch every token of this run carries."""
        return self._context.epoch

    def __repr__(self) -> str:
        return f"Tokenizer(epoch={self._context.epoch}, domain={self._context.policy_domain!r})"

    def _key(self, purpose: str, label: str, length: int) -> bytes:
        cache_key = (purpose, label)
        key = self._keys.get(cache_key)
        if key is None:
            key = derive_key(self._context, purpose=purpose, label=label, length=length)
            self._keys[cache_key] = key
        return key

    def token(self, *, prefix: str, label: str, message: bytes) -> str:
        """An HMAC token of ``message`` under the key of ``label`` (the caller canonicalises)."""
        mac = hmac_sha256(self._key("pseudonymize", label, 32), message)
        return format_token(prefix, self._context.epoch, mac)

    def tokens(
        self, values: pa.StringArray, *, prefix: str, label: str, message_prefix: bytes = b""
    ) -> pa.StringArray:
        """:meth:`token` of ``message_prefix`` + each value's UTF-8 (the caller canonicalises), for many
        values at once in native code (:mod:`odeus_compliance.policy.bulktokens`)."""
        return hmac_tokens(
            values,
            key=self._key("pseudonymize", label, 32),
            token_prefix=f"{prefix}{self._context.epoch}_",
            chars=TOKEN_CHARS,
            message_prefix=message_prefix,
        )

    def row_order_key(self) -> bytes:
        """The key that orders per-person output rows (see :mod:`odeus_compliance.policy.order`): derived
        like every token key, so a rerun under the same keys writes the same bytes, and another epoch or a
        ``per_report`` run another order."""
        return self._key("row-order", "rows", 32)

    def key_id(self, *, purpose: str, label: str) -> str:
        """A public identifier of one derived key (16 hex digits, HKDF-derived: reveals nothing of it)."""
        return derive_key(self._context, purpose="key-id", label=f"{purpose}:{label}", length=8).hex()

    def encrypt(self, *, label: str, column: str, plaintext: str) -> str:
        """A deterministic AES-SIV token bound (as associated data) to domain, column and epoch."""
        siv = AESSIV(self._key("encrypt", label, 64))
        padded = _pad(plaintext.encode("utf-8"))  # the token's length tells only a length bucket
        data = siv.encrypt(padded, _associated_data(self._context, label, column))
        body = base64.b32encode(data).decode("ascii").lower().rstrip("=")
        return f"{_ENCRYPTED_PREFIX}{self._context.epoch}_{body}"


PAD_BUCKET = 32
"""Encrypted values are padded to a multiple of this many bytes (ISO/IEC 7816-4: 0x80, then zeros)."""


def _pad(data: bytes) -> bytes:
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % PAD_BUCKET)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        msg = "the token's padding is malformed"
        raise ValueError(msg)
    return stripped[:-1]


def reidentify(context: KeyContext, *, label: str, column: str, token: str) -> str:
    """Decrypt an ``encrypt`` token back to its cleartext: re-identification.

    Only the audited service layer may call this, after writing the audit record that names who
    re-identifies and why (GDPR Recital 29). The context must be the token's epoch (and report salt, for
    ``per_report`` policies); a token from another column, domain, epoch or report fails authentication.
    """
    match = _ENCRYPTED_RE.match(token)
    if match is None:
        msg = f"column {column!r}: not an encrypted token"
        raise ReidentificationError(msg)
    if int(match["epoch"]) != context.epoch:
        msg = (
            f"column {column!r}: the token is of epoch {match['epoch']}, the key is of epoch {context.epoch}"
        )
        raise ReidentificationError(msg)
    body = match["body"]
    try:
        data = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        key = derive_key(context, purpose="encrypt", label=label, length=64)
        plaintext = _unpad(AESSIV(key).decrypt(data, _associated_data(context, label, column)))
    except (ValueError, InvalidTag) as exc:
        msg = f"column {column!r}: the token does not authenticate under this key, domain and column"
        raise ReidentificationError(msg) from exc
    return plaintext.decode("utf-8")


def _associated_data(context: KeyContext, label: str, column: str) -> list[bytes]:
    return [
        _SIV_AD_LABEL,
        context.policy_domain.encode(),
        label.encode(),
        column.encode(),
        str(context.epoch).encode(),
    ]


def _check_label(value: str, what: str) -> None:
    if not _LABEL_RE.match(value):
        msg = f"the {what} must be lower-case letters, digits and _.:- (got a value of length {len(value)})"
        raise CryptoError(msg)
