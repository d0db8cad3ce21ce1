"""A strict reader of the Prometheus text exposition format (0.0.4), written from its documentation.

It refuses what a scraper would refuse or misread: a sample before its family's ``# TYPE``, a family typed
twice, a bad metric or label name, a bad escape, an unparsable value, a repeated series, a histogram whose
buckets are not cumulative or whose ``+Inf`` bucket differs from its ``_count``, and any blank or stray line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["Exposition", "ParseError", "parse_exposition"]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_HELP = re.compile(rf"# HELP ({_NAME}) (.*)")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")
_SAMPLE = re.compile(rf"({_NAME})(\{{.*\}})? (\S+)")
_TYPES_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("", "_total")}

Labels = tuple[tuple[str, str], ...]


class ParseError(ValueError):
    """The text is not valid exposition format."""


@dataclass
class Exposition:
    """Families by name (their type and help) and every sample by (name, sorted labels)."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value (0 when the series does not exist yet: a counter not yet counted)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= set(ls))


def _labels(text: str, line: str) -> Labels:
    body = text[1:-1]
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(body):
        match = re.compile(rf'({_LABEL})="').match(body, position)
        if match is None:
            raise ParseError(f"bad label set: {line!r}")
        position = match.end()
        value: list[str] = []
        while True:
            if position >= len(body):
                raise ParseError(f"unterminated label value: {line!r}")
            char = body[position]
            if char == "\\":
                escaped = body[position + 1 : position + 2]
                if escaped not in {"\\", '"', "n"}:
                    raise ParseError(f"bad escape in label value: {line!r}")
                value.append("\n" if escaped == "n" else escaped)
                position += 2
            elif char == '"':
                position += 1
                break
            elif char == "\n":
                raise ParseError(f"line feed in label value: {line!r}")
            else:
                value.append(char)
                position += 1
        pairs.append((match.group(1), "".join(value)))
        if position < len(body):
            if body[position] != ",":
                raise ParseError(f"labels not separated by commas: {line!r}")
            position += 1
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ParseError(f"repeated label: {line!r}")
    return tuple(sorted(pairs))


def _value(text: str, line: str) -> float:
    if text in {"+Inf", "-Inf", "NaN"}:
        return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[text]
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"bad value: {line!r}") from None


def _family_of(name: str, types: dict[str, str]) -> str | None:
    for family, kind in types.items():
        for suffix in _TYPES_SUFFIXES.get(kind, ("",)):
            if name == family + suffix:
                return family
    return None


def _check_histograms(result: Exposition) -> None:
    for family, kind in result.types.items():
        if kind != "histogram":
            continue
        series: dict[Labels, list[tuple[float, float]]] = {}
        for (name, labels), value in result.samples.items():
            if name == family + "_bucket":
                le = dict(labels).get("le")
                if le is None:
                    raise ParseError(f"{family}: a bucket without le")
                rest = tuple(p for p in labels if p[0] != "le")
                series.setdefault(rest, []).append((_value(le, le), value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            if counts != sorted(counts) or buckets[-1][0] != math.inf:
                raise ParseError(f"{family}{dict(rest)}: buckets not cumulative or no +Inf bucket")
            if result.samples.get((family + "_count", rest)) != counts[-1]:
                raise ParseError(f"{family}{dict(rest)}: _count differs from the +Inf bucket")
            if (family + "_sum", rest) not in result.samples:
                raise ParseError(f"{family}{dict(rest)}: no _sum")


def parse_exposition(text: str) -> Exposition:
    """Parse and check ``text`` (see the module docstring)."""
    if text and not text.endswith("\n"):
        raise ParseError("the text must end with a line feed")
    result = Exposition()
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            if help_match := _HELP.fullmatch(line):
                if help_match.group(1) in result.helps:
                    raise ParseError(f"HELP twice: {line!r}")
                result.helps[help_match.group(1)] = help_match.group(2)
            elif type_match := _TYPE.fullmatch(line):
                name = type_match.group(1)
                if name in result.types:
                    raise ParseError(f"TYPE twice: {line!r}")
                if any(n == name or _family_of(n, {name: type_match.group(2)}) for n, _ in result.samples):
                    raise ParseError(f"TYPE after its samples: {line!r}")
                result.types[name] = type_match.group(2)
            else:
                raise ParseError(f"a comment that is neither HELP nor TYPE: {line!r}")
            continue
        match = _SAMPLE.fullmatch(line)
        if match is None:
            raise ParseError(f"not a sample line: {line!r}")
        name = match.group(1)
        if _family_of(name, result.types) is None:
            raise ParseError(f"a sample without its family's TYPE before it: {line!r}")
        labels = _labels(match.group(2), line) if match.group(2) else ()
        key = (name, labels)
        if key in result.samples:
            raise ParseError(f"a series twice: {line!r}")
        result.samples[key] = _value(match.group(3), line)
    _check_histograms(result)
    return result
