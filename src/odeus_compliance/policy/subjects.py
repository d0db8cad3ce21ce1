"""One person, one token: the columns of an export that name the same person share a subject token.

A user's ``user_id``, ``email`` and ``name`` (and an agent's or project's owner id and e-mail) map to one
subject token per domain, derived from the stable id when the row has it. Tokenising each column on its own
would give three tokens per person that a reader could not join, or worse, join wrongly; deriving the
e-mail column's token from the id means the e-mail's own value never reaches the token function.

Without an id in the row the token derives from the canonical e-mail (then the name), tagged so it can
never equal an id-derived token of someone else. Such a token does not link to the person's id-derived
token; the engine counts these rows for the manifest.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from odeus_compliance.policy.model import TokenDomain
from odeus_compliance.policy.text_fold import ascii_lookalike
from odeus_compliance.upstream.anonymisation import PLACEHOLDERS
from odeus_compliance.upstream.columns import ExportType

if TYPE_CHECKING:
    from collections.abc import Mapping

    from odeus_compliance.policy.crypto import Tokenizer


@dataclass(frozen=True, slots=True)
class SubjectColumns:
    """The columns of one export that name one person: the id anchor, then e-mail and name (if any)."""

    anchor: str
    email: str | None = None
    name: str | None = None

    @property
    def members(self) -> frozenset[str]:
        """Every column of the group."""
        return frozenset(c for c in (self.anchor, self.email, self.name) if c is not None)


SUBJECT_COLUMNS: Mapping[ExportType, SubjectColumns] = MappingProxyType(
    {
        ExportType.USERS: SubjectColumns(anchor="user_id", email="email", name="name"),
        ExportType.ASSISTANTS: SubjectColumns(anchor="assistant_owner_id", email="assistant_owner_email"),
        ExportType.AGENTS: SubjectColumns(anchor="assistant_owner_id", email="assistant_owner_email"),
        ExportType.PROJECTS: SubjectColumns(anchor="project_owner_id", email="project_owner_email"),
    }
)


def subject_columns(export_type: ExportType) -> frozenset[str]:
    """The columns of an export that belong to a subject group (they pseudonymise to the subject token)."""
    group = SUBJECT_COLUMNS.get(export_type)
    return group.members if group is not None else frozenset()


def canonical_id(value: str) -> str:
    """An id as compared, so that one person is never counted as several: compatibility forms as what they
    stand for (NFKC: full-width and mathematical digits), invisible characters removed (zero-width spaces
    and joiners, word joiner, byte order mark, soft hyphen: Unicode's format characters), surrounding blanks
    removed, case folded, and letters outside ASCII that look like an ASCII letter (TR39: Cyrillic U+0443
    as y) as that letter."""
    folded = _visible(value).strip().casefold()
    if folded.isascii():
        return folded
    return "".join(c if c.isascii() else (ascii_lookalike(c) or c) for c in folded)


def canonical_email(value: str) -> str:
    """An e-mail as compared: NFKC, invisible characters removed, trimmed, case-folded (mailboxes are
    case-insensitive in practice)."""
    return _visible(value).strip().casefold()


def canonical_name(value: str) -> str:
    """A name as compared: NFKC, invisible characters removed, inner whitespace collapsed, case-folded."""
    return " ".join(_visible(value).split()).casefold()


def _visible(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", value) if unicodedata.category(c) != "Cf")


def names_someone(canonical: str) -> bool:
    """Whether a canonical id, e-mail or name names anyone: not empty (blanks and invisible characters
    alone canonicalise to nothing) and not a placeholder Odeus may write instead (``Anonymous``, ...)."""
    return bool(canonical) and canonical not in PLACEHOLDERS


def subject_message(row: Mapping[str, object], group: SubjectColumns) -> bytes | None:
    """The tagged, canonical input the subject token is made from, or ``None`` if the row names nobody."""
    for tag, column, canon in (
        (b"id", group.anchor, canonical_id),
        (b"email", group.email, canonical_email),
        (b"name", group.name, canonical_name),
    ):
        if column is None:
            continue
        raw = row.get(column)
        if not isinstance(raw, str):  # ids, e-mails and names are text; None is an empty cell
            continue
        value = canon(raw)
        if names_someone(value):
            return tag + b"\x00" + value.encode("utf-8")
    return None


def subject_token(row: Mapping[str, object], group: SubjectColumns, tokenizer: Tokenizer) -> str | None:
    """The row's subject token (the same for every member column), or ``None`` if the row names nobody."""
    message = subject_message(row, group)
    if message is None:
        return None
    domain = TokenDomain.SUBJECT
    return tokenizer.token(prefix=domain.prefix, label=domain.value, message=message)


def pseudonymize_id(value: str, tokenizer: Tokenizer) -> str:
    """The subject token of a bare user id (for the keys of maps or columns that hold a user id alone)."""
    domain = TokenDomain.SUBJECT
    message = b"id\x00" + canonical_id(value).encode("utf-8")
    return tokenizer.token(prefix=domain.prefix, label=domain.value, message=message)
