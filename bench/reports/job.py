"""Benchmark: the whole report job (simulator -> pull -> policy -> content -> render -> sign -> verify).

For each workspace size the Odeus simulator runs in its own process (``odeus-compliance simulator
--byok``), and the job runs as the service runs it, in two fresh processes:

- ``fetch`` (the service's process): the users export of October 2026 (Europe/Berlin) pulled with
  :class:`OdeusClient` through :class:`DigestingTransport` and streamed into
  :func:`apply_policy_async` with ``policies/default.toml`` and a :class:`CsvSink` that also writes the
  dataset's deflated copy - the same calls as ``ReportFlow._pull``. ``served`` is the wait for the export
  envelope (the simulator building the export); ``pull`` the time spent waiting for the next batch;
  ``policy`` the rest (the engine, with the sink).
- ``render`` (the worker's process, with the worker's environment and memory cap): the real
  :func:`odeus_compliance.reports.worker.produce_report` on a :class:`RenderTask` built like the flow's;
  its stages are timed by wrapping the names it calls (``build_content``, ``build_report_manifest``,
  ``render_pdf``, ``load_signer``, ``sign_pdf``, ``verify_pdf``) in this process only.

Each stage's peak RSS is the process's ``VmHWM`` after the stage, reset before it (``/proc/self/clear_refs``
``5``). The job's peak RSS is the larger of the two processes' peaks (they never run at the same time).

The **baseline**, measured in the same run for every size: ``pull`` alone (a fresh process pulling the same
export through the same client, nothing else). Ratios are against it; the targets are absolute seconds/MB.

Run: ``.venv/bin/python bench/reports/job.py [--users 1000,10000,100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "reports-job"
MASTER = bytes(range(32))
ZONE = "Europe/Berlin"
YEAR, MONTH = 2026, 10
HOSTS = frozenset({"127.0.0.1", "localhost"})
RENDER_STAGES = ("content", "manifest", "render", "signer", "sign", "verify")


# ---------------------------------------------------------------- in the child processes


def _peak_mb() -> float:
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def _reset_peak() -> None:
    """Start a new high-water mark (Linux >= 4.0: writing 5 to clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")


def _settings(base_url: str, key: str) -> Any:
    from odeus_compliance.settings import Secret, Settings  # noqa: PLC0415

    return Settings.for_tests(
        WORK / "data",
        master_key=Secret(MASTER),
        odeus_base_url=base_url,
        odeus_api_key=Secret(key),
        download_hosts=HOSTS,
    )


async def _pull(base_url: str, key: str, folder: Path, *, with_policy: bool) -> dict[str, Any]:
    """The flow's pull (``ReportFlow._pull``), optionally without the engine (the baseline)."""
    import httpx  # noqa: PLC0415

    from odeus_compliance.policy.csvout import CsvSink  # noqa: PLC0415
    from odeus_compliance.policy.engine import apply_policy_async  # noqa: PLC0415
    from odeus_compliance.policy.keys import engine_keys  # noqa: PLC0415
    from odeus_compliance.policy.loader import parse_policy  # noqa: PLC0415
    from odeus_compliance.reports.flow import export_request_for  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportPeriod  # noqa: PLC0415
    from odeus_compliance.reports.rawdigest import DigestingTransport  # noqa: PLC0415
    from odeus_compliance.upstream.client import OdeusClient  # noqa: PLC0415
    from odeus_compliance.upstream.columns import ExportType  # noqa: PLC0415
    from odeus_compliance.upstream.config import OdeusClientConfig  # noqa: PLC0415

    settings = _settings(base_url, key)
    policy_path = settings.policy_dir / "default.toml"
    policy = parse_policy(policy_path.read_text(encoding="utf-8"), source=policy_path.name)
    config = OdeusClientConfig(api_key=key, base_url=base_url, download_hosts=HOSTS)
    transport = DigestingTransport(None)
    request = export_request_for(ReportPeriod.month(YEAR, MONTH, ZONE))
    waited = 0.0
    rows = 0

    async def timed(batches: AsyncIterator[Any]) -> AsyncIterator[Any]:
        nonlocal waited, rows
        while True:
            before = time.perf_counter()
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                waited += time.perf_counter() - before
                return
            waited += time.perf_counter() - before
            rows += batch.num_rows
            yield batch

    _reset_peak()
    start = time.perf_counter()
    sink = CsvSink(folder / "dataset.csv", deflated=folder / "dataset.csv.deflate")  # as the flow does
    async with (
        httpx.AsyncClient(transport=transport, follow_redirects=False) as http,
        OdeusClient(config, http=http) as client,
        client.open_export(request) as export,
    ):
        served = time.perf_counter() - start
        if with_policy:
            keys = engine_keys(MASTER, policy)
            result = await apply_policy_async(
                policy, ExportType.USERS, timed(export.batches()), keys=keys, sink=sink, spool_dir=folder
            )
        else:
            async for _batch in timed(export.batches()):
                pass
    total = time.perf_counter() - start
    out: dict[str, Any] = {"served": served, "pull": waited, "rows": rows, "peak_mb": _peak_mb()}
    if with_policy:
        sink.commit()
        out["policy"] = total - served - waited
        upstream = {"type": ExportType.USERS.value, "rows": result.rows_in, **transport.export_facts()}
        (folder / "manifest.json").write_text(json.dumps(result.manifest), encoding="utf-8")
        (folder / "upstream.json").write_text(json.dumps(upstream), encoding="utf-8")
        deflated = {"size": sink.bytes, "md5": sink.md5, "sha256": sink.sha256}
        (folder / "deflated.json").write_text(json.dumps(deflated), encoding="utf-8")
    else:
        sink.abort()
    out["total"] = total
    return out


def _render(base_url: str, key: str, folder: Path) -> dict[str, Any]:
    """The worker's ``produce_report`` with its stages timed, in a process set up like the worker."""
    from odeus_compliance import __version__  # noqa: PLC0415
    from odeus_compliance.policy.canonical import policy_hash  # noqa: PLC0415
    from odeus_compliance.policy.loader import parse_policy  # noqa: PLC0415
    from odeus_compliance.reports import worker  # noqa: PLC0415
    from odeus_compliance.reports.content import ReportMeta  # noqa: PLC0415
    from odeus_compliance.reports.flow import template_facts  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportPeriod  # noqa: PLC0415
    from odeus_compliance.retention_rules import retention_dates  # noqa: PLC0415

    settings = _settings(base_url, key)
    worker._limit_memory(settings.report_worker_memory_mb * worker.MIB)  # noqa: SLF001 - as the pool does
    policy_path = settings.policy_dir / "default.toml"
    text = policy_path.read_text(encoding="utf-8")
    policy = parse_policy(text, source=policy_path.name)
    period = ReportPeriod.month(YEAR, MONTH, ZONE)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    generated_at = datetime.now(UTC)
    task = worker.RenderTask(
        report_id="rpt_bench",
        dataset_path=folder / "dataset.csv",
        attach_dataset=manifest["output"]["kind"] == "rows",
        transformation_manifest=manifest,
        policy_text=text,
        policy_file_name=policy_path.name,
        meta=ReportMeta(
            report_id="rpt_bench",
            workspace="Odeus workspace",
            period_from=period.local_start,
            period_to=period.local_end,
            timezone=ZONE,
            policy_name=policy.name,
            policy_version=policy.version,
            policy_hash=policy_hash(policy),
            generated_at=generated_at,
            audit_checkpoint="bench/audit\n1\nAAAA\n",
            retention=retention_dates(settings, generated_at),
            software_version=__version__,
        ),
        history=[],
        upstream_export=json.loads((folder / "upstream.json").read_text(encoding="utf-8")),
        template=template_facts(settings.template_dir),
        software={"name": "odeus-compliance", "version": __version__},
        settings=settings,
        dataset_deflated=worker.DeflatedDataset(
            path=folder / "dataset.csv.deflate",
            **json.loads((folder / "deflated.json").read_text(encoding="utf-8")),
        ),
    )
    stages: dict[str, dict[str, float]] = {}

    def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            _reset_peak()
            before, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                stages[stage] = {
                    "seconds": time.perf_counter() - before,
                    "cpu": time.process_time() - cpu,  # all threads of the process; less hit by load
                    "peak_mb": _peak_mb(),
                }

        return run

    names = ("build_content", "build_report_manifest", "render_pdf", "load_signer", "sign_pdf", "verify_pdf")
    for stage, name in zip(RENDER_STAGES, names, strict=True):
        setattr(worker, name, timed(stage, getattr(worker, name)))
    start = time.perf_counter()
    outcome = worker.produce_report(task)
    total = time.perf_counter() - start
    (folder / "report.pdf").write_bytes(outcome.pdf)
    return {
        "stages": stages,
        "total": total,
        "valid": outcome.valid,
        "pdf_bytes": len(outcome.pdf),
        "dataset_bytes": (folder / "dataset.csv").stat().st_size,
    }


def _flow(base_url: str, key: str, folder: Path) -> dict[str, Any]:
    """The real job as ``odeus-compliance demo`` runs it (fresh data dir: migrations, key ring, demo
    certificate, the job through :class:`ReportFlow` and its worker process, the verified copy); stage times
    from the job's own progress records, through a wrapper around ``ReportJobs.progress``/``succeed``."""
    import resource  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    from odeus_compliance.demo import demo_settings, run_demo_report  # noqa: PLC0415
    from odeus_compliance.reports.jobs import ReportJobs  # noqa: PLC0415
    from odeus_compliance.settings import Settings  # noqa: PLC0415

    data = folder / "flow"
    shutil.rmtree(data, ignore_errors=True)
    settings = demo_settings(
        Settings.for_tests(data / "data"), data_dir=data / "data", base_url=base_url, api_key=key
    )
    marks: list[tuple[str, float]] = []
    progress, succeed = ReportJobs.progress, ReportJobs.succeed

    async def progress_marked(self: ReportJobs, *args: Any, stage: str, **kwargs: Any) -> None:
        if not marks or marks[-1][0] != stage:  # the lease heartbeat repeats the current stage
            marks.append((stage, time.perf_counter()))
        await progress(self, *args, stage=stage, **kwargs)

    async def succeed_marked(self: ReportJobs, *args: Any, **kwargs: Any) -> Any:
        marks.append(("succeeded", time.perf_counter()))
        return await succeed(self, *args, **kwargs)

    ReportJobs.progress = progress_marked  # type: ignore[method-assign]
    ReportJobs.succeed = succeed_marked  # type: ignore[method-assign]
    start = time.perf_counter()
    outcome = asyncio.run(run_demo_report(settings, year=YEAR, month=MONTH, timezone=ZONE, out_dir=data))
    total = time.perf_counter() - start
    points = [("setup", start), *marks, ("end", start + total)]
    stages = {name: later - at for (name, at), (_, later) in itertools.pairwise(points)}
    stages["after"] = stages.pop("succeeded", 0.0)
    return {
        "status": outcome.status,
        "valid": outcome.valid,
        "stages": stages,
        "total": total,
        "peak_mb": _peak_mb(),
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def child(mode: str, base_url: str, key: str, folder: Path) -> None:
    """One measurement in this (fresh) process, printed as JSON."""
    if mode == "baseline":
        result = asyncio.run(_pull(base_url, key, folder, with_policy=False))
    elif mode == "fetch":
        result = asyncio.run(_pull(base_url, key, folder, with_policy=True))
    elif mode == "flow":
        result = _flow(base_url, key, folder)
    else:
        result = _render(base_url, key, folder)
    print(json.dumps(result))


# ---------------------------------------------------------------- the parent


def _load() -> str:
    return Path("/proc/loadavg").read_text(encoding="ascii").split(" ", 1)[0]


def _start_simulator(users: int) -> tuple[subprocess.Popen[str], str, str, float]:
    start = time.perf_counter()
    command = [sys.executable, "-m", "odeus_compliance", "simulator", "--port", "0", "--byok"]
    process = subprocess.Popen(
        [*command, "--users", str(users), "--seed", "1"], stdout=subprocess.PIPE, text=True
    )
    base_url = key = ""
    assert process.stdout is not None
    for line in process.stdout:
        text = line.strip()
        if text.startswith("ODEUS_BASE_URL="):
            base_url = text.split("=", 1)[1]
        if text.startswith("ODEUS_API_KEY="):
            key = text.split("=", 1)[1].split()[0]
            break
    if not base_url or not key:
        process.kill()
        raise SystemExit("the simulator did not start")
    return process, base_url, key, time.perf_counter() - start


def _peak_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def _measure(mode: str, base_url: str, key: str, folder: Path) -> dict[str, Any]:
    from odeus_compliance.reports.worker import WORKER_ENVIRONMENT  # noqa: PLC0415

    env = dict(os.environ)
    if mode == "render":
        env.update(WORKER_ENVIRONMENT)  # the worker process's allocator settings
    load = _load()
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--base-url",
            base_url,
            "--key",
            key,
            "--folder",
            str(folder),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
        env=env,
    )
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["load"] = float(load)
    return result


def _one(users: int, *, flow: bool) -> dict[str, Any]:
    """One run of one size: a fresh simulator, then baseline, fetch and render in fresh processes."""
    folder = WORK / f"users-{users}"
    folder.mkdir(parents=True, exist_ok=True)
    process, base_url, key, ready = _start_simulator(users)
    try:
        run: dict[str, Any] = {"simulator_ready": ready}
        run["baseline"] = _measure("baseline", base_url, key, folder)
        run["fetch"] = _measure("fetch", base_url, key, folder)
        if flow:
            run["flow"] = _measure("flow", base_url, key, folder)
        run["simulator_peak_mb"] = _peak_of(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    run["render"] = _measure("render", base_url, key, folder)
    return run


def _row(users: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs of one size."""

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(get(r) for r in runs)

    stages: dict[str, dict[str, float]] = {
        "simulator workspace": {"seconds": med(lambda r: r["simulator_ready"])},
        "export served": {"seconds": med(lambda r: r["fetch"]["served"])},
        "pull": {"seconds": med(lambda r: r["fetch"]["pull"])},
        "policy": {"seconds": med(lambda r: r["fetch"]["policy"])},
    }
    fetch_peak = med(lambda r: r["fetch"]["peak_mb"])
    for stage in ("pull", "policy"):
        stages[stage]["peak_mb"] = fetch_peak  # one streamed pass: one peak
    for stage in RENDER_STAGES:
        stages[stage] = {
            field: statistics.median(r["render"]["stages"][stage][field] for r in runs)
            for field in ("seconds", "cpu", "peak_mb")
        }
    render_total = med(lambda r: r["render"]["total"])
    job = med(lambda r: r["fetch"]["total"] + r["render"]["total"])
    baseline = med(lambda r: r["baseline"]["total"])
    return {
        "users": users,
        "rows": runs[0]["fetch"]["rows"],
        "stages": stages,
        "fetch_total": med(lambda r: r["fetch"]["total"]),
        "worker_total": render_total,
        "render_sign": med(
            lambda r: sum(r["render"]["stages"][s]["seconds"] for s in ("render", "signer", "sign"))
        ),
        "render_sign_cpu": med(
            lambda r: sum(r["render"]["stages"][s]["cpu"] for s in ("render", "signer", "sign"))
        ),
        "job_seconds": job,
        "job_peak_mb": max(fetch_peak, *(s["peak_mb"] for s in stages.values() if "peak_mb" in s)),
        "worker_peak_mb": med(lambda r: max(s["peak_mb"] for s in r["render"]["stages"].values())),
        "simulator_peak_mb": med(lambda r: r["simulator_peak_mb"]),
        "baseline_seconds": baseline,
        "baseline_peak_mb": med(lambda r: r["baseline"]["peak_mb"]),
        "job_vs_baseline": job / baseline,
        "loads": [r["fetch"]["load"] for r in runs] + [r["render"]["load"] for r in runs],
        "pdf_kb": runs[0]["render"]["pdf_bytes"] / 1024,
        "flow": _flow_row([r["flow"] for r in runs if "flow" in r]),
        "all_valid": all(r["render"]["valid"] for r in runs),
    }


def _flow_row(flows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the real job's runs (the demo flow): stage seconds, total, peak RSS of both processes."""
    if not flows:
        return {}
    names = list(flows[0]["stages"])
    return {
        "stages": {n: statistics.median(f["stages"].get(n, 0.0) for f in flows) for n in names},
        "total": statistics.median(f["total"] for f in flows),
        "job": statistics.median(f["total"] - f["stages"]["setup"] - f["stages"]["after"] for f in flows),
        "peak_mb": statistics.median(max(f["peak_mb"], f["worker_peak_mb"]) for f in flows),
        "all_valid": all(f["valid"] and f["status"] == "succeeded" for f in flows),
    }


def _print(rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["stages"])
    print(f"{'stage':<20}" + "".join(f"{r['users']:>22,}" for r in rows))
    for name in names:
        cells = []
        for r in rows:
            stage = r["stages"][name]
            peak = f"{stage['peak_mb']:5.0f} MB" if "peak_mb" in stage else " " * 8
            cells.append(f"{stage['seconds']:8.2f} s {peak}")
        print(f"{name:<20}" + "".join(f"{c:>22}" for c in cells))
    for label, key, unit in (
        ("job (pull..verify)", "job_seconds", "s"),
        ("job peak RSS", "job_peak_mb", "MB"),
        ("baseline: pull", "baseline_seconds", "s"),
        ("job / baseline", "job_vs_baseline", "x"),
        ("render+sign", "render_sign", "s"),
        ("render+sign CPU", "render_sign_cpu", "s"),
    ):
        print(f"{label:<20}" + "".join(f"{r[key]:>20.2f} {unit:<1}" for r in rows))
    if rows[0]["flow"]:
        print("real job (demo flow):")
        for name in rows[0]["flow"]["stages"]:
            print(f"  {name:<18}" + "".join(f"{r['flow']['stages'][name]:>20.2f} s" for r in rows))
        for label, key in (
            ("job (policy..store)", "job"),
            ("whole demo run", "total"),
            ("peak RSS MB", "peak_mb"),
        ):
            print(f"  {label:<18}" + "".join(f"{r['flow'][key]:>22.2f}" for r in rows))
    print("loads " + "; ".join(f"{r['users']}: {r['loads']}" for r in rows))


def main() -> None:
    """Run every size ``--repeat`` times (interleaved) and write bench/results/reports-job.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-flow", action="store_true", help="skip the real job (demo flow) runs")
    parser.add_argument("--child", choices=("baseline", "fetch", "render", "flow"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.key, args.folder)
        return
    from odeus_compliance.keys.certificates import ensure_demo_certificate  # noqa: PLC0415

    ensure_demo_certificate(WORK / "data", MASTER)  # the demo signing certificate, made once
    sizes = [int(n) for n in args.users.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for _ in range(args.repeat):
        for users in sizes:
            runs[users].append(_one(users, flow=not args.no_flow))
            print(f"{users} users: done ({_load()} load)", file=sys.stderr)
    rows = [_row(users, results) for users, results in runs.items()]
    _print(rows)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio, cpu = (
            last["render_sign"] / first["render_sign"],
            last["render_sign_cpu"] / first["render_sign_cpu"],
        )
        print(f"render+sign {last['users']:,} / {first['users']:,} users: {ratio:.2f}x wall, {cpu:.2f}x CPU")
    out = RESULTS / "reports-job.json"
    out.write_text(
        json.dumps({"at": datetime.now(UTC).isoformat(), "summary": rows, "runs": runs}, indent=1),
        encoding="utf-8",
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
