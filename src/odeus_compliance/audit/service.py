"""Reading the audit log: entries (decrypted), checkpoints, proofs, full verification, export bundles.

Keyword-only functions over an explicit session (or connection); writes go through the
:class:`~odeus_compliance.audit.appender.AuditAppender`. Nothing here records the access itself: the
controllers and commands do that (``audit.read``, ``audit.exported``, ``audit.verified``) before they hand
anything out.

Full verification streams the stored log: :func:`~odeus_compliance.audit.log_verify.verify_log` runs in a
worker thread and pulls leaves in batches from the event loop, so memory stays bounded for any log size.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, Final

from odeus_compliance.audit.appender import AuditAppender
from odeus_compliance.audit.bundle_build import BundleError, Disclosure, build_bundle
from odeus_compliance.audit.checkpoint import CheckpointError, open_checkpoint
from odeus_compliance.audit.leaf import (
    DataKey,
    Leaf,
    LeafError,
    OpenedLeaf,
    leaf_checker,
    open_leaf,
    parse_leaf,
)
from odeus_compliance.audit.log_verify import verify_log
from odeus_compliance.audit.merkle import consistency_proof, inclusion_proof, leaf_hash
from odeus_compliance.audit.store import (
    EntryFilter,
    Executor,
    checkpoint_at,
    checkpoint_notes,
    entries_in_range,
    leaf_batch,
    leaf_hashes,
    query_entries,
    read_head,
    scrub_filters,
    seq_range_between,
)
from odeus_compliance.audit.verdict import VerificationReport
from odeus_compliance.errors import NotFound, ValidationFailed
from odeus_compliance.keys.ring import (
    KeyEncryptionKey,
    KeyKind,
    LogIdentity,
    data_keys,
    destroy_key,
    list_epochs,
)

__all__ = [
    "MAX_EXPORT_ENTRIES",
    "ConsistencyResult",
    "EntryView",
    "InclusionResult",
    "export_bundle",
    "get_consistency",
    "get_inclusion",
    "list_entries",
    "shred_epoch",
    "verify_stored_log",
]

MAX_EXPORT_ENTRIES: Final = 200_000
"""One bundle holds at most this many entries; export longer periods in parts."""
_VERIFY_BATCH: Final = 20_000
_MISSING: Final = object()


@dataclasses.dataclass(frozen=True, slots=True)
class EntryView:
    """One entry as the auditor sees it: the leaf, and the record unless its epoch was shredded."""

    seq: int
    leaf: str
    key_id: str
    record: dict[str, Any] | None
    pruned: bool


async def _keys_for(
    executor: Executor, kek: KeyEncryptionKey, key_ids: set[str]
) -> dict[str, DataKey | None]:
    return await data_keys(executor=executor, kek=kek, key_ids=key_ids)


def _open(
    leaf_text: str, key_id: str, keys: dict[str, DataKey | None], origin: str
) -> tuple[Leaf, OpenedLeaf | None]:
    leaf = parse_leaf(leaf_text)
    key = keys.get(key_id) if key_id in keys else _MISSING
    if key is _MISSING or leaf.key_id != key_id:
        raise LeafError("the leaf names a data key the key ring does not hold")
    if key is None:
        return leaf, None
    assert isinstance(key, DataKey)
    return leaf, open_leaf(leaf, origin=origin, data_key=key)


async def list_entries(
    *, session: Executor, kek: KeyEncryptionKey, origin: str, filters: EntryFilter, limit: int
) -> tuple[list[EntryView], int | None]:
    """One page of matching entries (ascending seq) and the cursor for the next page (``None``: last).

    A leaf that does not open (tampered) is shown with ``record`` null and ``pruned`` false; run verify.
    """
    rows = await query_entries(session, filters, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    keys = await _keys_for(session, kek, {k for _s, _l, k in rows})
    out: list[EntryView] = []
    for seq, text, key_id in rows:
        try:
            _leaf, opened = _open(text, key_id, keys, origin)
        except LeafError:
            out.append(EntryView(seq, text, key_id, None, pruned=False))
            continue
        record = None if opened is None else json.loads(opened.plaintext)
        out.append(EntryView(seq, text, key_id, record, pruned=opened is None))
    return out, (rows[-1][0] if more and rows else None)


@dataclasses.dataclass(frozen=True, slots=True)
class InclusionResult:
    """An inclusion proof of one leaf against a signed checkpoint."""

    seq: int
    leaf: str
    leaf_hash: bytes
    tree_size: int
    proof: list[bytes]
    checkpoint: str


async def _checkpoint_covering(
    session: Executor, appender: AuditAppender, size: int | None, need: int
) -> tuple[int, str]:
    """The checkpoint of exactly ``size`` (404 if none), or the newest one covering ``need`` leaves (signing a
    fresh one on demand when the newest does not)."""
    if size is not None:
        note = await checkpoint_at(session, size)
        if note is None:
            raise NotFound(f"There is no signed checkpoint of size {size}.")
        return size, note
    latest = await appender.checkpoint()
    if latest is None or latest[0] < need:
        raise NotFound("No signed checkpoint covers that entry yet.")
    return latest


async def get_inclusion(
    *, session: Executor, appender: AuditAppender, seq: int, size: int | None
) -> InclusionResult:
    """The inclusion proof of ``seq`` in the checkpoint of ``size`` (default: newest, signed on demand)."""
    head = await read_head(session)
    if not 0 <= seq < head.size:
        raise NotFound(f"There is no entry {seq}.")
    tree_size, note = await _checkpoint_covering(session, appender, size, seq + 1)
    if seq >= tree_size:
        raise ValidationFailed(f"Entry {seq} is not covered by the checkpoint of size {tree_size}.")
    hashes = await leaf_hashes(session, tree_size)
    rows = await entries_in_range(session, seq, seq)
    if len(hashes) != tree_size or not rows:
        raise ValidationFailed("The stored log is incomplete; run 'audit verify'.")
    text = rows[0][1]
    return InclusionResult(
        seq=seq,
        leaf=text,
        leaf_hash=leaf_hash(text.encode("utf-8")),
        tree_size=tree_size,
        proof=inclusion_proof(seq, tree_size, hashes),
        checkpoint=note,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ConsistencyResult:
    """A consistency proof between two tree sizes; the newer one is a signed checkpoint."""

    first: int
    second: int
    proof: list[bytes]
    first_checkpoint: str | None
    second_checkpoint: str


async def get_consistency(
    *, session: Executor, appender: AuditAppender, first: int, second: int | None
) -> ConsistencyResult:
    """The RFC 9162 consistency proof from size ``first`` to the signed checkpoint of size ``second``."""
    second_size, note = await _checkpoint_covering(session, appender, second, first)
    if not 1 <= first <= second_size:
        raise ValidationFailed(f"'from' must be between 1 and 'to' ({second_size}).")
    hashes = await leaf_hashes(session, second_size)
    if len(hashes) != second_size:
        raise ValidationFailed("The stored log is incomplete; run 'audit verify'.")
    return ConsistencyResult(
        first=first,
        second=second_size,
        proof=consistency_proof(first, second_size, hashes),
        first_checkpoint=await checkpoint_at(session, first),
        second_checkpoint=note,
    )


async def verify_stored_log(
    *,
    session: Executor,
    kek: KeyEncryptionKey | None,
    identity: LogIdentity,
    previous_checkpoint: str | None = None,
) -> VerificationReport:
    """Verify the whole stored log against every stored checkpoint (and the auditor's, if given).

    With ``kek`` every leaf is decrypted too (a modification is named by its seq; shredded leaves count as
    pruned); without, the tree and the leaves' form and order are checked.
    """
    checker = None
    if kek is not None:
        ids = [
            key_id
            for kind, key_id, _e, _d in await list_epochs(executor=session)
            if kind == KeyKind.AUDIT_DATA
        ]
        checker = leaf_checker(
            await data_keys(executor=session, kek=kek, key_ids=ids), origin=identity.origin
        )
    notes = await checkpoint_notes(session)
    loop = asyncio.get_running_loop()

    async def fetch(after: int) -> list[tuple[int, bytes]]:
        return await leaf_batch(session, after=after, limit=_VERIFY_BATCH)

    def leaves() -> Iterator[bytes]:
        after = -1
        while True:
            batch = asyncio.run_coroutine_threadsafe(fetch(after), loop).result()
            for _seq, text in batch:
                yield text
            if len(batch) < _VERIFY_BATCH:
                return
            after = batch[-1][0]

    return await asyncio.to_thread(
        verify_log,
        leaves(),
        origin=identity.origin,
        vkey=identity.vkey,
        checkpoints=notes,
        previous_checkpoint=previous_checkpoint,
        checker=checker,
    )


async def export_bundle(
    *,
    session: Executor,
    appender: AuditAppender,
    start: dt.datetime,
    end: dt.datetime,
    since_checkpoint: str | None = None,
) -> tuple[bytes, int]:
    """A verification bundle of every entry whose time is in ``[start, end]`` (the contiguous seq range
    between the first and the last), against a fresh signed checkpoint, with the range statement signed by
    the log's key; returns it and its entry count.

    ``since_checkpoint`` (a checkpoint the auditor holds) adds a consistency proof from it.
    """
    if end < start:
        raise ValidationFailed("'to' must not be before 'from'.")
    identity = await appender.identity()
    if since_checkpoint is not None:
        try:
            open_checkpoint(since_checkpoint, identity.signer.verifier, origin=identity.origin)
        except CheckpointError as exc:
            raise ValidationFailed(f"since_checkpoint: {exc}") from None
    latest = await appender.checkpoint()
    if latest is None:
        raise NotFound("The audit log has no signed checkpoint.")
    size, note = latest
    span = await seq_range_between(session, start, end)
    rows: list[tuple[int, str, str]] = []
    if span is not None:
        first, last = span[0], min(span[1], size - 1)
        if last - first + 1 > MAX_EXPORT_ENTRIES:
            raise ValidationFailed(
                f"The period holds more than {MAX_EXPORT_ENTRIES} entries; export it in parts."
            )
        if first <= last:
            rows = await entries_in_range(session, first, last)
    keys = await _keys_for(session, appender.kek, {k for _s, _l, k in rows})
    entries: list[tuple[int, bytes, Disclosure | None]] = []
    for seq, text, key_id in rows:
        try:
            _leaf, opened = _open(text, key_id, keys, identity.origin)
        except LeafError:
            raise ValidationFailed(f"Entry {seq} does not open; run 'audit verify'.") from None
        entries.append(
            (seq, text.encode("utf-8"), None if opened is None else (opened.plaintext, opened.salt))
        )
    hashes = await leaf_hashes(session, size)
    try:
        data = build_bundle(
            origin=identity.origin,
            signer=identity.signer,
            checkpoint=note,
            period=(start, end),
            entries=entries,
            hashes=hashes,
            from_checkpoint=since_checkpoint,
        )
    except BundleError as exc:
        raise ValidationFailed(f"Cannot build the bundle: {exc}") from None
    return data, len(entries)


async def shred_epoch(*, session: Any, key_id: str) -> bool:
    """Destroy an audit-data key and clear its entries' filter columns, in one transaction.

    The leaves stay (the log still verifies); their records can never be opened again.
    """
    done = await destroy_key(session=session, key_id=key_id)
    await scrub_filters(session, key_id)
    await session.commit()
    return done


def b64(raw: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(raw).decode("ascii")
