"""What an export's header tells us: which known columns arrived, which are new, which were withheld.

The header decides the type of every cell that follows. Known columns may come in any order; a column the
client does not know is kept as text and listed in ``unknown`` so that nothing is hidden from the policy
engine (which drops and reports it). Columns Odeus withholds for privacy are listed in ``removed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from odeus_compliance.upstream.columns import (
    HIDDEN_WITHOUT_USER_LEVEL_DATA,
    Column,
    ExportType,
    Kind,
    known_columns,
)
from odeus_compliance.upstream.errors import MalformedExport

REQUIRED_COLUMNS = ("period_start", "period_end", "org_id")


def privacy_columns(export_type: ExportType) -> tuple[str, ...]:
    """Columns whose absence or blanking counts as anonymisation upstream: the identifying ones, and the
    ones Odeus drops when a workspace disables user-level data."""
    known = known_columns(export_type)
    hidden = HIDDEN_WITHOUT_USER_LEVEL_DATA.get(export_type, frozenset())
    return tuple(name for name, column in known.items() if column.identifying or name in hidden)


def column_label(export_type: ExportType, name: str) -> str:
    """How a message names the column ``name``: quoted when the client knows it, else not at all (an
    unknown column's name is the upstream's text and could be anything)."""
    return f"column {name!r}" if name in known_columns(export_type) else "a column the client does not know"


@dataclass(frozen=True, slots=True)
class ExportSchema:
    """The columns of one export as its header lists them."""

    export_type: ExportType
    columns: tuple[Column, ...]
    unknown: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in header order."""
        return tuple(c.name for c in self.columns)

    @classmethod
    def from_header(cls, export_type: ExportType, names: Sequence[str]) -> ExportSchema:
        """Resolve a header; raise :class:`MalformedExport` if it is unusable."""
        if len(set(names)) != len(names):
            msg = f"the {export_type.value} export header names a column twice"
            raise MalformedExport(msg)
        if any(not name for name in names):
            msg = f"the {export_type.value} export header has an empty column name"
            raise MalformedExport(msg)
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            msg = (
                f"the {export_type.value} export header lacks {', '.join(missing)}; every export starts "
                "with period_start, period_end, org_id"
            )
            raise MalformedExport(msg)
        known = known_columns(export_type)
        columns = tuple(known.get(name, Column(name, Kind.STR)) for name in names)
        unknown = tuple(name for name in names if name not in known)
        removed = tuple(name for name in privacy_columns(export_type) if name not in names)
        return cls(export_type, columns, unknown, removed)
