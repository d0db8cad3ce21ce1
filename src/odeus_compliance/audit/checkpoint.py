"""Checkpoints: C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint) in Ed25519 signed notes.

A checkpoint is the log's signed statement "the tree of ``size`` leaves under ``origin`` has ``root``". Its
body is::

    <origin>\\n<size in decimal>\\n<base64 root>\\n[<extension line>\\n ...]

Why: a checkpoint an auditor keeps is what later exposes a truncated tail or a forked history (a consistency
proof from it must exist). The log must never sign two checkpoints that are inconsistent with each other.

Strictness: the size is canonical decimal (no sign, no leading zeros) within 0..2^63-1; the root is canonical
base64 of exactly 32 bytes; the origin and extension lines are non-empty and free of control characters.

When to make one: :class:`CheckpointSchedule` says whether one is due, at least every ``every_records``
records or ``every_seconds`` seconds, whichever comes first; on demand means simply calling
:func:`sign_checkpoint`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from odeus_compliance.audit.merkle import HASH_SIZE, MAX_TREE_SIZE
from odeus_compliance.audit.note import NoteError, Signer, Verifier, open_note, sign_note

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointSchedule",
    "open_checkpoint",
    "parse_checkpoint_body",
    "sign_checkpoint",
]

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_ORIGIN: Final = 256


class CheckpointError(ValueError):
    """A checkpoint is malformed, for another origin, or not signed by the expected key."""


def _valid_line(line: str) -> bool:
    return bool(line) and len(line) <= 4096 and all(ch >= " " and ch != "\x7f" for ch in line)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``origin``, tree ``size``, 32-byte ``root``, and optional extension lines (not recommended by C2SP)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _valid_line(self.origin) or len(self.origin) > _MAX_ORIGIN:
            raise CheckpointError("the origin must be a non-empty line without control characters")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise CheckpointError("the tree size must be an integer in 0..2^63-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError("the root must be a 32-byte hash")
        if not all(_valid_line(x) for x in self.extensions):
            raise CheckpointError("extension lines must be non-empty and without control characters")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint body strictly (the note text, not the whole signed note)."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise CheckpointError("malformed checkpoint: the body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed checkpoint: want origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text):
        raise CheckpointError("malformed checkpoint: the size is not a canonical decimal number")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise CheckpointError("malformed checkpoint: the root is not base64") from exc
    if base64.b64encode(root).decode("ascii") != root_text:
        raise CheckpointError("malformed checkpoint: the root is not canonical base64")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise CheckpointError("malformed checkpoint: the size is too large")
    if len(root) != HASH_SIZE:
        raise CheckpointError("malformed checkpoint: the root is not 32 bytes")
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note text of ``checkpoint``. C2SP recommends the key name equal the origin."""
    return sign_note(checkpoint.body(), signer)


def open_checkpoint(note: str | bytes, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint against ``verifier`` and parse its body; ``origin`` pins the log identity.

    Raises :class:`CheckpointError` if the note is malformed, the key did not sign it (or signed it badly),
    the body is malformed, or the origin differs from the expected one.
    """
    try:
        opened, _ = open_note(note, [verifier])
    except NoteError as exc:
        raise CheckpointError(f"checkpoint signature: {exc}") from exc
    cp = parse_checkpoint_body(opened.text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError("the checkpoint is for another log (origin differs)")
    return cp


@dataclass(frozen=True, slots=True)
class CheckpointSchedule:
    """When to sign: after ``every_records`` new records or ``every_seconds`` since the last checkpoint."""

    every_records: int = 1000
    every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.every_records < 1 or not self.every_seconds > 0:
            raise CheckpointError("checkpoint intervals must be positive")

    def due(self, *, size: int, last_size: int, seconds_since_last: float) -> bool:
        """True if the log has grown since the last checkpoint and one of the two limits is reached."""
        if size <= last_size:
            return False
        return size - last_size >= self.every_records or seconds_since_last >= self.every_seconds
