"""A real uvicorn server on a loopback port, in a thread: integration tests talk HTTP to it with httpx.

Why real: middleware order, lifespan, problem+json headers and logs are only what they are in production
when a real ASGI server drives the app (the test client skips parts of that).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import uvicorn
from litestar import Litestar

from odeus_compliance.apikeys.bootstrap import issue_role_keys
from odeus_compliance.app import create_app
from odeus_compliance.commands._server import uvicorn_config
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import Role
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator

__all__ = ["LiveServer", "issue_keys", "last_month", "run_server", "simulator_server"]


@dataclasses.dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL, settings and one API key per role (``keys[Role.OFFICER]``)."""

    base_url: str
    settings: Settings
    keys: dict[Role, str]

    def auth(self, role: Role) -> dict[str, str]:
        """The ``Authorization`` header for ``role``'s key."""
        return {"Authorization": f"Bearer {self.keys[role]}"}


@contextmanager
def run_server(app: Litestar, *, startup_timeout: float = 15.0, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:<port>`` (0: a free one) until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))  # the options 'serve' uses
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            msg = "the test server did not start"
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def issue_keys(settings: Settings) -> dict[Role, str]:
    """Create one API key per role in the (migrated) database of ``settings``."""
    return asyncio.run(issue_role_keys(settings, label="test"))


@contextmanager
def simulator_server(
    settings: Settings, *, users: int = 60, seed: int = 11
) -> Iterator[tuple[LiveServer, RunningSimulator]]:
    """The service pulling from the built-in Odeus simulator (``users``, ``seed``), signing with the demo
    certificate, with one API key per role."""
    with run_simulator(SimulatorConfig(users=users, seed=seed)) as sim:
        settings = dataclasses.replace(
            settings,
            odeus_base_url=sim.base_url,
            odeus_api_key=Secret(sim.api_key),
            download_hosts=frozenset({sim.download_host}),
        )
        ensure_demo_certificate(settings.data_dir, settings.require_master_key())
        keys = issue_keys(settings)
        with run_server(create_app(settings)) as base_url:
            yield LiveServer(base_url=base_url, settings=settings, keys=keys), sim


def last_month() -> str:
    """The month before this one (UTC), ``YYYY-MM``: a closed period the simulator has data for."""
    today = datetime.now(UTC).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"
