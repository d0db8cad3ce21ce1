"""Aggregates only (``per_person_rows = false``): grouped figures, each safe to publish together.

For each grouping dimension present in the output (department, company, role, licence), the engine sums
every numeric output column per group and counts the *distinct people* behind it: rows are merged by the
person's subject token (canonical id), so one person written five times, or with blanks around the id,
counts once. Before anything is written, :func:`~odeus_compliance.policy.release_audit.audit_release`
checks every table together: groups under k, differences of nested cells across tables, and dominance
(one person holding most of a sum) are pooled into the table's ``(suppressed)`` row or withheld; the
total is published only when it holds k people.

What it keeps per row until then: a 64-bit hash of the subject in memory, and in an encrypted spool (in
case a person has several rows and they must be merged first) the subject token, the dimensions and each
figure as a 32-bit float (for the audit's shares). Where every row is a distinct person (the usual export:
no two subject hashes alike, which distinct hashes prove), the audit reads the atom statistics summed batch
by batch as the rows arrive (:func:`~odeus_compliance.policy.release_audit.atom_table`) and the spool is
never read; equal hashes take the per-person path, which compares the tokens themselves. The published
sums are exact, summed per atom as the rows arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.disclosure import DisclosureError, Suppression
from odeus_compliance.policy.key_hashes import text_hashes
from odeus_compliance.policy.operations import format_number
from odeus_compliance.policy.release_audit import (
    ReleasePlan,
    atom_table,
    audit_atoms,
    audit_release,
    merge_atom_tables,
)
from odeus_compliance.policy.spool import EncryptedSpool
from odeus_compliance.upstream.batches import DECIMAL_TYPE

DIMENSIONS = ("department", "company_name", "role", "license_type")
# figures that add up to another for every person (a total and its parts, as upstream computes them): the
# audit withholds them together, or the published ones would rebuild a withheld one
LINKED_FIGURES: Mapping[str, tuple[str, ...]] = {
    "messages_total": ("messages_chat", "messages_assistants", "messages_projects"),
    "total_input_tokens": ("cached_prompt_tokens", "cache_creation_tokens", "no_cache_tokens"),
}
SUPPRESSED_GROUP = "(suppressed)"
EMPTY_GROUP = "(none)"
TOTAL = "total"
_PERSON = "__person"
_ACTIVE = "__active"
_EXACT = "__exact_"  # prefix of a figure's exact column in the atom tables
_WHOLE_DIGITS = 12  # characters of a whole number summed as int64 (a batch of 25,000 stays far below 2^63)


RESERVED_SUFFIX = " (as named in the export)"


def _unreserved(column: Any) -> Any:
    """A group the export names like one of our labels ("(suppressed)", "(none)") is shown with
    :data:`RESERVED_SUFFIX`, so it can neither pass for the pooled row nor merge with people of no group."""
    for label in (SUPPRESSED_GROUP, EMPTY_GROUP):
        named = ac.fill_null(ac.equal(column, label), False)
        if ac.any(named).as_py():
            column = ac.if_else(named, pa.scalar(label + RESERVED_SUFFIX, pa.string()), column)
    return column


def _exact_numbers(column: Any) -> Any:
    """A figure's numbers, exactly: as whole numbers (``int64``) where every value is one of at most
    :data:`_WHOLE_DIGITS` characters (the usual case, and far cheaper than decimals), else as decimals."""
    fits = len(column) * 10**_WHOLE_DIGITS < 2**63  # the batch's sum cannot overflow
    if fits and int(ac.max(ac.binary_length(column)).as_py() or 0) <= _WHOLE_DIGITS:
        try:
            return ac.cast(column, pa.int64())
        except pa.ArrowInvalid:  # a fraction, an exponent: decimals
            pass
    return ac.cast(column, DECIMAL_TYPE)


def _floats(text: Any, exact: Any) -> Any:
    """A figure as 32-bit floats (the audit's shares): from whole numbers, else from the text (which the
    decimal cast has checked; a float from the decimal costs a division)."""
    return ac.cast(exact if exact.type == pa.int64() else text, pa.float32())


@dataclass(slots=True)
class _Group:
    sums: dict[str, Decimal] = field(default_factory=dict)


class Aggregator:
    """Accumulates grouped sums and the per-person facts over batches; :meth:`table` applies the audit."""

    def __init__(
        self,
        *,
        dimensions: tuple[str, ...],
        figures: tuple[str, ...],
        person: str | None,
        active: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.dimensions = dimensions
        self.figures = figures
        self._person = person
        self._active = active if active in figures else None
        self._total = _Group()
        self._spool_dir = spool_dir
        self._rows: EncryptedSpool | None = None  # per-row facts, for a person with several rows
        self._person_hashes: list[pa.Array[Any]] = []  # per batch, a hash of each row's subject
        self._atoms: list[pa.Table] = []  # per batch, its atom table (see the module doc)
        self._row_count = 0
        self.plan: ReleasePlan | None = None

    def observe(self, data: pa.RecordBatch) -> None:
        """Add one transformed batch."""
        numbers: dict[str, Any] = {f: _exact_numbers(data.column(f)) for f in self.figures}
        self._add(self._total, numbers)
        columns = {d: ac.fill_null(_unreserved(data.column(d)), EMPTY_GROUP) for d in self.dimensions}
        floats = {f: ac.fill_null(_floats(data.column(f), numbers[f]), 0.0) for f in self.figures}
        subjects = self._subjects(data)
        # needed only where a person has several rows: spooled, groups as numbers (not names) per row
        coded = {d: ac.dictionary_encode(c) for d, c in columns.items()}
        self._spool_rows(pa.RecordBatch.from_pydict({_PERSON: subjects, **coded, **floats}))
        self._person_hashes.append(text_hashes(subjects))
        self._row_count += data.num_rows
        if self.dimensions:
            # as the audit reads a person (exact when each row is one; see the module doc), with the exact
            # sums the groups publish; grouped by the groups' numbers (cheaper than by names), named again
            facts = {**coded, **floats, **{_EXACT + f: numbers[f] for f in self.figures}}
            if self._active is not None:
                facts[_ACTIVE] = ac.cast(ac.greater(floats[self._active], 0), pa.float64())
            exact = [_EXACT + f for f in self.figures]
            atoms = atom_table(pa.table(facts), self.dimensions, self._counted, also=exact)
            for dimension in self.dimensions:
                index = atoms.schema.get_field_index(dimension)
                atoms = atoms.set_column(index, dimension, ac.cast(atoms.column(index), pa.string()))
            for column in exact:  # one type in every batch's table: decimals
                index = atoms.schema.get_field_index(f"{column}_sum")
                atoms = atoms.set_column(index, f"{column}_sum", ac.cast(atoms.column(index), DECIMAL_TYPE))
            self._atoms.append(atoms)

    @property
    def _counted(self) -> list[str]:
        """The figures the audit counts: every figure, and the active flag if there is one."""
        return [*self.figures, _ACTIVE] if self._active is not None else list(self.figures)

    def _subjects(self, data: pa.RecordBatch) -> Any:
        """Who each row is: the subject token, or the row's own number where the row names nobody."""
        column = data.column(self._person) if self._person is not None else None
        if column is not None and column.null_count == 0:
            return column
        numbered = pa.array([f"#{self._row_count + i}" for i in range(data.num_rows)], pa.string())
        return numbered if column is None else ac.if_else(ac.is_null(column), numbered, column)

    def _group_sums(self, atoms: pa.Table | None, exact: list[str]) -> dict[str, dict[str, _Group]]:
        """Per dimension and group, each figure's exact sum over the group's rows (a figure no row has a
        value of has none)."""
        groups: dict[str, dict[str, _Group]] = {d: {} for d in self.dimensions}
        if atoms is None:
            return groups
        for dimension in self.dimensions:
            summed = atoms.group_by(dimension, use_threads=False).aggregate(
                [(f"{c}_sum", "sum") for c in exact]
            )
            for row in summed.to_pylist():
                group = groups[dimension].setdefault(row[dimension], _Group())
                for figure, column in zip(self.figures, exact, strict=True):
                    value = row[f"{column}_sum_sum"]
                    if value is not None:
                        group.sums[figure] = value
        return groups

    def _add(self, group: _Group, numbers: dict[str, Any]) -> None:
        for figure, values in numbers.items():
            total = ac.sum(values).as_py()
            if total is not None:
                group.sums[figure] = group.sums.get(figure, Decimal(0)) + total

    def _spool_rows(self, rows: pa.RecordBatch) -> None:
        if self._rows is None:
            self._rows = EncryptedSpool(self._spool_dir)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_batch(rows)
        self._rows.append(sink.getvalue().to_pybytes())

    def _spooled_rows(self) -> list[pa.RecordBatch]:
        if self._rows is None:
            return []
        return [batch for chunk in self._rows.chunks() for batch in pa.ipc.open_stream(chunk)]

    def close(self) -> None:
        """Drop the spooled per-row facts (the run ended, or failed)."""
        if self._rows is not None:
            self._rows.close()
            self._rows = None

    def people_table(self) -> pa.Table:
        """One row per distinct person: their first group in each dimension, their figures summed."""
        spooled = self._spooled_rows()
        rows = pa.Table.from_batches(spooled) if spooled else pa.table(
            {_PERSON: pa.array([], pa.string()), **{d: pa.array([], pa.string()) for d in self.dimensions},
             **{f: pa.array([], pa.float32()) for f in self.figures}}
        )  # fmt: skip
        for dimension in self.dimensions:  # the groups' names again (each batch has its own numbering)
            index = rows.schema.get_field_index(dimension)
            rows = rows.set_column(index, dimension, ac.cast(rows.column(dimension), pa.string()))
        if ac.count_distinct(rows.column(_PERSON)).as_py() == rows.num_rows:
            return rows  # one row per person (the usual export): nothing to merge
        merged = rows.group_by(_PERSON).aggregate(
            [
                *((d, "min") for d in self.dimensions),
                *((d, "count_distinct") for d in self.dimensions),
                *((f, "sum") for f in self.figures),
            ]
        )
        for dimension in self.dimensions:
            if merged.num_rows and ac.max(merged.column(f"{dimension}_count_distinct")).as_py() > 1:
                # one person in two departments: which group's figures would be theirs? refuse, naming no one
                msg = f"the export names one person in more than one {dimension} group; nothing is published"
                raise DisclosureError(msg)
        kept = [_PERSON, *(f"{d}_min" for d in self.dimensions), *(f"{f}_sum" for f in self.figures)]
        return merged.select(kept).rename_columns([_PERSON, *self.dimensions, *self.figures])

    def table(self, *, k: int, dominance: float = 1.0) -> tuple[list[list[str]], dict[str, Any]]:
        """The publishable rows (dimension, group, people, figures...) and what was suppressed."""
        active = _ACTIVE if self._active is not None else None
        exact = [_EXACT + f for f in self.figures]
        atoms = (
            merge_atom_tables(self._atoms, self.dimensions, self._counted, also=exact)
            if self._atoms
            else None
        )
        self._atoms = []
        hashes = pa.chunked_array(self._person_hashes, pa.uint64())
        self._person_hashes = []
        if atoms is not None and len(ac.unique(hashes)) == self._row_count:
            self.close()  # every row is a distinct person: the atoms are the audit's
            plan = audit_atoms(
                atoms,
                dimensions=self.dimensions,
                figures=self.figures,
                k=k,
                dominance=dominance,
                linked=LINKED_FIGURES,
                active=active,
            )
        else:
            people = self.people_table()
            self.close()
            if self._active is not None:
                flags = ac.cast(ac.greater(people.column(self._active), 0), pa.float64())
                people = people.append_column(_ACTIVE, flags)
            plan = audit_release(
                people,
                dimensions=self.dimensions,
                figures=self.figures,
                k=k,
                dominance=dominance,
                linked=LINKED_FIGURES,
                active=active,
            )
        self.plan = plan
        groups_of = self._group_sums(atoms, exact)
        rows: list[list[str]] = []
        report: dict[str, Any] = {}
        withheld = plan.withheld_figures
        for dimension in self.dimensions:
            release = plan.tables[dimension]
            sizes = release.groups
            counts = {why.value: 0 for why in Suppression}
            for why in release.suppressed.values():
                counts[why.value] += 1
            report[dimension] = {
                "groups": len(sizes),
                "visible": len(release.visible),
                "suppressed_primary": counts["primary"],
                "suppressed_complementary": counts["complementary"],
                "suppressed_difference": counts["difference"],
                "suppressed_dominance": counts["dominance"],
                "published": release.published and plan.total_published,
            }
            if not (plan.total_published and release.published):
                continue
            groups = groups_of[dimension]
            rows += [self._row(dimension, n, sizes[n], groups[n].sums, withheld) for n in release.visible]
            if release.suppressed:
                pooled: dict[str, Decimal] = {}
                for name in release.suppressed:
                    for figure, value in groups[name].sums.items():
                        pooled[figure] = pooled.get(figure, Decimal(0)) + value
                hidden = plan.pooled_people[dimension]
                rows.append(self._row(dimension, SUPPRESSED_GROUP, hidden, pooled, withheld))
        if plan.total_published:
            rows.append(self._row(TOTAL, TOTAL, plan.people, self._total.sums, withheld))
        report["audit"] = {
            "people": plan.people,
            "rows": self._row_count,  # more rows than people: a person was named more than once
            "smallest_published_cell": plan.smallest_cell,
            "largest_share": None if plan.largest_share is None else round(plan.largest_share, 4),
            "dominance_limit": dominance,
            "figures_withheld_for_dominance": sorted(withheld),
            "rounds": plan.rounds,
        }
        return rows, report

    def _row(
        self, dimension: str, name: str, people: int, sums: Mapping[str, Any], withheld: frozenset[str]
    ) -> list[str]:
        values = [
            format_number(Decimal(sums[f])) if f in sums and f not in withheld else "" for f in self.figures
        ]
        return [dimension, name, str(people), *values]
