"""``odeus-compliance simulator``: run the built-in Odeus simulator alone, until Ctrl-C."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

import click

from odeus_compliance.upstream.simulator.config import DEFAULT_API_KEY, SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, serve_simulator_forever

DEFAULT_USERS = 500


def workspace_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--users`` and ``--seed``, shared with ``demo``: the same values give the same workspace."""
    command = click.option(
        "--seed",
        type=int,
        default=1,
        show_default=True,
        help="Seed of the workspace; the same --users and --seed always give the same data.",
    )(command)
    return click.option(
        "--users",
        type=click.IntRange(1, 1_000_000),
        default=DEFAULT_USERS,
        show_default=True,
        help="Number of users in the synthetic workspace.",
    )(command)


@click.command("simulator")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="API port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--storage-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the storage host that serves signed downloads (0 picks a free one).",
)
@workspace_options
@click.option(
    "--api-key",
    default=DEFAULT_API_KEY,
    show_default=True,
    help="The key with the USAGE_EXPORT_API scope that clients must send as a Bearer token.",
)
@click.option(
    "--byok", is_flag=True, help="Simulate a bring-your-own-key workspace (token and cost columns)."
)
@click.option(
    "--no-user-level-data",
    "no_user_level_data",
    is_flag=True,
    help="Simulate a workspace that disabled user-level data (anonymised user columns).",
)
@click.option(
    "--anonymisation",
    type=click.Choice(["empty", "removed", "placeholder"]),
    default="empty",
    show_default=True,
    help="With --no-user-level-data: empty the name and email cells, remove the columns, or fill "
    "them with 'Anonymous'.",
)
def simulator(  # noqa: PLR0917 - click passes options as arguments
    port: int,
    storage_port: int,
    users: int,
    seed: int,
    api_key: str,
    byok: bool,
    no_user_level_data: bool,
    anonymisation: str,
) -> None:
    """Run a fake Odeus Usage Export API on 127.0.0.1 until Ctrl-C.

    It serves POST /export/{users,assistants,agents,api-keys,projects,models}[/csv|/json] like Odeus, with
    synthetic, deterministic data, and prints its base URL and its (simulator-only) API key. Point the
    service at it with ODEUS_BASE_URL and ODEUS_API_KEY.
    """
    if not api_key.strip():
        raise click.BadParameter("must not be empty", param_hint="--api-key")
    config = SimulatorConfig(
        users=users,
        seed=seed,
        api_key=api_key,
        byok=byok,
        user_level_data=not no_user_level_data,
        anonymisation=anonymisation,  # type: ignore[arg-type]
        port=port,
        storage_port=storage_port,
    )

    def ready(running: RunningSimulator) -> None:
        click.echo(f"Odeus simulator: {running.base_url}  (storage {running.storage_url})")
        click.echo(f"  workspace {running.workspace.workspace_id}, {users} users, seed {seed}")
        click.echo(f"  ODEUS_BASE_URL={running.base_url}")
        click.echo(f"  ODEUS_API_KEY={running.api_key}   (a simulator key, not a secret)")
        click.echo("Press Ctrl-C to stop.")

    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly under a process manager too
    try:
        serve_simulator_forever(config, ready)
    except KeyboardInterrupt:
        click.echo("Simulator stopped.")
    except OSError as exc:
        raise click.ClickException(f"cannot start the simulator: {exc.strerror or exc}") from None


def _interrupt(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
