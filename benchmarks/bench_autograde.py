"""Benchmark: autograde N copies of the A1 solution, on Dask and on the old thread pool.

    .venv/bin/python benchmarks/bench_autograde.py --copies 200 --workers 2 --rounds 2 \\
        --also-dask-workers 1 --json bench.json

Each run grades N students, all submitting the A1 solution (the fixture
tests/fixtures/a1/submissions/correct.ipynb), into a fresh temporary course
folder, in a fresh Python process (so that its peak memory is its own):

- ``dask``: today's ``grader autograde`` (a LocalCluster of worker processes,
  one warm test runner each, grader.engine);
- ``pool``: the thread pool that autograde used before Dask, i.e. autograde.py
  as it was at ``--baseline`` (default: the commit before the engine), loaded
  from git, with today's runner, sandbox and saving (``save_student``), so
  that only the fan-out differs.

The runs alternate (pool, dask, pool, dask, ...) so that both see the same load
on a shared machine; the load average is recorded before and after each run.
For each run: wall time, submissions per minute (start-up included), the
coordinator's peak memory (its own RSS high-water mark, not its workers' or
runners'), and the mean time the coordinator spent saving one student (results,
graded notebook, gradebook), which bounds how many workers one coordinator can
keep busy. The figures in grader/README.md come from this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

A1 = "a1_convolution_from_scratch"
SUBMISSION = REPO / "tests" / "fixtures" / "a1" / "submissions" / "correct.ipynb"
BASELINE = "f682cd9"  # main before the Dask engine: autograde's own thread pool


def pool_autograde(baseline: str):
    """autograde() as it was at ``baseline``: its thread pool, today's runner."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{baseline}:grader/autograde.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-pool-")) / "autograde_pool.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("grader._autograde_pool", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def one_run(engine: str, copies: int, workers: int, baseline: str) -> dict:
    """Grade ``copies`` students once, in this process; return the measurements."""
    from grader import autograde as current
    from grader import config

    module = pool_autograde(baseline) if engine == "pool" else current
    saving: list[float] = []
    original = current.save_student  # both save with today's code: only the fan-out differs

    def timed_save(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            saving.append(time.perf_counter() - t0)

    module.save_student = timed_save
    cfg = config.load_config()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        course = Path(tmp) / "course"
        for i in range(copies):
            folder = course / "submitted" / f"s{i + 1:04d}" / A1
            folder.mkdir(parents=True)
            shutil.copy(SUBMISSION, folder / f"{A1}.ipynb")
        paths = config.resolve_paths(cfg, course=course)
        t0 = time.monotonic()
        report = module.autograde(cfg, paths, A1, workers=workers)
        wall = time.monotonic() - t0
    scores = [o.score for o in report.outcomes]
    if report.errors or len(scores) != copies or any(s != 100 for s in scores):
        raise SystemExit(f"benchmark run failed: {report.errors or scores}")
    per = [o.seconds for o in report.outcomes]
    return {
        "engine": engine,
        "copies": copies,
        "workers": workers,
        "sandbox": report.sandbox,
        "wall_seconds": round(wall, 1),
        "per_minute": round(60.0 * copies / wall, 1),
        "mean_seconds_in_runner": round(statistics.fmean(per), 3),
        "coordinator_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "mean_save_ms": round(1000 * statistics.fmean(saving), 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def spawn(engine: str, copies: int, workers: int, baseline: str) -> dict:
    """One run in a fresh process (its own peak memory)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, __file__, "--one", engine, "--copies", str(copies)]
        cmd += ["--workers", str(workers), "--baseline", baseline, "--json", out.name]
        subprocess.run(cmd, check=True)
        row = json.loads(Path(out.name).read_text())
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| run | engine | workers | wall (s) | submissions/min | coordinator peak (MB) "
        "| save per student (ms) | load avg before → after |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r['engine']} | {r['workers']} | {r['wall_seconds']} | {r['per_minute']} "
            f"| {r['coordinator_peak_mb']} | {r['mean_save_ms']} "
            f"| {r['load_before']} → {r['load_after']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=200, help="submissions per run (default 200)")
    p.add_argument("--workers", type=int, default=2, help="workers in the comparison (2)")
    p.add_argument("--rounds", type=int, default=2, help="pool/dask pairs, interleaved (2)")
    p.add_argument(
        "--also-dask-workers",
        type=int,
        nargs="*",
        default=[1],
        help="extra Dask runs with these numbers of workers (default: 1)",
    )
    p.add_argument("--baseline", default=BASELINE, help="git commit of the thread pool")
    p.add_argument("--one", choices=("pool", "dask"), help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.one:
        row = one_run(args.one, args.copies, args.workers, args.baseline)
        args.json.write_text(json.dumps(row))
        return 0
    rows = []
    for _ in range(args.rounds):
        for engine in ("pool", "dask"):
            rows.append(spawn(engine, args.copies, args.workers, args.baseline))
    for w in args.also_dask_workers:
        rows.append(spawn("dask", args.copies, w, args.baseline))
    print(
        f"\nA1 solution x {args.copies}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"sandbox: {rows[0]['sandbox']}\n"
    )
    print(table(rows))
    for w in sorted({r["workers"] for r in rows}):
        for engine in ("pool", "dask"):
            rates = [r["per_minute"] for r in rows if r["engine"] == engine and r["workers"] == w]
            if rates:
                print(f"{engine}, {w} workers: mean {statistics.fmean(rates):.1f}/min")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
