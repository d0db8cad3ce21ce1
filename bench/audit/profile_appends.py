"""Profile the SQLite append path (32 writers by default) with cProfile; prints the top functions.

.venv/bin/python bench/audit/profile_appends.py [--writers 32] [--each 150] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import _appends  # noqa: E402
from tests.support.audit import init_ring  # noqa: E402

from odeus_compliance.db.migrate import upgrade  # noqa: E402
from odeus_compliance.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--each", type=int, default=150)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.for_tests(Path(tmp))
        asyncio.run(upgrade(settings))
        init_ring(settings)
        profiler = None if args.no_profile else cProfile.Profile()
        if profiler is not None:
            profiler.enable()
        rate, _prepared = asyncio.run(_appends(settings, args.writers, args.each))
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
        print(f"sqlite, {args.writers} writers: {rate:.0f} acked appends/s")


if __name__ == "__main__":
    main()
