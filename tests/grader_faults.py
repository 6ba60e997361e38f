"""Tasks for tests/test_grader_engine.py that stand for a submission which takes
down (or hangs) whatever Dask worker grades it. They run in the workers, so they
live in a module the workers can import (tests/ is on their path)."""

from __future__ import annotations

import os
import signal
import time

from grader.engine import grade_submission


def kill_or_hang(job: dict, pool: str) -> dict:
    """Kill this worker process for student ``poison``, hang for ``sleepy``
    (until the task's watchdog ends the worker), grade everyone else."""
    if job["student"] == "poison":
        os.kill(os.getpid(), signal.SIGKILL)
    if job["student"] == "sleepy":
        time.sleep(3600)
    return grade_submission(job, pool)
