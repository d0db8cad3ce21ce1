"""Benchmark: pull a large users export from the simulator over loopback and parse it into typed data.

Three measurements, each in a fresh worker process (so peak RSS is its own) and repeated:

- ``csv``: the baseline. The export's bytes, already in memory, parsed by Python's ``csv`` module into
  lists of strings (decode included). No HTTP, no types.
- ``batches``: our client: download over loopback + incremental parse into typed Arrow batches (ints,
  decimals, dates, JSON maps), with every completeness check.
- ``rows``: the same, then every row handed out as a dict of typed Python values.

The simulator runs in its own process. Its time to build the export (before it answers the POST) is the
upstream's, not ours, and is left out: timing starts when the envelope has arrived. Figures are medians;
ratios are against the ``csv`` median of the same run.

Run: ``.venv/bin/python bench/upstream/run.py`` (see bench/upstream/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.request import ExportRequest
from odeus_compliance.upstream.transport import download_request

ZONE = "Europe/Berlin"
MODES = ("csv", "batches", "rows")
RESULTS = Path(__file__).resolve().parent.parent / "results"


def _config(base_url: str, key: str) -> OdeusClientConfig:
    return OdeusClientConfig(api_key=key, base_url=base_url, download_hosts=frozenset({"127.0.0.1"}))


def _request() -> ExportRequest:
    today = datetime.now(UTC).date()
    year, month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
    return ExportRequest.for_month(ExportType.USERS, year, month, ZONE)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _worker_csv(base_url: str, key: str) -> dict[str, Any]:
    config = _config(base_url, key)
    async with OdeusClient(config) as client:
        envelope = await client.request_export(_request())
        assert envelope.download_url is not None
        response = await client.http.send(download_request(config, envelope.download_url))
        data = response.content
    started = time.perf_counter()
    rows = sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))) - 1
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "bytes": len(data)}


async def _worker_client(base_url: str, key: str, *, as_rows: bool) -> dict[str, Any]:
    rows = 0
    async with OdeusClient(_config(base_url, key)) as client, client.open_export(_request()) as export:
        started = time.perf_counter()
        async for batch in export.batches():
            if as_rows:
                for _row in batch.rows():
                    rows += 1
            else:
                rows += batch.num_rows
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds}


def worker(mode: str, base_url: str, key: str) -> None:
    """Run one measurement and print it as JSON (in a child process)."""
    if mode == "csv":
        result = asyncio.run(_worker_csv(base_url, key))
    else:
        result = asyncio.run(_worker_client(base_url, key, as_rows=mode == "rows"))
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _start_simulator(users: int, seed: int) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "odeus_compliance",
            "simulator",
            "--port",
            "0",
            "--users",
            str(users),
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    base_url = key = ""
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().startswith("ODEUS_BASE_URL="):
            base_url = line.strip().split("=", 1)[1]
        if line.strip().startswith("ODEUS_API_KEY="):
            key = line.strip().split("=", 1)[1].split()[0]
            break
    if not base_url or not key:
        process.kill()
        raise SystemExit("the simulator did not start")
    return process, base_url, key


def _measure(mode: str, base_url: str, key: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--base-url", base_url, "--key", key],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.base_url, args.key)
        return

    process, base_url, key = _start_simulator(args.users, args.seed)
    try:
        httpx.get(base_url + "/", timeout=30)  # the simulator answers 404 here; this only waits for it
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode in MODES:  # interleaved, so drift in machine load hits every mode alike
                runs[mode].append(_measure(mode, base_url, key))
    finally:
        process.terminate()
        process.wait(10)

    rows = runs["csv"][0]["rows"]
    baseline = statistics.median(r["seconds"] for r in runs["csv"])
    summary: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "users": args.users,
        "rows": rows,
        "export_mb": round(runs["csv"][0]["bytes"] / 1e6, 1),
        "repeat": args.repeat,
        "modes": {},
    }
    print(f"users export: {rows} rows, {summary['export_mb']} MB; median of {args.repeat} runs")
    print(f"{'mode':<8} {'seconds':>8} {'rows/s':>10} {'vs csv':>7} {'peak RSS MB':>12}")
    for mode in MODES:
        assert all(r["rows"] == rows for r in runs[mode]), f"{mode} read a different number of rows"
        seconds = statistics.median(r["seconds"] for r in runs[mode])
        peak = max(r["peak_rss_mb"] for r in runs[mode])
        summary["modes"][mode] = {
            "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds),
            "ratio_vs_csv": round(seconds / baseline, 2),
            "peak_rss_mb": round(peak, 1),
        }
        print(f"{mode:<8} {seconds:>8.3f} {rows / seconds:>10.0f} {seconds / baseline:>7.2f} {peak:>12.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "upstream.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
