"""The typed, frozen form of a policy file.

Everything downstream (the engine, the manifest, the report) reads these structures, never the TOML, so a
policy that loaded is a policy whose every rule has been checked. Instances are immutable: a policy in force
cannot be changed behind the hash it is cited by.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from odeus_compliance.upstream.columns import ExportType


class UnknownColumn(enum.StrEnum):
    """What the engine does with a column the policy does not name (one upstream added later)."""

    DROP = "drop"  # drop it and list it in the manifest
    FAIL = "fail"  # refuse the run


class Linkability(enum.StrEnum):
    """How long a pseudonym stays the same (ENISA's deterministic vs document-randomised)."""

    STABLE = "stable"  # the same token in every report of the same key epoch and domain
    PER_REPORT = "per_report"  # a fresh token space per report: reports cannot be joined on tokens


class TokenDomain(enum.StrEnum):
    """The class of thing a token stands for. Each has its own key, so tokens never link across classes.

    The letter is the token's prefix, so a reader can tell a person token (``u1_...``) from an agent token
    (``a1_...``). ``column`` keys each column separately (the column name is part of the derivation).
    """

    SUBJECT = "subject"
    AGENT = "agent"
    PROJECT = "project"
    API_KEY = "api_key"
    MODEL = "model"
    ACTION = "action"
    ORG = "org"
    COLUMN = "column"

    @property
    def prefix(self) -> str:
        """The token's leading letter."""
        return _PREFIXES[self]


_PREFIXES: Mapping[TokenDomain, str] = MappingProxyType(
    {
        TokenDomain.SUBJECT: "u",
        TokenDomain.AGENT: "a",
        TokenDomain.PROJECT: "p",
        TokenDomain.API_KEY: "k",
        TokenDomain.MODEL: "m",
        TokenDomain.ACTION: "x",
        TokenDomain.ORG: "o",
        TokenDomain.COLUMN: "c",
    }
)


class DateLevel(enum.IntEnum):
    """Date generalisation levels, finer to coarser; ``SUPPRESSED`` replaces the value with ``*``."""

    MONTH = 1
    QUARTER = 2
    YEAR = 3
    SUPPRESSED = 4

    @property
    def label(self) -> str:
        """The word used in policy files."""
        return "*" if self is DateLevel.SUPPRESSED else self.name.lower()


class KeyAction(enum.StrEnum):
    """What happens to the keys of a JSON count map (``{"agent-id": 12, ...}``)."""

    KEEP = "keep"
    PSEUDONYMIZE = "pseudonymize"


# --- operations: a tagged union; ``op`` is the tag as written in the file -----------------------------


@dataclass(frozen=True, slots=True)
class Keep:
    """Pass the value through. On an identifying or rank column only with an explicit acknowledgement."""

    op: ClassVar[str] = "keep"
    reason: str | None = None
    allow_identifying: bool = False
    allow_ranking: bool = False


@dataclass(frozen=True, slots=True)
class Drop:
    """Remove the column from the output."""

    op: ClassVar[str] = "drop"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Pseudonymize:
    """Replace the value by a keyed HMAC-SHA-256 token of its domain (one-way)."""

    op: ClassVar[str] = "pseudonymize"
    domain: TokenDomain
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Encrypt:
    """Replace the value by a deterministic AES-SIV token, reversible only by audited re-identification."""

    op: ClassVar[str] = "encrypt"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GeneralizeDate:
    """Coarsen a date to its month, quarter or year."""

    op: ClassVar[str] = "generalize"
    level: DateLevel
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GeneralizeNumber:
    """Coarsen a number: into labelled buckets, or top-coded and/or rounded to a multiple."""

    op: ClassVar[str] = "generalize"
    buckets: tuple[Decimal, ...] | None = None
    round_to: Decimal | None = None
    top_code: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Mask:
    """Reduce an e-mail address to its domain part."""

    op: ClassVar[str] = "mask"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MapKeys:
    """Transform the keys of a JSON count map, merging counts when keys fall together.

    With ``keys = keep`` and an ``allow`` list, keys outside the list are merged into ``other``.
    """

    op: ClassVar[str] = "map"
    keys: KeyAction
    domain: TokenDomain | None = None
    allow: frozenset[str] | None = None
    other: str = "other"
    reason: str | None = None


Operation = Keep | Drop | Pseudonymize | Encrypt | GeneralizeDate | GeneralizeNumber | Mask | MapKeys

OPERATION_NAMES: tuple[str, ...] = ("keep", "drop", "pseudonymize", "encrypt", "generalize", "mask", "map")


# --- the policy -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRules:
    """The operation for every column of one export type, by column name."""

    columns: Mapping[str, Operation]


@dataclass(frozen=True, slots=True)
class PseudonymizationSettings:
    """Which pseudonymisation domain the tokens belong to and how long they stay linkable.

    ``domain`` is the recipient/purpose label (e.g. ``works-council-monthly``): two policies with different
    domains produce unlinkable tokens for the same person even under the same key.
    """

    domain: str
    linkability: Linkability = Linkability.STABLE


@dataclass(frozen=True, slots=True)
class DisclosureSettings:
    """Small-group and re-identification controls.

    ``hierarchy`` names, per quasi-identifier, the further generalisation steps the k-anonymity gate may
    take (coarser each time; ``*`` suppresses the attribute) before it suppresses whole rows.
    ``dominance_limit``: no published sum may have one person contributing more than this share of it.
    ``gate_searches``: whether the gate may choose that generalisation per dataset. With stable tokens it
    may not (rows of two months would join by token into classes under k): the column rules fix the
    quasi-identifiers' levels, and the gate only suppresses rows.
    """

    min_group_size: int = 5
    suppression_limit: Decimal = Decimal("0.05")
    dominance_limit: Decimal = Decimal("0.6")
    per_person_rows: bool = True
    quasi_identifiers: tuple[str, ...] = ()
    hierarchy: Mapping[str, tuple[DateLevel, ...]] = field(default_factory=lambda: MappingProxyType({}))
    gate_searches: bool = True


PERSON_ROWS_CAP_LIMIT = 500  # the report's per-person table stays bounded (about 10 ms of layout per row)
DEFAULT_PERSON_ROWS_CAP = 50


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What the PDF report may print (the dataset attachment is governed by ``[disclosure]``).

    ``person_rows`` allows a per-person table in the PDF, only where the dataset has per-person rows, and at
    most ``person_rows_cap`` of them (the full dataset travels as an attachment).
    """

    person_rows: bool = False
    person_rows_cap: int = DEFAULT_PERSON_ROWS_CAP


@dataclass(frozen=True, slots=True)
class Policy:
    """One validated policy file. Cite it by :func:`odeus_compliance.policy.canonical.policy_hash`."""

    name: str
    version: str
    works_agreement: str
    description: str | None
    on_unknown_column: UnknownColumn
    pseudonymization: PseudonymizationSettings
    disclosure: DisclosureSettings
    exports: Mapping[ExportType, ExportRules]
    report: ReportSettings = field(default_factory=ReportSettings)

    def covers(self, export_type: ExportType) -> bool:
        """Whether the policy has rules for this export (``agents`` is covered by ``assistants``)."""
        return export_type.canonical in self.exports

    def rules_for(self, export_type: ExportType) -> ExportRules:
        """The rules of an export; a ``KeyError`` means the policy does not cover it (refuse the run)."""
        return self.exports[export_type.canonical]
