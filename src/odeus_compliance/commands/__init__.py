"""Command modules of the CLI, one per area, loaded only when their command runs.

Importing every command module costs about 1.8 s at start-up (the web framework, the database drivers, the
PDF stack); a command that needs none of them must not pay for it. ``COMMANDS`` maps each top-level command
to the module that defines it, under the same name.

The root group is also the one place that shapes bad usage: every :class:`click.UsageError` (a malformed
time, an unknown zone or policy, a range that ends before it starts, a missing option), wherever a command
raises it, leaves as one line, ``Error: <what> (try '<command> --help')``, with exit code 2; click's
multi-line usage block is not printed. A failed operation is a :class:`click.ClickException`: one line,
exit code 1.
"""

from __future__ import annotations

import importlib
from typing import IO, Any

import click
from click.exceptions import NoArgsIsHelpError

COMMANDS: tuple[str, ...] = (
    "apikey",
    "audit",
    "console",
    "db",
    "demo",
    "init",
    "keys",
    "policy",
    "report",
    "retention",
    "schedule",
    "serve",
    "simulator",
)


class OneLineUsageError(click.ClickException):
    """Bad usage, said in one line with the hint where help is; exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``Error: <message>`` on stderr (never the usage block)."""
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


def _one_line(exc: click.UsageError, root: click.Context | None) -> OneLineUsageError:
    ctx = exc.ctx or root
    path = ctx.command_path if ctx is not None else "odeus-compliance"
    return OneLineUsageError(f"{exc.format_message().removesuffix('.')} (try '{path} --help')")


class LazyGroup(click.Group):
    """A click group that imports a command's module when that command is asked for, and that says any
    bad usage below it in one line (see the module docstring)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise  # a bare group: its help, as click prints it
        except click.UsageError as exc:
            raise _one_line(exc, None) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _one_line(exc, ctx) from None

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
