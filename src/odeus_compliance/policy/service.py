"""The policies in force: the files of the policy folder, validated, each cited by its canonical hash."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odeus_compliance.policy.canonical import canonical_form, policy_hash
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.model import Policy
from odeus_compliance.policy.problems import PolicyError, Problem

# A policy's name is its file name; anything else (a path, dots) can never name one.
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One file of the policy folder: the validated policy, or the problems that keep it out of force."""

    name: str
    path: Path
    policy: Policy | None
    problems: tuple[Problem, ...]

    @property
    def hash(self) -> str | None:
        """The canonical hash of a valid policy."""
        return policy_hash(self.policy) if self.policy is not None else None

    def canonical(self) -> dict[str, Any] | None:
        """The canonical form of a valid policy (what the hash is taken over)."""
        return canonical_form(self.policy) if self.policy is not None else None


def _entry(path: Path) -> PolicyEntry:
    try:
        return PolicyEntry(path.stem, path, load_policy(path), ())
    except PolicyError as error:
        return PolicyEntry(path.stem, path, None, error.problems)


def list_policies(*, policy_dir: Path) -> list[PolicyEntry]:
    """Every ``*.toml`` file of the folder, sorted by name; an invalid file is listed with its problems."""
    if not policy_dir.is_dir():
        return []
    return [_entry(path) for path in sorted(policy_dir.glob("*.toml")) if POLICY_NAME.match(path.stem)]


def find_policy(*, policy_dir: Path, name: str) -> PolicyEntry | None:
    """The policy called ``name``, or ``None`` when there is no such file (or the name cannot be one)."""
    if not POLICY_NAME.match(name):
        return None
    path = policy_dir / f"{name}.toml"
    return _entry(path) if path.is_file() else None
