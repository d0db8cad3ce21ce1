"""Policy files (``policies/*.toml``) into :class:`~odeus_compliance.policy.model.Policy`, or every problem.

Validation collects all problems before failing, so ``policy check`` shows a writer everything to fix in
one go, each with its line. Fail closed: an unknown key is an error (a misspelt ``min_group_sise`` must not
silently leave k at its default), every column of a covered export must be named, and an identifying or
ranking column kept in clear needs an explicit acknowledgement with a reason.

File layout::

    [policy]            name, version, works_agreement, description?, on_unknown_column? (drop | fail)
    [pseudonymization]  domain, linkability? (stable | per_report)
    [disclosure]        min_group_size?, suppression_limit?, per_person_rows?, quasi_identifiers?,
                        [disclosure.hierarchy] <qi> = ["year", "*"]
    [report]            person_rows? (false), person_rows_cap? (50, at most 500): the PDF's per-person table
    [columns.<export>]  <column> = "<op>" | { op = "<op>", ...parameters }
"""

from __future__ import annotations

import itertools
import re
import tomllib
from decimal import Decimal
from pathlib import Path as FilePath
from types import MappingProxyType
from typing import Any

from odeus_compliance.policy.column_rules import parse_rule
from odeus_compliance.policy.model import (
    DEFAULT_PERSON_ROWS_CAP,
    PERSON_ROWS_CAP_LIMIT,
    DateLevel,
    DisclosureSettings,
    Drop,
    ExportRules,
    GeneralizeDate,
    Linkability,
    Operation,
    Policy,
    PseudonymizationSettings,
    ReportSettings,
    UnknownColumn,
)
from odeus_compliance.policy.problems import PolicyError, Problem, did_you_mean, suggest
from odeus_compliance.policy.sourcemap import SourceMap
from odeus_compliance.upstream.columns import ExportType, Kind, known_columns

Path = tuple[str, ...]

DEFAULT_QUASI_IDENTIFIERS = ("department", "company_name", "role", "license_type", "joined_at")

_TOP = frozenset({"policy", "pseudonymization", "disclosure", "report", "columns"})
_POLICY = frozenset({"name", "version", "works_agreement", "description", "on_unknown_column"})
_PSEUDO = frozenset({"domain", "linkability"})
_DISCLOSURE = frozenset(
    {
        "min_group_size",
        "suppression_limit",
        "dominance_limit",
        "per_person_rows",
        "quasi_identifiers",
        "hierarchy",
    }
)
_REPORT = frozenset({"person_rows", "person_rows_cap"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")
_EXPORTS = {e.value: e for e in ExportType if e is not ExportType.AGENTS}
_STEPS = {
    "month": DateLevel.MONTH,
    "quarter": DateLevel.QUARTER,
    "year": DateLevel.YEAR,
    "*": DateLevel.SUPPRESSED,
}
_TOML_LINE = re.compile(r"at line (\d+)")


def parse_policy(text: str, *, source: str, expected_name: str | None = None) -> Policy:
    """Validate a policy's TOML text; ``source`` names the file in problems. Raises :class:`PolicyError`."""
    return _Loader(text, source=source, expected_name=expected_name).load()


def load_policy(path: FilePath) -> Policy:
    """Read and validate a policy file; its ``name`` must equal the file name without ``.toml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or "cannot be read"
        raise PolicyError([Problem(str(path), 1, f"the file cannot be read: {reason}")]) from None
    return parse_policy(text, source=str(path), expected_name=path.stem)


def check_policy_file(path: FilePath) -> tuple[Problem, ...]:
    """Every problem of one policy file (empty when it is valid)."""
    try:
        load_policy(path)
    except PolicyError as exc:
        return exc.problems
    return ()


class _Loader:
    """One validation pass; problems accumulate, and the policy is built only if there are none."""

    def __init__(self, text: str, *, source: str, expected_name: str | None) -> None:
        self.text = text
        self.source = source
        self.expected_name = expected_name
        self.map = SourceMap.scan(text)
        self.problems: list[Problem] = []

    def problem(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.source, self.map.line_of(path), message, hint))

    def load(self) -> Policy:
        try:
            data = tomllib.loads(self.text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_LINE.search(str(exc))
            line = int(found.group(1)) if found else 1
            message = _TOML_LINE.sub("", str(exc)).replace("()", "").strip(" (") or "invalid TOML"
            raise PolicyError([Problem(self.source, line, f"not valid TOML: {message}")]) from None
        self.unknown_keys(data, (), _TOP, "top-level tables")
        header = self.policy_table(self.table(data, "policy", required=True))
        pseudo = self.pseudonymization(self.table(data, "pseudonymization", required=True))
        exports = self.columns(self.table(data, "columns", required=True))
        linkability = pseudo.linkability if pseudo is not None else Linkability.STABLE
        disclosure = self.disclosure(self.table(data, "disclosure", required=False), exports, linkability)
        report = self.report(self.table(data, "report", required=False), disclosure)
        if self.problems or header is None or pseudo is None or disclosure is None or report is None:
            raise PolicyError(self.problems)
        name, version, agreement, description, unknown = header
        return Policy(
            name=name,
            version=version,
            works_agreement=agreement,
            description=description,
            on_unknown_column=unknown,
            pseudonymization=pseudo,
            disclosure=disclosure,
            exports=MappingProxyType(exports),
            report=report,
        )

    # --- helpers ------------------------------------------------------------------------------------

    def table(self, data: dict[str, Any], key: str, *, required: bool) -> dict[str, Any] | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem((), f"the [{key}] table is missing", f"add a [{key}] table")
            return None
        if not isinstance(value, dict):
            self.problem((key,), f"{key} must be a table", f"write it as [{key}]")
            return None
        return value

    def unknown_keys(self, data: dict[str, Any], path: Path, allowed: frozenset[str], what: str) -> None:
        for key in data:
            if key not in allowed:
                where = f"[{'.'.join(path)}]" if path else "the top level"
                self.problem(
                    (*path, key), f"unknown key {key!r} in {where}", did_you_mean(key, allowed, what=what)
                )

    def string(self, data: dict[str, Any], path: Path, *, required: bool, example: str) -> str | None:
        value = data.get(path[-1])
        if value is None:
            if required:
                self.problem(path[:-1], f"{'.'.join(path)} is missing", f"add {path[-1]} = {example}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(path, f"{'.'.join(path)} must be a non-empty string", f"e.g. {path[-1]} = {example}")
            return None
        return value

    def choice(self, data: dict[str, Any], path: Path, choices: dict[str, Any], default: Any) -> Any:
        value = data.get(path[-1])
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            word = value if isinstance(value, str) else ""
            self.problem(
                path, f"{'.'.join(path)} has no value {value!r}", did_you_mean(word, choices, what="values")
            )
            return default
        return choices[value]

    # --- sections -----------------------------------------------------------------------------------

    def policy_table(
        self, data: dict[str, Any] | None
    ) -> tuple[str, str, str, str | None, UnknownColumn] | None:
        if data is None:
            return None
        self.unknown_keys(data, ("policy",), _POLICY, "keys of [policy]")
        name = self.string(data, ("policy", "name"), required=True, example='"default"')
        if name is not None and not _NAME_RE.match(name):
            self.problem(
                ("policy", "name"),
                "policy.name must be lower-case letters, digits, - and _",
                'e.g. "default"',
            )
        elif name is not None and self.expected_name is not None and name != self.expected_name:
            self.problem(
                ("policy", "name"),
                f"policy.name {name!r} differs from the file name {self.expected_name!r}",
                f'write name = "{self.expected_name}" or rename the file to {name}.toml',
            )
        version = self.string(data, ("policy", "version"), required=True, example='"1.0"')
        if version is not None and not _VERSION_RE.match(version):
            self.problem(
                ("policy", "version"), "policy.version must be a short version string", 'e.g. "2025.1"'
            )
        agreement = self.string(
            data,
            ("policy", "works_agreement"),
            required=True,
            example='"Works agreement on AI tools, 2025-03-01"',
        )
        description = self.string(data, ("policy", "description"), required=False, example='"..."')
        unknown = self.choice(
            data, ("policy", "on_unknown_column"), {u.value: u for u in UnknownColumn}, UnknownColumn.DROP
        )
        if name is None or version is None or agreement is None:
            return None
        return name, version, agreement, description, unknown

    def pseudonymization(self, data: dict[str, Any] | None) -> PseudonymizationSettings | None:
        if data is None:
            return None
        self.unknown_keys(data, ("pseudonymization",), _PSEUDO, "keys of [pseudonymization]")
        domain = self.string(data, ("pseudonymization", "domain"), required=True, example='"works-council"')
        if domain is not None and not _DOMAIN_RE.match(domain):
            self.problem(
                ("pseudonymization", "domain"),
                "pseudonymization.domain must be lower-case letters, digits and _.:-",
                'e.g. "works-council-monthly"',
            )
            domain = None
        linkability = self.choice(
            data, ("pseudonymization", "linkability"), {v.value: v for v in Linkability}, Linkability.STABLE
        )
        return None if domain is None else PseudonymizationSettings(domain=domain, linkability=linkability)

    def columns(self, data: dict[str, Any] | None) -> dict[ExportType, ExportRules]:
        exports: dict[ExportType, ExportRules] = {}
        if data is None:
            return exports
        for key, value in data.items():
            path = ("columns", key)
            if key == ExportType.AGENTS.value:
                self.problem(
                    path,
                    "agents is the same export as assistants",
                    "name its columns once, as [columns.assistants]",
                )
                continue
            export = _EXPORTS.get(key)
            if export is None:
                self.problem(
                    path, f"unknown export type {key!r}", did_you_mean(key, _EXPORTS, what="export types")
                )
                continue
            if not isinstance(value, dict):
                self.problem(path, f"columns.{key} must be a table", f"write it as [columns.{key}]")
                continue
            rules = self.export_rules(export, value, path)
            if rules is not None:
                exports[export] = rules
        if not data:
            self.problem(
                ("columns",), "the policy covers no export type", "add a [columns.users] table (or another)"
            )
        return exports

    def export_rules(self, export: ExportType, data: dict[str, Any], path: Path) -> ExportRules | None:
        known = known_columns(export)
        rules: dict[str, Operation] = {}
        ok = True
        typo_for: set[str] = set()  # columns an unknown key is probably a typo of: reported once, there
        for name, raw in data.items():
            column = known.get(name)
            if column is None:
                close = suggest(name, (k for k in known if k not in data))
                if close is not None:
                    typo_for.add(close)
                self.problem(
                    (*path, name),
                    f"column {name!r} is not a {export.value} column",
                    did_you_mean(name, known, what=f"{export.value} columns"),
                )
                ok = False
                continue
            rule = parse_rule(raw, export_type=export, column=column, path=(*path, name), report=self.problem)
            if rule is None:
                ok = False
            else:
                rules[name] = rule
        for name in known:
            if name not in data and name not in typo_for:
                self.problem(
                    path,
                    f"{export.value} column {name!r} has no rule (closed by default: name every column)",
                    f'add {name} = "drop" (or another operation)',
                )
                ok = False
        ordered = {name: rules[name] for name in known if name in rules}
        return ExportRules(columns=MappingProxyType(ordered)) if ok else None

    def disclosure(
        self, data: dict[str, Any] | None, exports: dict[ExportType, ExportRules], linkability: Linkability
    ) -> DisclosureSettings | None:
        data = data if data is not None else {}
        base = ("disclosure",)
        self.unknown_keys(data, base, _DISCLOSURE, "keys of [disclosure]")
        k = data.get("min_group_size", 5)
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            self.problem(
                (*base, "min_group_size"), "min_group_size must be a whole number of at least 2", "e.g. 5"
            )
            k = None
        limit = data.get("suppression_limit", Decimal("0.05"))
        if isinstance(limit, bool) or not isinstance(limit, int | Decimal) or not 0 <= limit <= 1:
            self.problem(
                (*base, "suppression_limit"),
                "suppression_limit must be a fraction of rows between 0 and 1",
                "e.g. 0.05 (at most 5% of rows suppressed)",
            )
            limit = None
        dominance = data.get("dominance_limit", Decimal("0.6"))
        if isinstance(dominance, bool) or not isinstance(dominance, int | Decimal) or not 0 < dominance <= 1:
            self.problem(
                (*base, "dominance_limit"),
                "dominance_limit must be a share above 0 and at most 1",
                "e.g. 0.6 (no published sum where one person holds more than 60 %)",
            )
            dominance = None
        per_person = data.get("per_person_rows", True)
        if not isinstance(per_person, bool):
            self.problem((*base, "per_person_rows"), "per_person_rows must be true or false")
            per_person = None
        listed = self.quasi_identifiers(data)
        hierarchy = self.hierarchy(data, listed, exports) if listed is not None else None
        users = exports.get(ExportType.USERS)
        qis = None if listed is None else tuple(q for q in listed if not _dropped(users, q))
        if k is None or limit is None or dominance is None or per_person is None or qis is None:
            return None
        if hierarchy is None:
            return None
        searches = linkability is Linkability.PER_REPORT
        if not searches and per_person and qis and "hierarchy" in data and not self.problems:
            self.problem(
                (*base, "hierarchy"),
                "with linkability = stable the k-anonymity gate may not choose a generalisation per report "
                "(rows of two months would join by token into classes smaller than k)",
                "remove [disclosure.hierarchy] and set the levels in the column rules, "
                'or use linkability = "per_report"',
            )
            return None
        return DisclosureSettings(
            min_group_size=k,
            suppression_limit=Decimal(limit),
            dominance_limit=Decimal(dominance),
            per_person_rows=per_person,
            quasi_identifiers=qis,
            hierarchy=MappingProxyType(hierarchy),
            gate_searches=searches,
        )

    def report(
        self, data: dict[str, Any] | None, disclosure: DisclosureSettings | None
    ) -> ReportSettings | None:
        data = data if data is not None else {}
        base = ("report",)
        self.unknown_keys(data, base, _REPORT, "keys of [report]")
        person_rows = data.get("person_rows", False)
        if not isinstance(person_rows, bool):
            self.problem((*base, "person_rows"), "report.person_rows must be true or false")
            return None
        cap = data.get("person_rows_cap", DEFAULT_PERSON_ROWS_CAP)
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= PERSON_ROWS_CAP_LIMIT:
            self.problem(
                (*base, "person_rows_cap"),
                f"report.person_rows_cap must be a whole number from 1 to {PERSON_ROWS_CAP_LIMIT}",
                "e.g. 50 (the full dataset is attached to the PDF anyway)",
            )
            return None
        if person_rows and disclosure is not None and not disclosure.per_person_rows:
            self.problem(
                (*base, "person_rows"),
                "report.person_rows = true needs disclosure.per_person_rows = true",
                "an aggregates-only policy has no per-person rows to print",
            )
            return None
        return ReportSettings(person_rows=person_rows, person_rows_cap=cap)

    def quasi_identifiers(self, data: dict[str, Any]) -> tuple[str, ...] | None:
        path = ("disclosure", "quasi_identifiers")
        raw = data.get("quasi_identifiers", list(DEFAULT_QUASI_IDENTIFIERS))
        if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
            self.problem(
                path, "quasi_identifiers must be a list of users column names", 'e.g. ["department", "role"]'
            )
            return None
        known = known_columns(ExportType.USERS)
        ok = True
        for name in raw:
            column = known.get(name)
            if column is None:
                self.problem(
                    path,
                    f"quasi-identifier {name!r} is not a users column",
                    did_you_mean(name, known, what="columns"),
                )
                ok = False
            elif column.identifying or column.rank or column.kind is Kind.JSON_MAP:
                self.problem(
                    path,
                    f"column {name!r} cannot be a quasi-identifier (it is identifying, a ranking or a map)",
                    "quasi-identifiers are attributes such as department, role or join date",
                )
                ok = False
        if len(set(raw)) != len(raw):
            self.problem(path, "quasi_identifiers lists a column twice", "name each column once")
            ok = False
        if not ok:
            return None
        return tuple(raw)

    def hierarchy(
        self, data: dict[str, Any], qis: tuple[str, ...], exports: dict[ExportType, ExportRules]
    ) -> dict[str, tuple[DateLevel, ...]] | None:
        base = ("disclosure", "hierarchy")
        raw = data.get("hierarchy", {})
        if not isinstance(raw, dict):
            self.problem(base, "disclosure.hierarchy must be a table", "write it as [disclosure.hierarchy]")
            return None
        users = exports.get(ExportType.USERS)
        known = known_columns(ExportType.USERS)
        result: dict[str, tuple[DateLevel, ...]] = {}
        ok = True
        for name in raw:
            if name not in qis:
                self.problem(
                    (*base, name),
                    f"hierarchy names {name!r}, which is not a quasi-identifier",
                    did_you_mean(name, qis, what="quasi-identifiers") if qis else "remove it",
                )
                ok = False
        for name in qis:
            if _dropped(users, name):
                continue  # a dropped column is not in the output: nothing to generalise
            rule = users.columns.get(name) if users is not None else None
            floor = _current_level(rule, known[name].kind)
            if name not in raw:
                result[name] = _default_steps(floor)
                continue
            steps = self.steps(raw[name], (*base, name), floor)
            if steps is None:
                ok = False
            else:
                result[name] = steps
        return result if ok else None

    def steps(self, raw: object, path: Path, floor: int | None) -> tuple[DateLevel, ...] | None:
        allowed = ["*"] if floor is None else [w for w, level in _STEPS.items() if level > floor]
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            self.problem(path, "a hierarchy is a list of steps", f"e.g. {allowed!r}")
            return None
        steps: list[DateLevel] = []
        for word in raw:
            if word not in allowed:
                self.problem(
                    path,
                    f"step {word!r} is not possible for this column here",
                    f"allowed steps, in order: {allowed}",
                )
                return None
            steps.append(_STEPS[word])
        if any(b <= a for a, b in itertools.pairwise(steps)):
            self.problem(path, "each hierarchy step must be coarser than the one before", f"e.g. {allowed!r}")
            return None
        return tuple(steps)


def _dropped(users: ExportRules | None, column: str) -> bool:
    return users is not None and isinstance(users.columns.get(column), Drop)


def _current_level(rule: Operation | None, kind: Kind) -> int | None:
    """How coarse a date quasi-identifier is after its rule (0: a full date); ``None`` for non-dates."""
    if kind not in {Kind.DATE, Kind.DATETIME}:
        return None
    return int(rule.level) if isinstance(rule, GeneralizeDate) else 0


def _default_steps(floor: int | None) -> tuple[DateLevel, ...]:
    """Every coarser step up to suppression: the gate itself picks the least it needs."""
    if floor is None:
        return (DateLevel.SUPPRESSED,)
    return tuple(level for level in DateLevel if level > floor)
