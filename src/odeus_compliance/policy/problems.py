"""Policy problems: where, what is wrong, and what would be right.

The people who write policies are compliance officers and works-council members, not programmers; each
problem is one line they can act on, in the compiler style ``file:line: what is wrong; what would be right``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file."""

    file: str
    line: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class PolicyError(Exception):
    """A policy file that does not validate. ``problems`` holds every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line)))
        first = str(self.problems[0]) if self.problems else "invalid policy"
        more = len(self.problems) - 1
        super().__init__(first if more <= 0 else f"{first} (and {more} more problem(s))")


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest known word, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str], *, what: str) -> str:
    """``did you mean 'x'?`` when a near match exists, else the list of valid choices."""
    options = sorted(choices)
    close = suggest(word, options)
    if close is not None:
        return f"did you mean {close!r}?"
    return f"valid {what}: {', '.join(options)}"
