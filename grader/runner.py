"""The trusted test runner: grades one submission at a time against a grading spec.

Why tests do not run in the submission's kernel: nbgrader runs the test cells in
the same Python process as the student's code and decides pass/fail from the
cell's output. Code that shares that process can make any later cell pass (for
example by registering an IPython input transformer that turns every cell into
``pass``, or by replacing ``numpy.testing.assert_allclose``), return objects whose
``__eq__`` always says yes, or print what looks like a passing result.

Here the submission's cells run in a sandboxed worker (grader.session, which
starts it through grader.sandbox). This runner executes the instructor's setup
and test cells in its own namespace (grader.testcells), where each function the
assignment asks for is a proxy that calls the student's function in the worker
and gets back plain data (grader.wire). A test passes when the instructor's code
runs to the end in this process. The submission can only ever choose the data its
functions return.

Run as ``python -m grader.runner`` by grader.autograde: JSON lines on stdin
(a header, then one job per submission) and stdout (for each job, an event per
planned notebook and per finished test, then its result), so that autograde
keeps the finished tests of a submission that stops the runner.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .caps import TextBudget
from .cases import grading_rng_for
from .clock import TrustedClock
from .errors import GradingError
from .notebooks import NotebookSpec
from .plan import load_submission, plan
from .sandbox import Sandbox, SandboxConfig
from .session import Limits, Session, SubmissionCrashed, SubmissionTimeout
from .testcells import TestRunner, empty_test

log = logging.getLogger("grader.runner")


def grade_notebook(
    spec: NotebookSpec,
    path: Path | None,
    sandbox: Sandbox,
    limits: Limits,
    grading_rng: Callable | None = None,
    emit: Callable[[dict], None] | None = None,
) -> dict:
    """Grade one submitted notebook; never raises for anything the submission does.

    ``grading_rng`` is this student's (grader.cases); ``emit`` gets the plan and
    each test's result as soon as they are known."""
    emit = emit or (lambda event: None)
    t0 = time.monotonic()
    result = {
        "notebook": spec.notebook,
        "status": "graded",
        "score": 0.0,
        "max_score": spec.max_points,
        "tests": [],
        "cells": [],
        "notes": [],
        "answers": {},
        "scratch": {},
        "sandbox": sandbox.mode,
        "seconds": 0.0,
    }
    if path is None or not Path(path).is_file():
        result["status"] = "missing"
        result["notes"].append(f"no submission of {spec.notebook}.ipynb")
        result["tests"] = [
            empty_test(c, "not run: the notebook was not submitted") for c in spec.tests
        ]
        return result
    sub_cells, problem = load_submission(Path(path))
    if problem:
        result["status"] = "invalid"
        result["notes"].append(problem)
        result["tests"] = [empty_test(c, f"not run: {problem}") for c in spec.tests]
        return result
    p = plan(spec, sub_cells)
    result["answers"], result["scratch"] = p.answers, p.scratch
    emit(
        {
            "event": "notebook",
            "notebook": spec.notebook,
            "answers": p.answers,
            "scratch": p.scratch,
            "notes": p.notes.as_list(),
        }
    )
    clock = TrustedClock()
    session = Session(sandbox, p.cells, limits, clock)
    tests = TestRunner(spec, session, limits, clock, grading_rng)
    try:
        try:
            session.start()
        except (SubmissionTimeout, SubmissionCrashed) as exc:
            p.notes.add(f"the notebook could not be run to the end: {exc}")
        result["tests"] = tests.run(
            lambda test: emit({"event": "test", "notebook": spec.notebook, "test": test})
        )
    finally:
        session.close()
    budget = TextBudget()
    for c in p.cells:
        st = session.status.get(c["id"], {"status": "not run", "message": None, "output": ""})
        st = {**st, "message": budget.take(st["message"]), "output": budget.take(st["output"])}
        result["cells"].append({"id": c["id"], "label": p.labels[c["id"]], **st})
    if budget.note():
        p.notes.add(budget.note())
    result["notes"] = p.notes.as_list()
    result["score"] = sum(t["points"] for t in result["tests"])
    result["seconds"] = round(time.monotonic() - t0, 3)
    result["submission_seconds"] = round(session.used, 3)
    result["restarts"] = session.restarts
    result["overran"] = tests.overran
    return result


# --------------------------------------------------------------------------- process
def serve() -> None:
    """JSON-lines loop: header, then one job per line; events, then one result per job."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed (tests, TensorFlow) goes to the log
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runner: %(message)s")
    header = json.loads(sys.stdin.readline())
    specs = {}
    for d in header["specs"]:
        spec = NotebookSpec.from_dict(d)
        specs[(spec.assignment, spec.notebook)] = spec
    limits = Limits(**header["limits"])
    sandbox = Sandbox(SandboxConfig(**header["sandbox"]))
    secret = header["secret"]
    for mod in header.get("warm_imports", []):
        try:
            __import__(mod)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm import of %s failed: %s", mod, exc)

    def emit(event: dict) -> None:
        proto.write(json.dumps(event) + "\n")

    emit({"ready": True, "mode": sandbox.mode, "reason": sandbox.reason})
    for line in sys.stdin:
        job = json.loads(line)
        student, assignment = job["student"], job["assignment"]
        out = {"event": "result", "student": student, "assignment": assignment, "notebooks": {}}
        rng = grading_rng_for(secret, assignment, student)
        try:
            for nb_name, path in job["notebooks"].items():
                out["notebooks"][nb_name] = grade_notebook(
                    specs[(assignment, nb_name)],
                    Path(path) if path else None,
                    sandbox,
                    limits,
                    rng,
                    emit,
                )
        except GradingError as exc:
            out["error"] = str(exc)
        except Exception:  # noqa: BLE001 - report, keep serving
            out["error"] = "internal error in the test runner:\n" + traceback.format_exc()
        # after the trusted clock stopped the instructor's code mid-way (Keras half
        # built, say), start afresh for the next student
        out["recycle"] = any(r.get("overran") for r in out["notebooks"].values())
        emit(out)
        if out["recycle"]:
            return


if __name__ == "__main__":
    serve()
