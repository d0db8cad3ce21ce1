"""Leaf texts (docs/audit-bundle.md): each record encrypted (AES-256-GCM) and committed to (salted SHA-256).

A leaf text is UTF-8 JSON with sorted keys and no whitespace::

    {"ciphertext":b64,"commitment":b64,"key_id":str,"nonce":b64,"schema":1,"seq":int,"time":"...Z"}

(b64 = standard base64 with padding.) Definitions, schema 1:

- ``envelope = salt || plaintext``: a fresh 32-byte random ``salt`` followed by the record's canonical JSON
  plaintext (:meth:`~odeus_compliance.audit.records.AuditRecord.plaintext`).
- ``ciphertext = AES-256-GCM(data key, nonce, envelope, ad)`` with a fresh 12-byte random ``nonce``; the
  16-byte tag is appended (as ``cryptography``'s ``AESGCM`` and most libraries do).
- ``ad`` (associated data) = canonical JSON of ``{"key_id", "origin", "schema", "seq", "time"}``, i.e. exactly
  ``{"key_id":"<key_id>","origin":"<origin>","schema":1,"seq":<seq>,"time":"<time>"}`` as UTF-8. It binds the
  ciphertext to its log, its position, its key and its format: moved anywhere else it fails to decrypt.
- ``commitment = SHA-256(salt || plaintext)``.

Why the salt sits inside the ciphertext: a disclosed record must be checkable without any key (the bundle
carries record and salt, and anyone recomputes the commitment), and shredding must be complete: destroying
the epoch's data key destroys the salt with the plaintext, so the commitment can no longer be opened or
brute-forced from a guessed record (records are small and guessable; the 256-bit salt is not).

Why random nonces are fine: one data key per epoch and far fewer than 2^32 records per epoch (NIST SP
800-38D's bound for random 96-bit nonces); the key ring rotates epochs long before that.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag

from odeus_compliance.audit.records import MAX_SAFE_INT, AuditRecord, RecordError, canonical_json, parse_time
from odeus_compliance.keys.datakey import KEY_SIZE, DataKey

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "SALT_SIZE",
    "SCHEMA",
    "DataKey",
    "Leaf",
    "LeafError",
    "OpenedLeaf",
    "associated_data",
    "check_disclosure",
    "commitment",
    "leaf_checker",
    "leaf_seq",
    "open_leaf",
    "parse_leaf",
    "seal_record",
    "seal_records",
]

SCHEMA: Final = 1
NONCE_SIZE: Final = 12
SALT_SIZE: Final = 32
TAG_SIZE: Final = 16
MAX_PLAINTEXT: Final = 64 * 1024
"""Records are a few hundred bytes; the cap keeps a hostile leaf from costing more than a little work."""

_KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_LEAF = re.compile(
    rb'\{"ciphertext":"(?P<ciphertext>(?:[A-Za-z0-9+/]{4})*'
    rb'(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==))",'
    rb'"commitment":"(?P<commitment>[A-Za-z0-9+/]{43}=)",'
    rb'"key_id":"(?P<key_id>[A-Za-z0-9._:-]{1,64})",'
    rb'"nonce":"(?P<nonce>[A-Za-z0-9+/]{16})",'
    rb'"schema":1,'
    rb'"seq":(?P<seq>0|[1-9][0-9]{0,15}),'
    rb'"time":"(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"\}'
)


_CIPHERTEXT_KEY: Final = b'{"ciphertext":"'
_CIPHERTEXT_START: Final = len(_CIPHERTEXT_KEY)
_COMMITMENT_KEY: Final = b'","commitment":"'
_B64_CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LEAF_TAIL = re.compile(
    rb'","commitment":"[A-Za-z0-9+/]{43}=",'
    rb'"key_id":"[A-Za-z0-9._:-]{1,64}",'
    rb'"nonce":"[A-Za-z0-9+/]{16}",'
    rb'"schema":1,'
    rb'"seq":(0|[1-9][0-9]{0,15}),'
    rb'"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"\}'
)


class LeafError(ValueError):
    """A leaf text is malformed, or a leaf does not open: wrong key, wrong position, tampered, or shredded."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A parsed leaf. :meth:`text` gives the exact bytes that are hashed into the tree."""

    seq: int
    time: str
    key_id: str
    nonce: bytes
    ciphertext: bytes
    commitment: bytes
    schema: int = SCHEMA

    def text(self) -> bytes:
        """The canonical leaf text."""
        if (
            type(self.seq) is int
            and type(self.schema) is int
            and type(self.key_id) is str
            and type(self.time) is str
            and _KEY_ID.fullmatch(self.key_id)
            and _TIME_TEXT.fullmatch(self.time)
        ):
            # every field is base64, an integer or from a character set JSON writes as is: the canonical
            # JSON without the encoder (byte-identical; a test holds the two paths together)
            return (
                f'{{"ciphertext":"{_b64(self.ciphertext)}","commitment":"{_b64(self.commitment)}",'
                f'"key_id":"{self.key_id}","nonce":"{_b64(self.nonce)}","schema":{self.schema},'
                f'"seq":{self.seq},"time":"{self.time}"}}'
            ).encode("ascii")
        return canonical_json(
            {
                "ciphertext": _b64(self.ciphertext),
                "commitment": _b64(self.commitment),
                "key_id": self.key_id,
                "nonce": _b64(self.nonce),
                "schema": self.schema,
                "seq": self.seq,
                "time": self.time,
            }
        )


@dataclass(frozen=True, slots=True)
class OpenedLeaf:
    """A decrypted leaf: the record, its exact plaintext and its salt (what a bundle discloses)."""

    record: AuditRecord
    plaintext: bytes = field(repr=False)
    salt: bytes = field(repr=False)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: bytes) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw) != text:
        raise LeafError("malformed leaf: non-canonical base64")
    return raw


def associated_data(*, origin: str, seq: int, key_id: str, time: str, schema: int = SCHEMA) -> bytes:
    """The AES-GCM associated data: canonical JSON of ``{"key_id","origin","schema","seq","time"}``."""
    if (
        type(seq) is int
        and type(schema) is int
        and type(key_id) is str
        and type(time) is str
        and type(origin) is str
        and _KEY_ID.fullmatch(key_id)
        and _TIME_TEXT.fullmatch(time)
    ):
        # only ``origin`` may need escaping: it is encoded alone (byte-identical, held by a test)
        return (
            f'{{"key_id":"{key_id}","origin":{_origin_json(origin)},"schema":{schema},"seq":{seq},'
            f'"time":"{time}"}}'
        ).encode()
    return canonical_json({"key_id": key_id, "origin": origin, "schema": schema, "seq": seq, "time": time})


@functools.lru_cache(maxsize=64)
def _origin_json(origin: str) -> str:
    return canonical_json(origin).decode("utf-8")


def commitment(salt: bytes, plaintext: bytes) -> bytes:
    """``SHA-256(salt || plaintext)``."""
    return hashlib.sha256(salt + plaintext).digest()


def leaf_seq(text: bytes) -> int | None:
    """The sequence number of a leaf text in canonical schema-1 form, or ``None`` if it is not in that form.

    The fast path of full-log verification: no JSON parsing, and the long ciphertext is checked with
    ``bytes.translate`` instead of the regular expression (three times faster on real leaves). It accepts
    exactly what ``_LEAF`` accepts (a property test holds the two together); base64 canonicality and the
    calendar check of ``time`` are left to :func:`parse_leaf`.
    """
    pos = text.find(_COMMITMENT_KEY, _CIPHERTEXT_START)
    if pos < _CIPHERTEXT_START + 4 or not text.startswith(_CIPHERTEXT_KEY):
        return None
    m = _LEAF_TAIL.fullmatch(text, pos)
    if m is None:
        return None
    body = text[_CIPHERTEXT_START:pos]
    stripped = body.rstrip(b"=")
    if (pos - _CIPHERTEXT_START) % 4 or len(body) - len(stripped) > 2 or stripped.translate(None, _B64_CHARS):
        return None
    return int(m[1])


def parse_leaf(text: bytes | str) -> Leaf:
    """Parse a leaf text strictly: canonical form only, every field checked; raises :class:`LeafError`."""
    if isinstance(text, str):
        try:
            text = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LeafError("malformed leaf: not UTF-8") from exc
    if not isinstance(text, bytes) or len(text) > 2 * MAX_PLAINTEXT:
        raise LeafError("malformed leaf")
    m = _LEAF.fullmatch(text)
    if m is None:
        raise LeafError("malformed leaf: not a canonical schema-1 leaf text")
    try:
        ciphertext, commit, nonce = _unb64(m["ciphertext"]), _unb64(m["commitment"]), _unb64(m["nonce"])
        time = m["time"].decode("ascii")
        parse_time(time)
    except (binascii.Error, ValueError, RecordError) as exc:
        raise LeafError(f"malformed leaf: {exc}") from exc
    if not SALT_SIZE + TAG_SIZE < len(ciphertext) <= SALT_SIZE + MAX_PLAINTEXT + TAG_SIZE:
        raise LeafError("malformed leaf: ciphertext length out of range")
    seq = int(m["seq"])
    if seq > MAX_SAFE_INT:
        raise LeafError("malformed leaf: seq out of range")
    return Leaf(seq, time, m["key_id"].decode("ascii"), nonce, ciphertext, commit)


def seal_record(record: AuditRecord, *, origin: str, data_key: DataKey) -> Leaf:
    """Encrypt and commit ``record`` under ``data_key`` for the log ``origin``: the leaf to append."""
    plaintext = record.plaintext()
    if len(plaintext) > MAX_PLAINTEXT:
        raise LeafError("the record is too large")
    salt = secrets.token_bytes(SALT_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    time = record.time_text
    ad = associated_data(origin=origin, seq=record.seq, key_id=data_key.key_id, time=time)
    ciphertext = data_key.aead.encrypt(nonce, salt + plaintext, ad)
    return Leaf(record.seq, time, data_key.key_id, nonce, ciphertext, commitment(salt, plaintext))


def seal_records(records: Sequence[AuditRecord], *, origin: str, data_key: DataKey) -> list[bytes]:
    """The leaf texts of :func:`seal_record` for many records at once: the append path.

    The same leaves (each with its own fresh salt and nonce), cheaper: one ``os.urandom`` call for the
    whole batch, the record's time formatted once, the associated data and the leaf text written from
    prefixes made once per batch (``key_id`` is checked by :class:`DataKey`, ``time`` by the pattern below;
    anything else takes :func:`seal_record`'s general path). A test opens every leaf and compares it with
    :func:`seal_record`'s.
    """
    key_id = data_key.key_id
    encrypt = data_key.aead.encrypt
    ad_prefix = f'{{"key_id":"{key_id}","origin":{_origin_json(origin)},"schema":{SCHEMA},"seq":'
    b2a = binascii.b2a_base64
    step = SALT_SIZE + NONCE_SIZE
    randomness = os.urandom(step * len(records))
    out: list[bytes] = []
    for i, record in enumerate(records):
        plaintext, time = record.plaintext_and_time()
        seq = record.seq
        if len(plaintext) > MAX_PLAINTEXT or type(seq) is not int or not _TIME_TEXT.fullmatch(time):
            out.append(seal_record(record, origin=origin, data_key=data_key).text())
            continue
        salt = randomness[i * step : i * step + SALT_SIZE]
        nonce = randomness[i * step + SALT_SIZE : (i + 1) * step]
        envelope = salt + plaintext
        ciphertext = encrypt(nonce, envelope, f'{ad_prefix}{seq},"time":"{time}"}}'.encode())
        out.append(
            b'{"ciphertext":"%s","commitment":"%s","key_id":"%s","nonce":"%s","schema":%d,"seq":%d,"time":"%s"}'
            % (
                b2a(ciphertext, newline=False),
                b2a(hashlib.sha256(envelope).digest(), newline=False),
                key_id.encode("ascii"),
                b2a(nonce, newline=False),
                SCHEMA,
                seq,
                time.encode("ascii"),
            )
        )
    return out


def open_leaf(leaf: Leaf, *, origin: str, data_key: DataKey) -> OpenedLeaf:
    """Decrypt ``leaf`` and check everything it claims; raises :class:`LeafError` if anything is off.

    Checks: the key id matches, the AES-GCM tag verifies under the associated data of *this* origin, seq,
    key id and time, the commitment matches the salt and plaintext, and the plaintext is a valid canonical
    record whose seq and time equal the leaf's.
    """
    if leaf.key_id != data_key.key_id:
        raise LeafError("the leaf was sealed under another data key")
    ad = associated_data(origin=origin, seq=leaf.seq, key_id=leaf.key_id, time=leaf.time, schema=leaf.schema)
    try:
        envelope = data_key.aead.decrypt(leaf.nonce, leaf.ciphertext, ad)
    except (InvalidTag, ValueError) as exc:
        raise LeafError("the leaf does not decrypt: tampered, moved, or another log or key") from exc
    salt, plaintext = envelope[:SALT_SIZE], envelope[SALT_SIZE:]
    if not check_disclosure(leaf, plaintext, salt):
        raise LeafError("the commitment does not match the decrypted record")
    try:
        record = AuditRecord.from_plaintext(plaintext)
    except RecordError as exc:
        raise LeafError(f"the decrypted record is invalid: {exc}") from exc
    if record.seq != leaf.seq or record.time_text != leaf.time:
        raise LeafError("the record's seq or time differs from its leaf")
    return OpenedLeaf(record, plaintext, salt)


_LEAF_TAIL_FIELDS = re.compile(
    rb'","commitment":"(?P<commitment>[A-Za-z0-9+/]{43}=)",'
    rb'"key_id":"(?P<key_id>[A-Za-z0-9._:-]{1,64})",'
    rb'"nonce":"(?P<nonce>[A-Za-z0-9+/]{16})",'
    rb'"schema":1,'
    rb'"seq":(?P<seq>0|[1-9][0-9]{0,15}),'
    rb'"time":"(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"\}'
)


def _canonical_b64(text: bytes) -> bytes:
    raw = binascii.a2b_base64(text, strict_mode=True)
    if binascii.b2a_base64(raw, newline=False) != text:
        raise LeafError("malformed leaf: non-canonical base64")
    return raw


def leaf_checker(keys: Mapping[str, DataKey | None], *, origin: str) -> Callable[[bytes], bool]:
    """For full-log verification: a check of one leaf text under the log's data keys (``None``: destroyed).

    The check returns ``True`` when the leaf opens: its AES-256-GCM tag verifies under the associated data
    of this origin and the leaf's seq, key id and time, its commitment is ``SHA-256(salt || plaintext)``, and
    the plaintext ends with the leaf's own seq and time (the last two keys of a canonical record). It
    returns ``False`` when the leaf's epoch key was destroyed (pruned), and raises :class:`LeafError` for
    anything else (tampered, malformed, moved, or a key the ring does not hold).

    The same verdict on every leaf as :func:`open_leaf`, at a fraction of the cost: the tag and the
    commitment are what no one without the key can forge, so the record inside is not parsed and validated
    again (it was validated before it was sealed, and only the key holder can seal), and the time's calendar
    check is left to the tag too. Leaves are taken in the form :func:`leaf_seq` accepts.
    """
    prefixes = {
        key_id: f'{{"key_id":"{key_id}","origin":{_origin_json(origin)},"schema":{SCHEMA},"seq":'
        for key_id in keys
    }
    sha256 = hashlib.sha256
    compare = secrets.compare_digest

    def check(text: bytes) -> bool:
        pos = text.find(_COMMITMENT_KEY, _CIPHERTEXT_START)
        m = _LEAF_TAIL_FIELDS.fullmatch(text, pos) if pos > _CIPHERTEXT_START else None
        if m is None or not text.startswith(_CIPHERTEXT_KEY):
            raise LeafError("malformed leaf: not a canonical schema-1 leaf text")
        key_id = m["key_id"].decode("ascii")
        if key_id not in keys:
            raise LeafError("the leaf names a data key the key ring does not hold")
        key = keys[key_id]
        if key is None:
            return False
        try:
            ciphertext = _canonical_b64(text[_CIPHERTEXT_START:pos])
            commit = _canonical_b64(m["commitment"])
            nonce = _canonical_b64(m["nonce"])
        except binascii.Error as exc:
            raise LeafError("malformed leaf: bad base64") from exc
        if not SALT_SIZE + TAG_SIZE < len(ciphertext) <= SALT_SIZE + MAX_PLAINTEXT + TAG_SIZE:
            raise LeafError("malformed leaf: ciphertext length out of range")
        seq = int(m["seq"])
        if seq > MAX_SAFE_INT:
            raise LeafError("malformed leaf: seq out of range")
        time = m["time"]
        ad = b'%s%d,"time":"%s"}' % (prefixes[key_id].encode(), seq, time)
        try:
            envelope = key.aead.decrypt(nonce, ciphertext, ad)
        except (InvalidTag, ValueError) as exc:
            raise LeafError("the leaf does not decrypt: tampered, moved, or another log or key") from exc
        if not compare(sha256(envelope).digest(), commit):
            raise LeafError("the commitment does not match the decrypted record")
        if not envelope.endswith(b',"seq":%d,"time":"%s"}' % (seq, time)):
            raise LeafError("the record's seq or time differs from its leaf")
        return True

    return check


def check_disclosure(leaf: Leaf, plaintext: bytes, salt: bytes) -> bool:
    """True iff ``(plaintext, salt)`` opens the leaf's commitment: no key needed."""
    return len(salt) == SALT_SIZE and secrets.compare_digest(commitment(salt, plaintext), leaf.commitment)
