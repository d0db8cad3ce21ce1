"""Reading one column's rule (``email = "drop"`` or ``joined_at = { op = "generalize", date = "quarter" }``).

Every rule is checked against the column's kind and privacy flags from the upstream column table, so a
policy cannot, by a slip, keep an e-mail address, pseudonymise a date, or publish an individual ranking.
Problems go to a reporter with the key path, so the loader can point at the line.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from odeus_compliance.policy.model import (
    OPERATION_NAMES,
    DateLevel,
    Drop,
    Encrypt,
    GeneralizeDate,
    GeneralizeNumber,
    Keep,
    KeyAction,
    MapKeys,
    Mask,
    Operation,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.problems import did_you_mean
from odeus_compliance.policy.subjects import subject_columns
from odeus_compliance.upstream.columns import Column, ExportType, Kind

Path = tuple[str, ...]
Report = Callable[[Path, str, "str | None"], None]

_PARAMS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "keep": frozenset({"reason", "allow_identifying", "allow_ranking"}),
        "drop": frozenset({"reason"}),
        "pseudonymize": frozenset({"reason", "domain"}),
        "encrypt": frozenset({"reason"}),
        "generalize": frozenset({"reason", "date", "buckets", "round", "top_code"}),
        "mask": frozenset({"reason"}),
        "map": frozenset({"reason", "keys", "domain", "allow", "other"}),
    }
)

# Words people reach for that are deliberately not offered, and what to use instead.
_NOT_OFFERED: Mapping[str, str] = MappingProxyType(
    {
        "hash": 'unkeyed hashes are reversible by dictionary; use op = "pseudonymize" (keyed HMAC-SHA-256)',
        "sha256": 'unkeyed hashes are reversible by dictionary; use op = "pseudonymize" (keyed HMAC-SHA-256)',
        "md5": 'unkeyed hashes are reversible by dictionary; use op = "pseudonymize" (keyed HMAC-SHA-256)',
        "redact": 'use op = "drop"',
        "remove": 'use op = "drop"',
        "passthrough": 'use op = "keep"',
        "pseudonymise": 'spell it op = "pseudonymize"',
        "generalise": 'spell it op = "generalize"',
    }
)

_DEFAULT_DOMAINS: Mapping[str, TokenDomain] = MappingProxyType(
    {
        "assistant_id": TokenDomain.AGENT,
        "project_id": TokenDomain.PROJECT,
        "api_key_id": TokenDomain.API_KEY,
        "org_id": TokenDomain.ORG,
        "model": TokenDomain.MODEL,
        "assistants_to_messages": TokenDomain.AGENT,
        "projects_to_messages": TokenDomain.PROJECT,
        "model_to_messages_total": TokenDomain.MODEL,
        "action_to_messages": TokenDomain.ACTION,
    }
)

_NUMERIC = frozenset({Kind.INT, Kind.DECIMAL})
_DATES = frozenset({Kind.DATE, Kind.DATETIME})
_DATE_WORDS: Mapping[str, DateLevel] = MappingProxyType(
    {"month": DateLevel.MONTH, "quarter": DateLevel.QUARTER, "year": DateLevel.YEAR}
)


def default_domain(export_type: ExportType, column: str) -> TokenDomain:
    """The token domain a column's pseudonyms belong to when the rule names none."""
    if column in subject_columns(export_type):
        return TokenDomain.SUBJECT
    if export_type is ExportType.MODELS and column == "name":
        return TokenDomain.MODEL
    return _DEFAULT_DOMAINS.get(column, TokenDomain.COLUMN)


def parse_rule(
    raw: object, *, export_type: ExportType, column: Column, path: Path, report: Report
) -> Operation | None:
    """The operation for one column, or ``None`` after reporting why not."""
    if isinstance(raw, str):
        name, params = raw, {}
        op_path = path
    elif isinstance(raw, dict):
        params = dict(raw)
        op_path = (*path, "op")
        name_value = params.pop("op", None)
        if not isinstance(name_value, str):
            report(
                path,
                f"column {column.name!r} has no operation",
                f'add op = "..." ({", ".join(OPERATION_NAMES)})',
            )
            return None
        name = name_value
    else:
        report(
            path, f"the rule of column {column.name!r} must be an operation name or a table", 'e.g. "drop"'
        )
        return None
    if name not in _PARAMS:
        hint = _NOT_OFFERED.get(name.lower()) or did_you_mean(name, OPERATION_NAMES, what="operations")
        report(op_path, f"unknown operation {name!r} for column {column.name!r}", hint)
        return None
    ok = True
    for key in sorted(set(params) - _PARAMS[name]):
        allowed = sorted(_PARAMS[name] - {"reason"})
        hint = (
            did_you_mean(key, _PARAMS[name], what=f"keys of {name}")
            if allowed
            else f"{name} takes only a reason"
        )
        report((*path, key), f"unknown key {key!r} in the {name} rule of column {column.name!r}", hint)
        ok = False
    reason = params.get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        report((*path, "reason"), "reason must be a non-empty string", "explain the rule in words")
        ok = False
    if not ok:
        return None
    parser = _PARSERS[name]
    context = _Context(export_type=export_type, column=column, path=path, report=report)
    return parser(context, params, reason if isinstance(reason, str) else None)


class _Context:
    __slots__ = ("column", "export_type", "path", "report")

    def __init__(self, *, export_type: ExportType, column: Column, path: Path, report: Report) -> None:
        self.export_type = export_type
        self.column = column
        self.path = path
        self.report = report

    def fail(self, key: str | None, message: str, hint: str | None = None) -> None:
        self.report(self.path if key is None else (*self.path, key), message, hint)

    @property
    def name(self) -> str:
        return self.column.name


def _no_maps(ctx: _Context, op: str) -> bool:
    if ctx.column.kind is Kind.JSON_MAP:
        ctx.fail(
            None,
            f"column {ctx.name!r} is a JSON count map; {op} does not say what happens to its keys",
            'use op = "map" with keys = "keep" or "pseudonymize" (or op = "drop")',
        )
        return False
    return True


def _flag(ctx: _Context, params: dict[str, Any], key: str) -> bool | None:
    value = params.get(key, False)
    if not isinstance(value, bool):
        ctx.fail(key, f"{key} must be true or false")
        return None
    return value


def _keep(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    if not _no_maps(ctx, "keep"):
        return None
    allow_identifying = _flag(ctx, params, "allow_identifying")
    allow_ranking = _flag(ctx, params, "allow_ranking")
    if allow_identifying is None or allow_ranking is None:
        return None
    ok = True
    if ctx.column.identifying and not (allow_identifying and reason):
        ctx.fail(
            None,
            f"column {ctx.name!r} identifies a person and may not be kept in clear without acknowledgement",
            'use "pseudonymize", "encrypt", "mask" or "drop", or write '
            '{ op = "keep", allow_identifying = true, reason = "..." }',
        )
        ok = False
    if allow_identifying and not ctx.column.identifying:
        ctx.fail("allow_identifying", f"column {ctx.name!r} is not identifying", "remove allow_identifying")
        ok = False
    if ctx.column.rank and not (allow_ranking and reason):
        ctx.fail(
            None,
            f"column {ctx.name!r} is an individual performance ranking; keeping it needs an acknowledgement",
            'use "drop" (works agreements exclude rankings), or write '
            '{ op = "keep", allow_ranking = true, reason = "..." }',
        )
        ok = False
    if allow_ranking and not ctx.column.rank:
        ctx.fail("allow_ranking", f"column {ctx.name!r} is not a ranking", "remove allow_ranking")
        ok = False
    return (
        Keep(reason=reason, allow_identifying=allow_identifying, allow_ranking=allow_ranking) if ok else None
    )


def _drop(_ctx: _Context, _params: dict[str, Any], reason: str | None) -> Operation | None:
    return Drop(reason=reason)


def _domain(ctx: _Context, params: dict[str, Any], default: TokenDomain) -> TokenDomain | None:
    raw = params.get("domain")
    if raw is None:
        return default
    if not isinstance(raw, str) or raw not in TokenDomain.__members__.values():
        word = raw if isinstance(raw, str) else ""
        ctx.fail(
            "domain",
            f"unknown token domain {raw!r}",
            did_you_mean(word, [d.value for d in TokenDomain], what="domains"),
        )
        return None
    domain = TokenDomain(raw)
    is_subject_column = ctx.name in subject_columns(ctx.export_type)
    if is_subject_column and domain is not TokenDomain.SUBJECT:
        ctx.fail(
            "domain",
            f"column {ctx.name!r} names a person and must use the subject domain (one person, one token)",
            'remove domain or write domain = "subject"',
        )
        return None
    if domain is TokenDomain.SUBJECT and not is_subject_column and ctx.column.kind is not Kind.JSON_MAP:
        ctx.fail("domain", f"column {ctx.name!r} does not name a person", "use another domain, or omit it")
        return None
    return domain


def _pseudonymize(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    if not _no_maps(ctx, "pseudonymize"):
        return None
    if ctx.column.kind not in {Kind.STR, Kind.INT}:
        ctx.fail(
            None,
            f"column {ctx.name!r} is a {ctx.column.kind} column; pseudonymize is for identifiers and text",
            'use "generalize" or "drop"',
        )
        return None
    domain = _domain(ctx, params, default_domain(ctx.export_type, ctx.name))
    return None if domain is None else Pseudonymize(domain=domain, reason=reason)


def _encrypt(ctx: _Context, _params: dict[str, Any], reason: str | None) -> Operation | None:
    if not _no_maps(ctx, "encrypt"):
        return None
    if ctx.column.kind is not Kind.STR:
        ctx.fail(
            None, f"column {ctx.name!r} is a {ctx.column.kind} column; encrypt is for text", 'use "drop"'
        )
        return None
    return Encrypt(reason=reason)


def _mask(ctx: _Context, _params: dict[str, Any], reason: str | None) -> Operation | None:
    if ctx.column.kind is not Kind.STR or not ctx.name.endswith("email"):
        ctx.fail(
            None,
            f"mask reduces an e-mail address to its domain; column {ctx.name!r} is not an e-mail column",
            'use "pseudonymize", "drop" or "keep"',
        )
        return None
    return Mask(reason=reason)


def _number(ctx: _Context, key: str, value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        ctx.fail(key, f"{key} must be a number")
        return None
    return Decimal(value)


def _generalize(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    kind = ctx.column.kind
    if kind in _DATES:
        return _generalize_date(ctx, params, reason)
    if kind in _NUMERIC:
        return _generalize_number(ctx, params, reason)
    ctx.fail(
        None,
        f"column {ctx.name!r} is a {kind} column; generalize is for dates and numbers",
        'use "pseudonymize", "drop" or "keep"',
    )
    return None


def _generalize_date(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    numeric_keys = sorted({"buckets", "round", "top_code"} & set(params))
    if numeric_keys:
        ctx.fail(
            numeric_keys[0],
            f"column {ctx.name!r} is a date; {numeric_keys[0]} is for numbers",
            'use date = "month", "quarter" or "year"',
        )
        return None
    word = params.get("date")
    if not isinstance(word, str) or word not in _DATE_WORDS:
        ctx.fail(
            "date",
            f'generalize of date column {ctx.name!r} needs date = "month", "quarter" or "year"',
            did_you_mean(word, _DATE_WORDS, what="levels") if isinstance(word, str) else None,
        )
        return None
    return GeneralizeDate(level=_DATE_WORDS[word], reason=reason)


def _generalize_number(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    numeric_keys = {"buckets", "round", "top_code"} & set(params)
    if "date" in params:
        ctx.fail(
            "date",
            f"column {ctx.name!r} is a number; date is for date columns",
            "use buckets, round or top_code",
        )
        return None
    if not numeric_keys:
        ctx.fail(
            None,
            f"generalize of number column {ctx.name!r} needs buckets, round or top_code",
            "e.g. round = 10, or buckets = [0, 10, 100]",
        )
        return None
    if "buckets" in params:
        return _buckets(ctx, params, reason, numeric_keys)
    round_to = _number(ctx, "round", params["round"]) if "round" in params else None
    top_code = _number(ctx, "top_code", params["top_code"]) if "top_code" in params else None
    if ("round" in params and round_to is None) or ("top_code" in params and top_code is None):
        return None
    if round_to is not None and round_to <= 0:
        ctx.fail("round", "round must be a positive number (the multiple to round to)", "e.g. round = 0.01")
        return None
    return GeneralizeNumber(round_to=round_to, top_code=top_code, reason=reason)


def _buckets(ctx: _Context, params: dict[str, Any], reason: str | None, keys: set[str]) -> Operation | None:
    if keys != {"buckets"}:
        ctx.fail("buckets", "buckets cannot be combined with round or top_code", "choose one")
        return None
    raw = params["buckets"]
    if not isinstance(raw, list) or not raw:
        ctx.fail("buckets", "buckets must be a non-empty list of numbers", "e.g. buckets = [0, 10, 100]")
        return None
    edges = [_number(ctx, "buckets", v) for v in raw]
    clean = [e for e in edges if e is not None]
    if len(clean) != len(edges):
        return None
    if any(b <= a for a, b in itertools.pairwise(clean)):
        ctx.fail("buckets", "bucket edges must be strictly increasing", "e.g. buckets = [0, 10, 100]")
        return None
    return GeneralizeNumber(buckets=tuple(clean), reason=reason)


def _map(ctx: _Context, params: dict[str, Any], reason: str | None) -> Operation | None:
    if ctx.column.kind is not Kind.JSON_MAP:
        ctx.fail(
            None,
            f"column {ctx.name!r} is not a JSON count map; map is for count maps",
            'use "pseudonymize", "keep" or "drop"',
        )
        return None
    keys_word = params.get("keys")
    if keys_word not in {"keep", "pseudonymize"}:
        ctx.fail(
            "keys",
            f'the map rule of column {ctx.name!r} needs keys = "keep" or "pseudonymize"',
            "say what happens to the ids inside the map",
        )
        return None
    keys = KeyAction(keys_word)
    other = params.get("other", "other")
    ok_other = isinstance(other, str) and bool(other.strip())
    if not ok_other:
        ctx.fail("other", "other must be a non-empty string", 'e.g. other = "other"')
    ok_allow, allow = _map_allow(ctx, params, keys)
    ok_domain, domain = _map_domain(ctx, params, keys)
    if not (ok_other and ok_allow and ok_domain):
        return None
    return MapKeys(keys=keys, domain=domain, allow=allow, other=str(other), reason=reason)


def _map_allow(ctx: _Context, params: dict[str, Any], keys: KeyAction) -> tuple[bool, frozenset[str] | None]:
    """(valid, allow list or ``None`` if absent)."""
    if "allow" not in params:
        return True, None
    raw = params["allow"]
    if keys is not KeyAction.KEEP:
        ctx.fail(
            "allow", 'allow lists the keys kept in clear; it only applies with keys = "keep"', "remove it"
        )
        return False, None
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        ctx.fail("allow", "allow must be a list of strings", 'e.g. allow = ["gpt-4o", "claude-sonnet"]')
        return False, None
    return True, frozenset(raw)


def _map_domain(ctx: _Context, params: dict[str, Any], keys: KeyAction) -> tuple[bool, TokenDomain | None]:
    """(valid, the token domain of pseudonymised keys or ``None`` for kept keys)."""
    if keys is KeyAction.PSEUDONYMIZE:
        domain = _domain(ctx, params, _DEFAULT_DOMAINS.get(ctx.name, TokenDomain.COLUMN))
        return domain is not None, domain
    if "domain" in params:
        ctx.fail("domain", 'domain applies only with keys = "pseudonymize"', "remove it")
        return False, None
    return True, None


_PARSERS: Mapping[str, Callable[[_Context, dict[str, Any], str | None], Operation | None]] = MappingProxyType(
    {
        "keep": _keep,
        "drop": _drop,
        "pseudonymize": _pseudonymize,
        "encrypt": _encrypt,
        "generalize": _generalize,
        "mask": _mask,
        "map": _map,
    }
)
