"""Running the simulator: the app factory, a context manager for tests and a blocking runner for the CLI.

Both apps run under uvicorn on loopback sockets that we bind ourselves (port 0 picks a free port), so the
storage host's real address is known before the API app that hands out download URLs is built. uvicorn's
access log is off: request lines must not end up in logs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import uvicorn
from litestar import Litestar

from odeus_compliance.upstream.simulator.api import EXCEPTION_HANDLERS, create_api_app
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.faults import DroppableH11Protocol, FaultInjector
from odeus_compliance.upstream.simulator.ratelimit import SlidingWindowLimiter
from odeus_compliance.upstream.simulator.service import Simulator
from odeus_compliance.upstream.simulator.signing import UrlSigner
from odeus_compliance.upstream.simulator.storage import BlobStore, create_storage_app
from odeus_compliance.upstream.simulator.workspace import Workspace, generate_workspace

__all__ = [
    "RunningSimulator",
    "SimulatorConfig",
    "build_simulator",
    "create_simulator_apps",
    "run_simulator",
    "serve_simulator_forever",
]

STARTUP_TIMEOUT_SECONDS = 30.0


def build_simulator(config: SimulatorConfig, *, storage_url: str | None = None) -> Simulator:
    """The simulator's shared state: workspace, faults, file store, URL signer, rate limiter."""
    today = config.today or datetime.now(UTC).date()
    workspace = generate_workspace(
        users=config.users, seed=config.seed, today=today, age_days=config.workspace_age_days
    )
    return Simulator(
        config=config,
        workspace=workspace,
        storage_url=storage_url or f"http://{config.host}:{config.storage_port}",
        faults=FaultInjector(),
        store=BlobStore(config.clock),
        signer=UrlSigner(config.clock),
        limiter=SlidingWindowLimiter(config.requests_per_minute, config.clock),
    )


def _apps(sim: Simulator) -> tuple[Litestar, Litestar]:
    storage = create_storage_app(sim.store, sim.signer, sim.faults, EXCEPTION_HANDLERS)
    return create_api_app(sim), storage


def create_simulator_apps(
    config: SimulatorConfig, *, storage_url: str | None = None
) -> tuple[Litestar, Litestar]:
    """``(api_app, storage_app)`` for ``config``; download URLs point at ``storage_url`` (default: the
    configured host and storage port)."""
    return _apps(build_simulator(config, storage_url=storage_url))


@dataclass(frozen=True)
class RunningSimulator:
    """A started simulator: where it listens, its keys, its fault injector and its workspace."""

    base_url: str
    storage_url: str
    api_key: str
    unscoped_api_key: str
    faults: FaultInjector
    workspace: Workspace
    simulator: Simulator

    @property
    def download_host(self) -> str:
        """The storage host's ``host:port``: the download allow-list entry its clients need."""
        return urlsplit(self.storage_url).netloc


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Litestar) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=DroppableH11Protocol,
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextmanager
def run_simulator(config: SimulatorConfig | None = None) -> Iterator[RunningSimulator]:
    """Start both apps in a background thread; stop them when the block ends."""
    config = config or SimulatorConfig()
    api_sock = _bind(config.host, config.port)
    storage_sock = _bind(config.host, config.storage_port)
    try:
        sim = build_simulator(config, storage_url=_url(config.host, storage_sock))
        api_app, storage_app = _apps(sim)
        servers = [(_server(api_app), api_sock), (_server(storage_app), storage_sock)]
        failure: list[BaseException] = []

        async def serve_all() -> None:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

        def run() -> None:
            try:
                asyncio.run(serve_all())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="odeus-simulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not all(server.started for server, _ in servers):
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                for server, _ in servers:
                    server.should_exit = True
                thread.join(5)
                msg = "the Odeus simulator did not start"
                raise RuntimeError(msg) from (failure[0] if failure else None)
            time.sleep(0.01)
        try:
            yield RunningSimulator(
                base_url=_url(config.host, api_sock),
                storage_url=sim.storage_url,
                api_key=config.api_key,
                unscoped_api_key=config.unscoped_api_key,
                faults=sim.faults,
                workspace=sim.workspace,
                simulator=sim,
            )
        finally:
            for server, _ in servers:
                server.should_exit = True
            thread.join(10)
    finally:
        for sock in (api_sock, storage_sock):
            with suppress(OSError):
                sock.close()


def serve_simulator_forever(
    config: SimulatorConfig, on_ready: Callable[[RunningSimulator], None] | None = None
) -> None:
    """Run the simulator until interrupted (Ctrl-C raises ``KeyboardInterrupt`` here, which stops it)."""
    with run_simulator(config) as running:
        if on_ready is not None:
            on_ready(running)
        stop = threading.Event()
        while not stop.wait(0.5):
            pass
