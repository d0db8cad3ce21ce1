"""Command modules of the CLI, one per area, loaded only when their command runs.

Importing every command module costs about 1.8 s at start-up (the web framework, the database drivers, the
PDF stack); a command that needs none of them must not pay for it. ``COMMANDS`` maps each top-level command
to the module that defines it, under the same name.
"""

from __future__ import annotations

import importlib

import click

COMMANDS: tuple[str, ...] = (
    "apikey",
    "audit",
    "db",
    "demo",
    "keys",
    "policy",
    "report",
    "retention",
    "schedule",
    "serve",
    "simulator",
)


class LazyGroup(click.Group):
    """A click group that imports a command's module when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"odeus_compliance.commands.{cmd_name}")
        command = getattr(module, cmd_name)
        if not isinstance(command, click.Command):
            msg = f"odeus_compliance.commands.{cmd_name}.{cmd_name} is not a click command"
            raise TypeError(msg)
        return command
