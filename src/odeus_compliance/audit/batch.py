"""One group-commit batch, prepared: records sealed, rows built, tree advanced, due checkpoints signed.

Pure computation from the head the batch is to be appended to (:class:`HeadRead`: the head row and the
current audit-data key, as read under the append lock) and the records; no database access. The appender
calls :func:`prepare_batch` under the lock (PostgreSQL), or ahead of the lock against the head it expects
after its previous batch, and again under the lock only if the head turned out different (SQLite, see
:mod:`~odeus_compliance.audit.sqlite_channel`). Either way what is committed was prepared from the head read
under the lock, so sequence numbers stay unique and gap-free.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from odeus_compliance.audit.checkpoint import Checkpoint, CheckpointSchedule, sign_checkpoint
from odeus_compliance.audit.leaf import DataKey, seal_records
from odeus_compliance.audit.merkle import MerkleAccumulator, leaf_hash
from odeus_compliance.audit.records import AuditRecord
from odeus_compliance.audit.store import Head
from odeus_compliance.keys.ring import LogIdentity

__all__ = ["HeadRead", "PreparedBatch", "PreparedCheckpoint", "prepare_batch"]


@dataclasses.dataclass(frozen=True, slots=True)
class HeadRead:
    """The head row and the newest audit-data key (id, wrapped material), as read under the append lock."""

    head: Head
    key_id: str | None
    wrapped: bytes | None


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedCheckpoint:
    """A checkpoint that fell due inside the batch, signed."""

    size: int
    root: bytes
    note: str
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedBatch:
    """What one transaction writes, and the head it must find under the lock to be valid."""

    base: HeadRead
    """The head it was prepared against: committed only if the head read under the lock equals it."""
    records: list[AuditRecord]
    rows: list[dict[str, Any]]
    checkpoints: list[PreparedCheckpoint]
    head: Head
    """The head after the batch."""

    def after(self) -> HeadRead:
        """The head (and key) the next batch appends to, if this one commits."""
        return HeadRead(self.head, self.base.key_id, self.base.wrapped)


def prepare_batch(
    *,
    base: HeadRead,
    records: Sequence[AuditRecord],
    resource_tags: Sequence[str],
    identity: LogIdentity,
    data_key: Callable[[str | None, bytes | None], DataKey],
    schedule: CheckpointSchedule,
    now: dt.datetime,
) -> PreparedBatch:
    """Give each record the next sequence number (in place: each record belongs to its one pending caller),
    seal it, build its row, append its leaf hash, and sign every checkpoint due (every ``every_records``
    records at exactly that size, and at the end if ``every_seconds`` passed)."""
    head = base.head
    key = data_key(base.key_id, base.wrapped)
    acc = MerkleAccumulator.from_peaks(head.size, head.peaks)
    cp_size = head.checkpoint_size
    every = schedule.every_records
    origin = identity.origin
    rows: list[dict[str, Any]] = []
    due: list[tuple[int, bytes]] = []
    for seq, record in enumerate(records, start=head.size):
        # ``dataclasses.replace`` would validate every field again; only seq changes, from the head
        object.__setattr__(record, "seq", seq)
    texts = seal_records(records, origin=origin, data_key=key)
    for record, tag, text in zip(records, resource_tags, texts, strict=True):
        lh = leaf_hash(text)
        rows.append(
            {
                "seq": record.seq,
                "leaf": text.decode("utf-8"),
                "leaf_hash": lh,
                "time": record.time,
                "key_id": key.key_id,
                "action": record.action.value,
                "outcome": record.outcome.value,
                "actor_key_id": record.actor_key_id,
                "resource_tag": tag,
            }
        )
        acc.append(lh)
        if acc.size - cp_size >= every:
            due.append((acc.size, acc.root()))
            cp_size = acc.size
    since = float("inf") if head.checkpoint_at is None else (now - head.checkpoint_at).total_seconds()
    if schedule.due(size=acc.size, last_size=cp_size, seconds_since_last=since):
        due.append((acc.size, acc.root()))
    checkpoints = [
        PreparedCheckpoint(size, root, sign_checkpoint(Checkpoint(origin, size, root), identity.signer), now)
        for size, root in due
    ]
    return PreparedBatch(
        base=base,
        records=list(records),
        rows=rows,
        checkpoints=checkpoints,
        head=Head(
            size=acc.size,
            peaks=acc.peaks(),
            checkpoint_size=due[-1][0] if due else head.checkpoint_size,
            checkpoint_at=now if due else head.checkpoint_at,
        ),
    )
