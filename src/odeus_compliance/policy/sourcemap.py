"""Line numbers for TOML keys, so every policy problem can say where it is.

``tomllib`` gives values, not positions. Policy files are small and hand-written, so a line scan that
follows table headers (``[a.b]``) and key assignments (``key = ...``, ``a.b = ...``, quoted keys) is enough;
keys inside an inline table report the line of the key that holds the table. Lines inside multi-line
strings are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"((?:[^"\\]|\\.)*)"')
_LITERAL = re.compile(r"'([^']*)'")


def _parse_key(text: str) -> tuple[tuple[str, ...], str] | None:
    """A dotted key at the start of ``text`` and the rest of the text, or ``None``."""
    parts: list[str] = []
    rest = text.lstrip()
    while True:
        for pattern in (_BARE, _BASIC, _LITERAL):
            match = pattern.match(rest)
            if match is not None:
                parts.append(match.group(1) if pattern is not _BARE else match.group(0))
                rest = rest[match.end() :].lstrip()
                break
        else:
            return None
        if rest.startswith("."):
            rest = rest[1:].lstrip()
            continue
        return tuple(parts), rest


@dataclass(frozen=True, slots=True)
class SourceMap:
    """First line (1-based) of each table header and key path in one TOML text."""

    lines: dict[tuple[str, ...], int]

    @classmethod
    def scan(cls, text: str) -> SourceMap:
        """Scan a TOML text."""
        found: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_multiline: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_multiline is not None:
                if in_multiline in line:
                    in_multiline = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                inner = line.lstrip("[")
                parsed = _parse_key(inner)
                if parsed is not None and parsed[1].startswith("]"):
                    table = parsed[0]
                    found.setdefault(table, number)
                continue
            parsed = _parse_key(line)
            if parsed is None or not parsed[1].startswith("="):
                continue
            path = table + parsed[0]
            found.setdefault(path, number)
            value = parsed[1][1:]
            for quote in ('"""', "'''"):
                if value.count(quote) == 1:
                    in_multiline = quote
        return cls(found)

    def line_of(self, path: tuple[str, ...]) -> int:
        """The line of ``path``, or of its nearest ancestor that is in the file, or 1."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1
