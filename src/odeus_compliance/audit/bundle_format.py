"""The export bundle's format, and its strict parser.

A bundle is JSON (docs/audit-bundle.md)::

    {"format": "odeus-compliance-audit-bundle/2", "origin": str, "vkey": str, "checkpoint": <signed note>,
     "range": <signed note: the range statement of audit/bundle_range.py>,
     "entries": [{"seq": int, "leaf": <leaf text>, "proof": [b64 hash, ...], "record": {...} | null,
                  "salt": b64 | null}, ...],
     "consistency": {"from_checkpoint": <signed note>, "proof": [b64 hash, ...]} | null}

Format ``/1`` (bundles exported before the range statement) is the same without ``range``; it is still read,
so its entries can be checked, and the verifier says that such a bundle does not state its range.

:mod:`~odeus_compliance.audit.bundle_build` writes it; :func:`parse_bundle` reads it back into
:class:`ParsedBundle` for :mod:`~odeus_compliance.audit.bundle_verify`. The parser checks shape only (what
the values mean is the verifier's job), and fails closed: anything that is not exactly the format (not
UTF-8, not JSON, duplicate keys, unknown or missing fields, wrong types, floats, huge numbers, bad or
non-canonical base64, wrong hash lengths, an unknown format version) raises :class:`MalformedBundle` with a
message saying where and why, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from odeus_compliance.audit.merkle import HASH_SIZE
from odeus_compliance.audit.records import MAX_SAFE_INT

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_V1",
    "BundleEntry",
    "MalformedBundle",
    "ParsedBundle",
    "b64",
    "parse_bundle",
]

BUNDLE_FORMAT: Final = "odeus-compliance-audit-bundle/2"
"""What :mod:`~odeus_compliance.audit.bundle_build` writes: with the signed range statement."""
BUNDLE_FORMAT_V1: Final = "odeus-compliance-audit-bundle/1"
"""The first format, without a range statement: still read (the verifier says the range is not stated)."""

_TOP_KEYS_V1: Final = frozenset({"format", "origin", "vkey", "checkpoint", "entries", "consistency"})
_TOP_KEYS: Final = _TOP_KEYS_V1 | {"range"}
_ENTRY_KEYS: Final = frozenset({"seq", "leaf", "proof", "record", "salt"})
_CONSISTENCY_KEYS: Final = frozenset({"from_checkpoint", "proof"})
_MAX_PROOF: Final = 64
_MAX_TEXT: Final = 1 << 18


class MalformedBundle(Exception):
    """The bundle is malformed; the message says where and why."""


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One entry as parsed: its position in the bundle, and its fields decoded (hashes and salt as bytes)."""

    position: int
    seq: int
    leaf: bytes
    proof: list[bytes]
    record: dict[str, Any] | None
    salt: bytes | None


@dataclass(frozen=True, slots=True)
class ParsedBundle:
    """A well-formed bundle; ``consistency`` is ``(from_checkpoint note, proof)`` when present;
    ``range_note`` is the signed range statement (``None`` in a format ``/1`` bundle, which has none)."""

    origin: str
    vkey: str
    checkpoint: str
    entries: list[BundleEntry]
    consistency: tuple[str, list[bytes]] | None
    range_note: str | None = None


def b64(raw: bytes) -> str:
    """Standard base64 with padding, as text: the only spelling of bytes the format accepts."""
    return base64.b64encode(raw).decode("ascii")


def _fail(message: str) -> NoReturn:
    raise MalformedBundle(message)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            _fail("duplicate key in a JSON object")
        out[key] = value
    return out


def _no_floats(_text: str) -> NoReturn:
    _fail("numbers must be integers")


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        _fail("number too large")
    return int(text)


def _load_json(data: bytes | str) -> Any:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            _fail("not UTF-8")
    if not isinstance(data, str):
        _fail("not text")
    try:
        return json.loads(
            data,
            object_pairs_hook=_pairs,
            parse_float=_no_floats,
            parse_int=_bounded_int,
            parse_constant=_no_floats,
        )
    except RecursionError:
        _fail("nested too deeply")
    except ValueError as exc:
        _fail(f"not valid JSON ({type(exc).__name__})")


def _exact_keys(obj: Any, keys: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        _fail(f"{where} must be a JSON object")
    if set(obj) != keys:
        missing = sorted(keys - set(obj))
        extra = sorted(set(obj) - keys)
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)[:200]}" if extra else "",
            )
            if part
        )
        _fail(f"{where} has the wrong fields ({detail})")
    return obj


def _text(value: Any, where: str, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        _fail(f"{where} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{where} is not valid Unicode")
    return value


def _hash(value: Any, where: str, size: int = HASH_SIZE) -> bytes:
    if not isinstance(value, str) or len(value) > 4 * size:
        _fail(f"{where} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        _fail(f"{where} is not valid base64")
    if len(raw) != size or b64(raw) != value:
        _fail(f"{where} must be canonical base64 of {size} bytes")
    return raw


def _hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > _MAX_PROOF:
        _fail(f"{where} must be a list of at most {_MAX_PROOF} hashes")
    return [_hash(h, f"{where}[{i}]") for i, h in enumerate(value)]


def _entry(position: int, raw: Any) -> BundleEntry:
    where = f"entries[{position}]"
    e = _exact_keys(raw, _ENTRY_KEYS, where)
    seq = e["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INT:
        _fail(f"{where}.seq must be an integer in 0..2^53-1")
    leaf = _text(e["leaf"], f"{where}.leaf").encode("utf-8")
    proof = _hashes(e["proof"], f"{where}.proof")
    record, salt = e["record"], e["salt"]
    if (record is None) != (salt is None):
        _fail(f"{where}: record and salt must both be present or both be null")
    if record is not None and not isinstance(record, dict):
        _fail(f"{where}.record must be a JSON object or null")
    salt_raw = None if salt is None else _hash(salt, f"{where}.salt")
    return BundleEntry(position, seq, leaf, proof, record, salt_raw)


def parse_bundle(data: bytes | str) -> ParsedBundle:
    """Parse a bundle strictly; raises :class:`MalformedBundle` for anything but exactly the format."""
    loaded = _load_json(data)
    if not isinstance(loaded, dict):
        _fail("the bundle must be a JSON object")
    version = loaded.get("format")
    if not isinstance(version, str) or version not in {BUNDLE_FORMAT, BUNDLE_FORMAT_V1}:
        _fail(f"unknown bundle format (this verifier reads {BUNDLE_FORMAT} and {BUNDLE_FORMAT_V1})")
    top = _exact_keys(loaded, _TOP_KEYS if version == BUNDLE_FORMAT else _TOP_KEYS_V1, "the bundle")
    origin = _text(top["origin"], "origin", 256)
    vkey = _text(top["vkey"], "vkey", 1024)
    checkpoint = _text(top["checkpoint"], "checkpoint", 1 << 16)
    raw_entries = top["entries"]
    if not isinstance(raw_entries, list):
        _fail("entries must be a list")
    entries = [_entry(i, raw) for i, raw in enumerate(raw_entries)]
    consistency = None
    if top["consistency"] is not None:
        c = _exact_keys(top["consistency"], _CONSISTENCY_KEYS, "consistency")
        consistency = (
            _text(c["from_checkpoint"], "consistency.from_checkpoint", 1 << 16),
            _hashes(c["proof"], "consistency.proof"),
        )
    stated = _text(top["range"], "range", 1 << 16) if version == BUNDLE_FORMAT else None
    return ParsedBundle(origin, vkey, checkpoint, entries, consistency, stated)
