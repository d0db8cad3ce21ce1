"""``odeus-compliance policy``: work with policy files.

``policy check FILE...`` validates each file and explains every problem, one per line on stdout
(``file:line: what is wrong; what would be right``), then prints a one-line summary on stderr. Exit 0 when
all files are valid, 1 when any has a problem, 2 on bad usage (click's own, e.g. a missing file).
"""

from __future__ import annotations

from pathlib import Path

import click

from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.problems import PolicyError


@click.group()
def policy() -> None:
    """Validate and inspect policy files (policies/*.toml)."""


@policy.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
def check(files: tuple[Path, ...]) -> None:
    """Check policy FILES; print each problem with its line, or each valid policy with its hash."""
    failed = 0
    problems = 0
    for path in files:
        try:
            loaded = load_policy(path)
        except PolicyError as exc:
            failed += 1
            problems += len(exc.problems)
            for problem in exc.problems:
                click.echo(str(problem))
            continue
        click.echo(f"{path}: ok: {loaded.name} {loaded.version} {policy_hash(loaded)}")
    if failed:
        click.echo(f"error: {problems} problem(s) in {failed} of {len(files)} policy file(s)", err=True)
        raise SystemExit(1)
