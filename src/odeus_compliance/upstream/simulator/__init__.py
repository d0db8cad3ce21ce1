"""A faithful fake of the Odeus Usage Export API (CONTRACT.md), for the CLI, the demo, tests and benchmarks.

Start one with ``run_simulator(SimulatorConfig(...))``; the rules its figures follow (day attribution, ranks,
sums) are documented in ``usage.py``.
"""

from __future__ import annotations

from odeus_compliance.upstream.simulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_UNSCOPED_API_KEY,
    SimulatorConfig,
)
from odeus_compliance.upstream.simulator.faults import FaultInjector
from odeus_compliance.upstream.simulator.server import (
    RunningSimulator,
    create_simulator_apps,
    run_simulator,
    serve_simulator_forever,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_UNSCOPED_API_KEY",
    "FaultInjector",
    "RunningSimulator",
    "SimulatorConfig",
    "create_simulator_apps",
    "run_simulator",
    "serve_simulator_forever",
]
