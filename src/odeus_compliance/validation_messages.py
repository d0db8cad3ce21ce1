"""Litestar's and msgspec's validation messages, rewritten to name the field and what it must be.

A message such as ``Invalid enum value 'jane@example.com'`` or ``Object contains unknown field `x```
quotes what the client sent, which may be personal data; ``Object missing required field `purpose``` is
reported at the parent (``data``), not at the field. :func:`field_problem` turns each into
``(key, message)``: the key as the client names it (``from.date``, ``purpose``) and a rule
(``is required``, ``must be one of: figures, full``, ``must match the pattern ...``), never a value.
The rules come from the route's own types (the allowed values of a ``Literal`` or enum, a pattern), which
are the service's text, not the client's.
"""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

__all__ = ["allowed_values", "field_problem"]

_QUOTED: Final = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_TYPE_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_BOUNDS: Final = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}
Lookup = Callable[[str], Sequence[str] | None]
"""The allowed values of a field by its key, where the route's type lists them."""


def _type_word(name: str) -> str:
    return _TYPE_WORDS.get(name, f"of type {name}")


def _pattern(rule: str) -> str | None:
    """The regular expression msgspec quotes (as a Python literal) in a pattern failure."""
    try:
        value = ast.literal_eval(rule)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def _join(parent: str, child: str) -> str:
    return child if parent in {"", "data", "body"} else f"{parent}.{child}"


def _rule(message: str) -> str | None:  # noqa: PLR0911 - one return per msgspec message form
    """What a msgspec message says is expected, in words; ``None`` for a form not known here."""
    if match := re.fullmatch(r"Expected `(\w+)`, got `\w+`", message):
        return f"must be {_type_word(match[1])}"
    if match := re.fullmatch(r"Expected `(\w+)` of length (>=|<=) (\d+)", message):
        unit = "items" if match[1] in {"array", "object"} else "characters"
        return f"must be {_type_word(match[1])} of {_BOUNDS[match[2]]} {match[3]} {unit}"
    if match := re.fullmatch(r"Expected `\w+` (>=|<=|>|<) (-?[\d.e+]+)", message):
        return f"must be {_BOUNDS[match[1]]} {match[2]}"
    if match := re.fullmatch(r"Expected `str` matching regex (.+)", message):
        regex = _pattern(match[1])
        return f"must match the pattern {regex}" if regex is not None else "must match the documented pattern"
    if match := re.fullmatch(r"Expected `(\w+)`", message):
        return f"must be {_type_word(match[1])}"
    if message.startswith("Invalid UUID"):
        return "must be a UUID"
    if message.startswith(("Invalid RFC3339", "Invalid ISO8601")):
        return "must be an RFC 3339 date-time with offset"
    return None


def field_problem(key: str, message: str, allowed: Lookup) -> tuple[str, str]:
    """``(key, rule)`` for one validation error at ``key`` (Litestar's, ``data`` for the body) with
    msgspec's or Litestar's ``message``; nothing the client sent survives."""
    if match := re.fullmatch(r"Object missing required field `(\w+)`", message):
        return _join(key, match[1]), "is required"
    if message.startswith("Object contains unknown field"):
        return ("body" if key in {"", "data"} else key), "holds a field this operation does not accept"
    if message.startswith("Invalid enum value"):
        values = allowed(key)
        if values:
            return key, f"must be one of: {', '.join(values)}"
        return key, "must be one of the documented values"
    rule = _rule(message)
    if rule is not None:
        return key, rule
    return key, _QUOTED.sub("<value>", message)


def _values_of(info: Any) -> list[str] | None:
    if isinstance(info, msgspec.inspect.Metadata):
        return _values_of(info.type)
    if isinstance(info, msgspec.inspect.LiteralType):
        return sorted(str(v) for v in info.values)
    if isinstance(info, msgspec.inspect.EnumType):
        return [str(m.value) if isinstance(m, enum.Enum) else str(m) for m in info.cls]
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if (found := _values_of(member)) is not None:
                return found
    return None


def _child(info: Any, name: str) -> Any:
    """The type of field ``name`` (as encoded) of the struct ``info`` stands for, if it is one."""
    if isinstance(info, msgspec.inspect.Metadata):
        return _child(info.type, name)
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if (found := _child(member, name)) is not None:
                return found
        return None
    if isinstance(info, msgspec.inspect.StructType):
        for field in info.fields:
            if field.encode_name == name:
                return field.type
    return None


def allowed_values(annotation: Any, path: str) -> list[str] | None:
    """The values a ``Literal`` or enum at ``path`` (``a.b``; empty: ``annotation`` itself) of a type
    allows, or ``None`` when it is not one (or the path leads nowhere)."""
    try:
        info: Any = msgspec.inspect.type_info(annotation)
    except (TypeError, ValueError):  # a type msgspec cannot describe: nothing to say
        return None
    for name in [p for p in path.split(".") if p]:
        info = _child(info, name)
        if info is None:
            return None
    return _values_of(info)
