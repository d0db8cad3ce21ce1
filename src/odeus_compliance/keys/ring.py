"""The key ring: epochs of keys, each wrapped under a key-encryption key (KEK) derived from the master key.

Kinds (:class:`KeyKind`): ``audit-data`` (AES-256 data keys of the audit log), ``pseudonymisation`` (for the
policy engine's keyed tokens), ``checkpoint-signing`` (the Ed25519 seed that signs audit checkpoints),
``report-data`` (AES-256 data keys of the stored report artifacts). Each
kind has epochs 1, 2, ...; the newest live epoch is the current key. A key id is ``<kind>:<epoch>:<8 hex>``.

Why this shape:

- Rotation never rewrites history: a new epoch is a new row; old rows stay and keep opening what they
  encrypted. Leaves name their data key by id.
- Destroying a key is how data is shredded: the wrapped material is deleted (set to NULL) and
  :func:`data_keys` reports the id as destroyed (``None``); the audit log still verifies, because its tree
  hashes leaf texts, not plaintexts.
- Wrapping: AES-256-GCM under a KEK = HKDF-SHA-256(master key, info "odeus-compliance/key-ring-kek/v1"),
  with the key's kind and id as associated data, so a wrapped key moved to another row does not open. A
  wrong master key fails with one clear error, never a silent different key.
- The installation id (random, made once, stored in ``installation``) names the log: its origin is
  ``odeus-compliance/<install id>``, which is also the checkpoint signer's key name (as C2SP recommends).
- Everything here works on a session or a connection handed in; the caller owns the transaction, except the
  :class:`KeyRing` methods, which each run their own.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from odeus_compliance.db.models import Installation, KeyEpoch, utcnow
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.datakey import DataKey
from odeus_compliance.keys.note_keys import Signer

__all__ = [
    "ORIGIN_PREFIX",
    "ROTATABLE_KINDS",
    "EpochInfo",
    "KeyEncryptionKey",
    "KeyKind",
    "KeyRing",
    "KeyRingError",
    "KeyRingStatus",
    "LogIdentity",
    "current_data_key",
    "data_keys",
    "describe_epochs",
    "destroy_key",
    "ensure_key_ring",
    "list_epochs",
    "load_identity",
    "rotate_key",
]

ORIGIN_PREFIX: Final = "odeus-compliance/"
_NONCE: Final = 12
_KEY_BYTES: Final = 32

Executor = AsyncSession | AsyncConnection
"""What the functions here run their statements on; the caller owns its transaction."""


class KeyRingError(OdeusComplianceError):
    """The key ring is missing, incomplete, or does not open under this master key; the message says which."""


class KeyKind(enum.StrEnum):
    """What a key is for."""

    AUDIT_DATA = "audit-data"
    """AES-256 data keys of the audit log (one per epoch)."""
    PSEUDONYMISATION = "pseudonymisation"
    """The keyed-token key of the policy engine."""
    CHECKPOINT_SIGNING = "checkpoint-signing"
    """The Ed25519 seed that signs audit checkpoints."""
    REPORT_DATA = "report-data"
    """AES-256 data keys of stored report artifacts (PDF, dataset): destroying an epoch shreds its reports."""


ROTATABLE_KINDS: Final = frozenset({KeyKind.AUDIT_DATA, KeyKind.PSEUDONYMISATION, KeyKind.REPORT_DATA})
"""Kinds ``keys rotate`` accepts. A new checkpoint-signing key would give the log a second identity that
auditors must be told about (a new ``vkey``); that procedure is not built, so rotating it is refused."""


class KeyEncryptionKey:
    """The KEK and the other keys derived from the master key; ``repr`` never shows them."""

    __slots__ = ("_filter", "_kek")
    _KEK_INFO: Final = b"odeus-compliance/key-ring-kek/v1"
    _FILTER_INFO: Final = b"odeus-compliance/audit-filter-tag/v1"

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != _KEY_BYTES:
            raise KeyRingError("the master key must be 32 bytes")
        self._kek = AESGCM(_hkdf(master_key, self._KEK_INFO))
        self._filter = _hkdf(master_key, self._FILTER_INFO)

    @staticmethod
    def _ad(kind: str, key_id: str) -> bytes:
        return f"odeus-compliance/key-ring/v1\n{kind}\n{key_id}".encode()

    def wrap(self, *, kind: str, key_id: str, material: bytes) -> bytes:
        """``nonce || AES-256-GCM(KEK, material, ad = kind and key id)``."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._kek.encrypt(nonce, material, self._ad(kind, key_id))

    def unwrap(self, *, kind: str, key_id: str, wrapped: bytes) -> bytes:
        """The key material, or :class:`KeyRingError` if the master key (or the row) is wrong."""
        try:
            return self._kek.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], self._ad(kind, key_id))
        except (InvalidTag, ValueError):
            raise KeyRingError(
                f"key {key_id} does not open under this master key "
                "(wrong master key, or the key ring was altered)"
            ) from None

    def filter_tag(self, value: str) -> str:
        """HMAC-SHA-256 of a filter value (an audit record's resource), hex: searchable, not readable."""
        return hmac.new(self._filter, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "KeyEncryptionKey('**********')"


def _hkdf(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(master_key)


@dataclass(frozen=True, slots=True)
class LogIdentity:
    """The audit log's name (origin) and its checkpoint signer (secret; hidden from ``repr``)."""

    origin: str
    signer: Signer = field(repr=False)
    signing_key_id: str

    @property
    def vkey(self) -> str:
        """The public verifier key auditors pin (C2SP ``vkey``)."""
        return self.signer.verifier.vkey


@dataclass(frozen=True, slots=True)
class KeyRingStatus:
    """What :func:`ensure_key_ring` found or made."""

    origin: str
    vkey: str
    created: tuple[str, ...]
    """Ids of the keys made now (empty when the ring was complete), plus ``installation`` if it was made."""


def _new_key_id(kind: KeyKind, epoch: int) -> str:
    return f"{kind.value}:{epoch}:{secrets.token_hex(4)}"


def epoch_of(key_id: str) -> int:
    """The epoch number inside a key id of this ring (``<kind>:<epoch>:<random>``)."""
    parts = key_id.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise KeyRingError("a key id of the key ring has the form <kind>:<epoch>:<random>")
    return int(parts[1])


def _material(kind: KeyKind) -> bytes:
    return secrets.token_bytes(_KEY_BYTES)  # a data key, a token key, or an Ed25519 seed: 32 random bytes


async def _newest(executor: Executor, kind: KeyKind) -> KeyEpoch | None:
    row = (
        await executor.execute(
            select(KeyEpoch.key_id, KeyEpoch.epoch, KeyEpoch.wrapped, KeyEpoch.destroyed_at)
            .where(KeyEpoch.kind == kind.value)
            .order_by(KeyEpoch.epoch.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return KeyEpoch(key_id=row[0], kind=kind.value, epoch=row[1], wrapped=row[2], destroyed_at=row[3])


async def _insert_epoch(executor: Executor, kek: KeyEncryptionKey, kind: KeyKind, epoch: int) -> str:
    key_id = _new_key_id(kind, epoch)
    wrapped = kek.wrap(kind=kind.value, key_id=key_id, material=_material(kind))
    await executor.execute(
        insert(KeyEpoch).values(
            key_id=key_id,
            kind=kind.value,
            epoch=epoch,
            wrapped=wrapped,
            created_at=utcnow(),
            destroyed_at=None,
        )
    )
    return key_id


async def ensure_key_ring(*, session: AsyncSession, kek: KeyEncryptionKey) -> KeyRingStatus:
    """Create whatever is missing (the installation id, epoch 1 of each kind) and commit; idempotent.

    Safe when several processes start at once: a unique-constraint race is rolled back and retried, and the
    winner's rows are used. Refuses (:class:`KeyRingError`) a ring this master key does not open.
    """
    for attempt in range(3):
        created: list[str] = []
        try:
            if await session.scalar(select(Installation.install_id).where(Installation.id == 1)) is None:
                await session.execute(
                    insert(Installation).values(id=1, install_id=secrets.token_hex(8), created_at=utcnow())
                )
                created.append("installation")
            for kind in KeyKind:
                if await _newest(session, kind) is None:
                    key_id = await _insert_epoch(session, kek, kind, 1)
                    created.append(key_id)
            await session.commit()
            break
        except IntegrityError:
            await session.rollback()
            if attempt == 2:
                raise
    identity = await load_identity(executor=session, kek=kek)
    await current_data_key(executor=session, kek=kek, kind=KeyKind.AUDIT_DATA)  # opens, or raises
    await session.commit()
    return KeyRingStatus(origin=identity.origin, vkey=identity.vkey, created=tuple(created))


async def load_identity(*, executor: Executor, kek: KeyEncryptionKey) -> LogIdentity:
    """The log's origin and signer; :class:`KeyRingError` if ``keys init`` has not run."""
    install_id = (
        await executor.execute(select(Installation.install_id).where(Installation.id == 1))
    ).scalar()
    newest = await _newest(executor, KeyKind.CHECKPOINT_SIGNING)
    if install_id is None or newest is None or newest.wrapped is None:
        raise KeyRingError("the key ring is not initialised: run 'odeus-compliance keys init'")
    origin = ORIGIN_PREFIX + install_id
    seed = kek.unwrap(kind=KeyKind.CHECKPOINT_SIGNING.value, key_id=newest.key_id, wrapped=newest.wrapped)
    return LogIdentity(origin=origin, signer=Signer(origin, seed), signing_key_id=newest.key_id)


async def current_data_key(*, executor: Executor, kek: KeyEncryptionKey, kind: KeyKind) -> DataKey:
    """The newest live key of ``kind``; :class:`KeyRingError` if there is none."""
    newest = await _newest(executor, kind)
    if newest is None or newest.wrapped is None:
        raise KeyRingError(f"no live {kind.value} key: run 'odeus-compliance keys init' (or 'keys rotate')")
    return DataKey(newest.key_id, kek.unwrap(kind=kind.value, key_id=newest.key_id, wrapped=newest.wrapped))


async def data_keys(
    *, executor: Executor, kek: KeyEncryptionKey, key_ids: Iterable[str]
) -> dict[str, DataKey | None]:
    """The keys with these ids: a :class:`DataKey`, or ``None`` if destroyed; unknown ids are left out."""
    wanted = sorted(set(key_ids))
    if not wanted:
        return {}
    rows = (
        await executor.execute(
            select(KeyEpoch.key_id, KeyEpoch.kind, KeyEpoch.wrapped).where(KeyEpoch.key_id.in_(wanted))
        )
    ).all()
    out: dict[str, DataKey | None] = {}
    for key_id, kind, wrapped in rows:
        out[key_id] = (
            None
            if wrapped is None
            else DataKey(key_id, kek.unwrap(kind=kind, key_id=key_id, wrapped=wrapped))
        )
    return out


async def rotate_key(*, session: AsyncSession, kek: KeyEncryptionKey, kind: KeyKind) -> str:
    """Start a new epoch of ``kind`` (the new key is current from now on); commits; returns the new id."""
    if kind not in ROTATABLE_KINDS:
        raise KeyRingError(
            f"{kind.value} keys cannot be rotated yet: a new signing key changes the log's verifier key"
        )
    for attempt in range(3):
        newest = await _newest(session, kind)
        if newest is None:
            raise KeyRingError("the key ring is not initialised: run 'odeus-compliance keys init'")
        try:
            key_id = await _insert_epoch(session, kek, kind, newest.epoch + 1)
            await session.commit()
        except IntegrityError:
            await session.rollback()  # another process rotated at the same moment: rotate after it
            if attempt == 2:
                raise
        else:
            return key_id
    raise AssertionError  # pragma: no cover - the loop returns or raises


async def destroy_key(*, session: AsyncSession, key_id: str) -> bool:
    """Destroy a key's material (shredding what it encrypted) without committing; False if already gone.

    The current key of a kind cannot be destroyed (rotate first), nor the checkpoint signer.
    """
    row = (
        await session.execute(select(KeyEpoch.kind, KeyEpoch.destroyed_at).where(KeyEpoch.key_id == key_id))
    ).first()
    if row is None:
        raise KeyRingError("no key with that id")
    kind = KeyKind(row[0])
    if kind is KeyKind.CHECKPOINT_SIGNING:
        raise KeyRingError("the checkpoint signer cannot be destroyed")
    if row[1] is not None:
        return False
    newest = await _newest(session, kind)
    if newest is not None and newest.key_id == key_id:
        raise KeyRingError("this is the current key of its kind: rotate first")
    await session.execute(
        update(KeyEpoch).where(KeyEpoch.key_id == key_id).values(wrapped=None, destroyed_at=utcnow())
    )
    return True


async def list_epochs(*, executor: Executor) -> list[tuple[str, str, int, bool]]:
    """Every key: ``(kind, key id, epoch, destroyed)``, by kind and epoch."""
    rows = (
        await executor.execute(
            select(KeyEpoch.kind, KeyEpoch.key_id, KeyEpoch.epoch, KeyEpoch.destroyed_at).order_by(
                KeyEpoch.kind, KeyEpoch.epoch
            )
        )
    ).all()
    return [(k, i, e, d is not None) for k, i, e, d in rows]


@dataclass(frozen=True, slots=True)
class EpochInfo:
    """What may be shown of one key: never its material."""

    key_id: str
    kind: str
    epoch: int
    created_at: dt.datetime
    destroyed_at: dt.datetime | None


async def describe_epochs(*, executor: Executor) -> list[EpochInfo]:
    """Every key with its dates, by kind and epoch (the console's key-epoch page)."""
    rows = (
        await executor.execute(
            select(
                KeyEpoch.key_id, KeyEpoch.kind, KeyEpoch.epoch, KeyEpoch.created_at, KeyEpoch.destroyed_at
            ).order_by(KeyEpoch.kind, KeyEpoch.epoch)
        )
    ).all()
    return [EpochInfo(k, kind, int(e), c, d) for k, kind, e, c, d in rows]


async def epoch_count(*, executor: Executor) -> int:
    """How many keys the ring holds (live or destroyed)."""
    return int((await executor.execute(select(func.count()).select_from(KeyEpoch))).scalar_one())


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The ring over a session factory: each method runs its own transaction."""

    sessions: async_sessionmaker[AsyncSession]
    kek: KeyEncryptionKey

    async def ensure(self) -> KeyRingStatus:
        """:func:`ensure_key_ring`."""
        async with self.sessions() as session:
            return await ensure_key_ring(session=session, kek=self.kek)

    async def current_data_key(self, kind: KeyKind) -> DataKey:
        """The current key of ``kind``."""
        async with self.sessions() as session:
            return await current_data_key(executor=session, kek=self.kek, kind=kind)

    async def data_key(self, key_id: str) -> DataKey | None:
        """The key with ``key_id``; ``None`` when destroyed (its payloads are shredded) or unknown."""
        async with self.sessions() as session:
            return (await data_keys(executor=session, kek=self.kek, key_ids=[key_id])).get(key_id)

    async def rotate(self, kind: KeyKind) -> str:
        """A new epoch of ``kind``."""
        async with self.sessions() as session:
            return await rotate_key(session=session, kek=self.kek, kind=kind)

    async def destroy(self, key_id: str) -> bool:
        """Destroy one key and commit."""
        async with self.sessions() as session:
            done = await destroy_key(session=session, key_id=key_id)
            await session.commit()
            return done
