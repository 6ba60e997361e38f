"""Benchmark: read one long JSON line from a child process, as autograde reads the runner.

    .venv/bin/python benchmarks/bench_runner_lines.py --mb 8 32 172

A child writes one line of N MB to a pipe in 64 KB writes; the parent reads it
with grader.autograde.LineBuffer (linear) and, for comparison, with the loop it
replaced (``buf += chunk`` and a search of the whole buffer after each chunk,
quadratic: 284 s for 172 MB in issue 12). Prints a Markdown table of seconds.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.autograde import LineBuffer  # noqa: E402

WRITER = (
    "import os, sys\n"
    "n = int(sys.argv[1])\nchunk = b'x' * 65536\n"
    "for _ in range(n // 65536):\n    os.write(1, chunk)\n"
    "os.write(1, b'\\n')\n"
)


def read_linear(fd: int) -> int:
    lines = LineBuffer(max_line=1 << 31)
    while (line := lines.pop()) is None:
        select.select([fd], [], [])
        lines.feed(os.read(fd, 1 << 20))
    return len(line)


def read_quadratic(fd: int) -> int:
    buf = b""
    while b"\n" not in buf:
        select.select([fd], [], [])
        buf += os.read(fd, 1 << 20)
    return len(buf.split(b"\n", 1)[0])


def measure(reader, size: int) -> float:
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(size)], stdout=subprocess.PIPE)
    t0 = time.perf_counter()
    got = reader(child.stdout.fileno())
    seconds = time.perf_counter() - t0
    child.wait()
    assert got == size // 65536 * 65536
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--skip-quadratic-above", type=int, default=64, metavar="MB")
    args = parser.parse_args()
    print("| line (MB) | LineBuffer (s) | old loop (s) |\n| ---: | ---: | ---: |")
    for mb in args.mb:
        size = mb * 1024 * 1024
        linear = measure(read_linear, size)
        old = (
            f"{measure(read_quadratic, size):.2f}"
            if mb <= args.skip_quadratic_above
            else "(skipped)"
        )
        print(f"| {mb} | {linear:.2f} | {old} |")


if __name__ == "__main__":
    main()
