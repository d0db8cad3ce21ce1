"""One upstream row through one export's rules: the building block the streaming engine repeats.

Closed by default: a column the policy does not name is never written. It is dropped and reported (the
caller lists it in the manifest), or the row is refused when the policy says ``on_unknown_column = fail``.
Subject columns get the row's one subject token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from odeus_compliance.policy.model import Drop, Pseudonymize, UnknownColumn
from odeus_compliance.policy.operations import apply_operation, is_empty
from odeus_compliance.policy.subjects import SUBJECT_COLUMNS, subject_token

if TYPE_CHECKING:
    from collections.abc import Mapping

    from odeus_compliance.policy.crypto import Tokenizer
    from odeus_compliance.policy.model import Policy
    from odeus_compliance.policy.operations import Cell
    from odeus_compliance.upstream.columns import ExportType


class UnknownColumnError(ValueError):
    """The row has a column the policy does not name and the policy says to fail."""

    def __init__(self, positions: tuple[int, ...]) -> None:
        # by position, never by name: a header can be anything, an e-mail address included
        where = ", ".join(str(p) for p in positions)
        super().__init__(
            f"the policy names no rule for the column(s) at position {where} of the header; refusing "
            "(on_unknown_column = fail)"
        )
        self.positions = positions


@dataclass(frozen=True, slots=True)
class RowResult:
    """A transformed row and the unknown columns that were dropped from it."""

    values: dict[str, Cell]
    dropped_unknown: frozenset[str]


def transform_row(
    policy: Policy,
    export_type: ExportType,
    row: Mapping[str, Cell],
    tokenizer: Tokenizer,
) -> RowResult:
    """Apply the policy to one row; output columns keep the input order.

    Raises :class:`~odeus_compliance.policy.operations.OperationError` on any cell it cannot transform (the
    caller adds the row number) and :class:`UnknownColumnError` under ``on_unknown_column = fail``.
    """
    rules = policy.rules_for(export_type).columns
    unknown = frozenset(name for name in row if name not in rules)
    if unknown and policy.on_unknown_column is UnknownColumn.FAIL:
        raise UnknownColumnError(tuple(i for i, name in enumerate(row, start=1) if name not in rules))
    group = SUBJECT_COLUMNS.get(export_type)
    subject: str | None = None
    if group is not None and any(isinstance(rules.get(c), Pseudonymize) for c in group.members if c in row):
        subject = subject_token(row, group, tokenizer)
    out: dict[str, Cell] = {}
    for name, value in row.items():
        rule = rules.get(name)
        if rule is None or isinstance(rule, Drop):
            continue
        if group is not None and name in group.members and isinstance(rule, Pseudonymize):
            out[name] = value if is_empty(value) else subject
            continue
        out[name] = apply_operation(rule, value, column=name, tokenizer=tokenizer)
    return RowResult(values=out, dropped_unknown=unknown)
