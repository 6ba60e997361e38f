"""Benchmark: autograde N copies of the A1 solution with 1 and with 2 workers.

    .venv/bin/python benchmarks/bench_autograde.py --copies 12 --workers 1 2

Each run grades N students, all submitting the A1 solution (the fixture
tests/fixtures/a1/submissions/correct.ipynb), into a fresh temporary course
folder, exactly as ``grader autograde`` does: one test runner per worker
(started once; it imports NumPy, SciPy and Keras), one fresh sandbox per
submission. It prints a Markdown table with the wall time, submissions per
minute with the start-up included (what an instructor waits for), the mean time
per submission measured inside the runner, and the rate once the workers are up
(workers x 60 / mean time). The figures in grader/README.md come
from this script.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader import config  # noqa: E402
from grader.autograde import autograde  # noqa: E402

A1 = "a1_convolution_from_scratch"
SUBMISSION = REPO / "tests" / "fixtures" / "a1" / "submissions" / "correct.ipynb"


def run(copies: int, workers: int, sandbox: str) -> dict:
    cfg = config.load_config()
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        course = Path(tmp) / "course"
        for i in range(copies):
            folder = course / "submitted" / f"s{i + 1:03d}" / A1
            folder.mkdir(parents=True)
            shutil.copy(SUBMISSION, folder / f"{A1}.ipynb")
        paths = config.resolve_paths(cfg, course=course)
        t0 = time.monotonic()
        report = autograde(cfg, paths, A1, workers=workers, sandbox=sandbox)
        wall = time.monotonic() - t0
    scores = [o.score for o in report.outcomes]
    if report.errors or any(s != 100 for s in scores):
        raise SystemExit(f"benchmark run failed: {report.errors or scores}")
    per = [o.seconds for o in report.outcomes]
    return {
        "copies": copies,
        "workers": report.workers,
        "sandbox": report.sandbox,
        "wall_seconds": round(wall, 1),
        "submissions_per_minute": round(60.0 * copies / wall, 1),
        "mean_seconds_per_submission": round(statistics.fmean(per), 2),
        # once the workers are up: each worker grades one submission at a time
        "steady_per_minute": round(60.0 * report.workers / statistics.fmean(per), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=12, help="submissions per run (default 12)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sandbox", default="auto", choices=("auto", "bubblewrap", "rlimits"))
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    rows = [run(args.copies, w, args.sandbox) for w in args.workers]
    print(
        f"\nA1 solution x {args.copies}, {platform.machine()}, "
        f"{__import__('os').cpu_count()} CPUs, sandbox: {rows[0]['sandbox']}\n"
    )
    print(
        "| workers | wall time (s) | submissions/min, start-up included "
        "| s per submission | submissions/min once started |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['workers']} | {r['wall_seconds']} | {r['submissions_per_minute']} | "
            f"{r['mean_seconds_per_submission']} | {r['steady_per_minute']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
