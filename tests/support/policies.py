"""Policy folders for tests: the shipped policies plus the test-only ones of ``tests/support/policies``.

``gated_rows`` releases per-person rows with quasi-identifiers behind the k-anonymity gate (the shipped
default of earlier versions): the engine's gate and the per-person report paths are tested with it, while
the shipped policies no longer release such rows.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["GATED_ROWS", "SHIPPED", "policy_folder", "stable_tokens"]

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
GATED_ROWS = Path(__file__).resolve().parent / "policies" / "gated_rows.toml"


def policy_folder(target: Path) -> Path:
    """``target`` filled with every shipped policy and the test policies."""
    target.mkdir(parents=True, exist_ok=True)
    for source in [*SHIPPED.glob("*.toml"), GATED_ROWS]:
        shutil.copyfile(source, target / source.name)
    return target


def stable_tokens(policy_text: str) -> str:
    """``policy_text`` with tokens stable over the key epoch: its k gate then keeps the column rules' levels
    (a ``[disclosure.hierarchy]`` is removed: it is refused with stable tokens)."""
    text = policy_text.replace('linkability = "per_report"', 'linkability = "stable"')
    return re.sub(r"\[disclosure\.hierarchy\]\n(?:[^\[\n].*\n|\n)*", "", text)
