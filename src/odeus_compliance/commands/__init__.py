"""Command modules of the CLI, one per area; each exposes click commands that ``register`` adds."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every command to the top-level group (imports are local so ``--help`` stays fast)."""
    from odeus_compliance.commands import apikey, audit, db, demo, keys, policy, serve, simulator  # noqa: PLC0415

    group.add_command(serve.serve)
    group.add_command(db.db)
    group.add_command(apikey.apikey)
    group.add_command(simulator.simulator)
    group.add_command(policy.policy)
    group.add_command(demo.demo)
    group.add_command(keys.keys)
    group.add_command(audit.audit)
