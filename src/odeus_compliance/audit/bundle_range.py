"""The range statement of an export bundle: what the bundle covers, signed with the log's key.

Inclusion proofs show that each entry a bundle holds is in the log, not that the bundle holds every entry it
should: without a statement of its range, a bundle with its first or last entries cut off still verifies.
So the exporter signs, with the checkpoint key, a C2SP signed note (:mod:`~odeus_compliance.audit.note`)
whose text is exactly (docs/audit-bundle.md)::

    odeus-compliance-audit-bundle-range/1
    origin <origin>
    from <requested start, UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>
    to <requested end, inclusive, same form>
    first <seq of the first entry, or none>
    last <seq of the last entry, or none>
    size <tree size of the checkpoint the proofs lead to>
    root <base64 root of that tree>

Meaning: "in the tree of ``size`` leaves with ``root``, the entries whose time is in ``[from, to]`` span the
sequence numbers ``first..last``" (``none``: no entry). The first line names the statement type, so the
note can never be taken for a checkpoint (whose second line is a bare number) nor a checkpoint for it.

Parsing is strict (exact lines, canonical numbers and base64, microsecond UTC times); any deviation raises
:class:`RangeError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from odeus_compliance.audit.merkle import HASH_SIZE, MAX_TREE_SIZE
from odeus_compliance.audit.note import Signer, sign_note

__all__ = ["RANGE_HEADER", "BundleRange", "RangeError", "format_range_time", "parse_range_body", "sign_range"]

RANGE_HEADER: Final = "odeus-compliance-audit-bundle-range/1"
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_TIME: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")
_KEYS: Final = ("origin", "from", "to", "first", "last", "size", "root")


class RangeError(ValueError):
    """A range statement is malformed or inconsistent; the message says which line and why."""


def format_range_time(moment: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (microseconds: a request's bounds are kept exactly)."""
    if moment.tzinfo is None:
        raise RangeError("range times must be timezone-aware")
    u = moment.astimezone(dt.UTC)
    day = f"{u.year:04d}-{u.month:02d}-{u.day:02d}"
    return f"{day}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def _parse_time(text: str, what: str) -> dt.datetime:
    match = _TIME.fullmatch(text)
    if match is None:
        raise RangeError(f"'{what}' must be a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ")
    year, month, day, hour, minute, second, micro = (int(g) for g in match.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.UTC)
    except ValueError:
        raise RangeError(f"'{what}' is not a valid date and time") from None


def _parse_number(text: str, what: str) -> int:
    if not _NUMBER.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise RangeError(f"'{what}' must be a canonical decimal number")
    return int(text)


@dataclass(frozen=True, slots=True)
class BundleRange:
    """What a bundle covers: the requested time range, the seqs of its first and last entry (``None`` when
    the range holds no entry) and the tree (``size``, ``root``) its proofs lead to."""

    origin: str
    start: dt.datetime
    end: dt.datetime
    first: int | None
    last: int | None
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or any(ch < " " or ch == "\x7f" for ch in self.origin):
            raise RangeError("the origin must be a non-empty line without control characters")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise RangeError("range times must be timezone-aware")
        if self.end < self.start:
            raise RangeError("'to' is before 'from'")
        if (self.first is None) != (self.last is None):
            raise RangeError("'first' and 'last' are both numbers or both none")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise RangeError("'size' is out of range")
        if self.first is not None and self.last is not None and not 0 <= self.first <= self.last < self.size:
            raise RangeError("'first' and 'last' must satisfy first <= last < size")
        if len(self.root) != HASH_SIZE:
            raise RangeError("'root' must be a 32-byte hash")

    @property
    def seqs(self) -> range:
        """The sequence numbers the range spans (empty when it holds no entry)."""
        if self.first is None or self.last is None:
            return range(0)
        return range(self.first, self.last + 1)

    def body(self) -> str:
        """The note text that is signed, byte for byte (each line ends in a newline)."""
        lines = [
            RANGE_HEADER,
            f"origin {self.origin}",
            f"from {format_range_time(self.start)}",
            f"to {format_range_time(self.end)}",
            f"first {'none' if self.first is None else self.first}",
            f"last {'none' if self.last is None else self.last}",
            f"size {self.size}",
            f"root {base64.b64encode(self.root).decode('ascii')}",
        ]
        return "".join(line + "\n" for line in lines)

    def describe(self) -> str:
        """One line for people: the time range, the seqs and the tree."""
        span = "no entries" if self.first is None else f"seq {self.first}..{self.last}"
        return (
            f"entries from {format_range_time(self.start)} to {format_range_time(self.end)}: {span} "
            f"of the tree of size {self.size}"
        )


def parse_range_body(text: str) -> BundleRange:
    """Parse a range statement's note text strictly (not the signature: open the note first)."""
    if not text.endswith("\n"):
        raise RangeError("the statement must end with a newline")
    lines = text[:-1].split("\n")
    if not lines or lines[0] != RANGE_HEADER:
        raise RangeError(f"the statement must start with the line {RANGE_HEADER}")
    if len(lines) != len(_KEYS) + 1:
        raise RangeError(f"the statement must have {len(_KEYS) + 1} lines")
    values: dict[str, str] = {}
    for key, line in zip(_KEYS, lines[1:], strict=True):
        name, sep, value = line.partition(" ")
        if name != key or not sep or not value:
            raise RangeError(f"expected the line '{key} <value>'")
        values[key] = value
    first = None if values["first"] == "none" else _parse_number(values["first"], "first")
    last = None if values["last"] == "none" else _parse_number(values["last"], "last")
    try:
        root = base64.b64decode(values["root"].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise RangeError("'root' is not base64") from None
    if base64.b64encode(root).decode("ascii") != values["root"]:
        raise RangeError("'root' is not canonical base64")
    return BundleRange(
        origin=values["origin"],
        start=_parse_time(values["from"], "from"),
        end=_parse_time(values["to"], "to"),
        first=first,
        last=last,
        size=_parse_number(values["size"], "size"),
        root=root,
    )


def sign_range(statement: BundleRange, signer: Signer) -> str:
    """The signed note of ``statement`` (Ed25519 over :meth:`BundleRange.body`, C2SP signed-note form)."""
    return sign_note(statement.body(), signer)
