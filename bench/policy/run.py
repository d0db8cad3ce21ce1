"""Benchmark: ``policy apply`` (default.toml, or ``--policy FILE``) on a 1,000,000-row users export, against
two baselines.

Three measurements, each a fresh process (so peak RSS, ``ru_maxrss`` of the child, is its own), interleaved
and repeated:

- ``apply``: ``odeus-compliance policy apply --policy policies/default.toml --in FILE --out OUT`` (the real
  CLI, with a throw-away master key).
- ``polars``: ``polars.read_csv(FILE, infer_schema=False).write_csv(OUT)``, the plain round trip.
- ``csv``: Python's ``csv`` module reading FILE and writing every row to OUT.

The input is generated once with the simulator's own workspace generator and renderer (users export of the
month before 2026-11-25, 1,000,000 users, seed 1) and cached in ``bench/results/``. ``--input spaced`` uses
the same rows written as other exporters write them (count maps with spaces after ``:`` and ``,``, some keys
escaped, names mixing scripts: :func:`export_file.spaced_export`), also cached.

Run: ``.venv/bin/python bench/policy/run.py [--users 1000000] [--repeat 3] [--policy FILE]
[--input compact|spaced]`` (``scripts/setup`` installs the ``bench`` group).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_file import cached_export, spaced_export

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
MODES = ("apply", "polars", "csv")
INPUTS = ("compact", "spaced")

_POLARS = """
import sys, polars
polars.read_csv(sys.argv[1], infer_schema=False).write_csv(sys.argv[2])
"""
_CSV = """
import csv, sys
source = open(sys.argv[1], newline="", encoding="utf-8")
out = open(sys.argv[2], "w", newline="", encoding="utf-8")
csv.writer(out, lineterminator="\\n").writerows(csv.reader(source))
out.close()
"""


def _child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(mode: str, source: Path, folder: Path, policy: Path) -> dict[str, Any]:
    """Run one measurement in a child process; time it from outside, read its peak RSS."""
    out = folder / f"{mode}.csv"
    env = dict(os.environ)
    if mode == "apply":
        env["ODEUS_COMPLIANCE_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
        command = [
            sys.executable, "-m", "odeus_compliance", "policy", "apply",
            "--policy", str(policy), "--in", str(source), "--out", str(out),
        ]  # fmt: skip
    else:
        command = [sys.executable, "-c", _POLARS if mode == "polars" else _CSV, str(source), str(out)]
    # a fresh wrapper process per measurement, so RUSAGE_CHILDREN holds this child's peak only
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "rss = usage.ru_maxrss / 1024\n"
        "cpu = usage.ru_utime + usage.ru_stime\n"
        "out = {'seconds': s, 'cpu_seconds': cpu, 'peak_rss_mb': rss, 'code': done.returncode,"
        " 'err': done.stderr[-300:]}\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env, check=True
    )
    data = dict(json.loads(result.stdout.strip().splitlines()[-1]))
    if data["code"] != 0:
        raise SystemExit(f"{mode} failed: {data['err']}")
    data["output_mb"] = round(out.stat().st_size / 1e6, 1)
    out.unlink()
    return data


def _load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (other work on it slows every mode)."""
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.toml")
    parser.add_argument("--input", choices=INPUTS, default="compact", help="how the export is written")
    args = parser.parse_args()
    started = time.perf_counter()
    source = cached_export(RESULTS / f"users-{args.users}.csv", users=args.users)
    if args.input == "spaced":
        source = spaced_export(source, RESULTS / f"users-{args.users}-spaced.csv")
    rows = sum(1 for _ in source.open("rb")) - 1
    ready = time.perf_counter() - started
    size = source.stat().st_size / 1e6
    print(f"input: {source.name}, {rows} rows, {size:.1f} MB (ready in {ready:.0f} s)")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    load_before = _load_average()
    with tempfile.TemporaryDirectory(dir=RESULTS) as folder:
        for _ in range(args.repeat):
            for mode in MODES:  # interleaved, so drift in machine load hits every mode alike
                runs[mode].append(measure(mode, source, Path(folder), args.policy))
    median = {mode: statistics.median(r["seconds"] for r in runs[mode]) for mode in MODES}
    cpu = {mode: statistics.median(r["cpu_seconds"] for r in runs[mode]) for mode in MODES}
    summary: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "input_mb": round(source.stat().st_size / 1e6, 1),
        "repeat": args.repeat,
        "policy": args.policy.name,
        "input": args.input,
        "load_average": {"before": load_before, "after": _load_average()},
        "modes": {},
    }
    print(f"load average (1, 5, 15 min): before {load_before}, after {summary['load_average']['after']}")
    print(f"{'mode':<8} {'seconds':>8} {'vs polars':>10} {'vs csv':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    for mode in MODES:
        peak = max(r["peak_rss_mb"] for r in runs[mode])
        summary["modes"][mode] = {
            "seconds": round(median[mode], 2),
            "ratio_vs_polars": round(median[mode] / median["polars"], 2),
            "ratio_vs_csv": round(median[mode] / median["csv"], 2),
            "cpu_seconds": round(cpu[mode], 2),  # user + system, all threads: less load-dependent
            "peak_rss_mb": round(peak, 1),
            "all_seconds": [round(r["seconds"], 2) for r in runs[mode]],
        }
        print(
            f"{mode:<8} {median[mode]:>8.2f} {median[mode] / median['polars']:>10.2f} "
            f"{median[mode] / median['csv']:>7.2f} {cpu[mode]:>7.2f} {peak:>12.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    name = "policy.json" if args.input == "compact" else f"policy-{args.input}.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
