"""The trusted test runner: grades one submission at a time against a grading spec.

Why tests do not run in the submission's kernel: nbgrader runs the test cells in
the same Python process as the student's code and decides pass/fail from the
cell's output. Code that shares that process can make any later cell pass (for
example by registering an IPython input transformer that turns every cell into
``pass``, or by replacing ``numpy.testing.assert_allclose``), return objects whose
``__eq__`` always says yes, or print what looks like a passing result.

Here the submission's cells run in a sandboxed worker (grader.sandbox,
grader._student). This runner executes the instructor's setup and test cells in
its own namespace, where each function the assignment asks for is a *proxy*:
calling it sends the arguments to the worker, which calls the student's function
and sends back plain data (grader.wire). A test passes when the instructor's code
runs to the end in this process. The submission can only ever choose the data its
functions return.

Run as ``python -m grader.runner`` by grader.autograde: JSON lines on stdin and
stdout (a header, then one job per submission).
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import wire
from .errors import GradingError
from .notebooks import HIDDEN_MARKERS, NotebookSpec, SpecCell, nbgrader_meta
from .sandbox import Sandbox, SandboxConfig, Worker

log = logging.getLogger("grader.runner")

MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_MESSAGE_CHARS = 1500


# --------------------------------------------------------------------------- exceptions
class SubmissionError(Exception):
    """The submission's function raised an exception (re-raised in the tests)."""


class SubmissionTimeout(BaseException):  # noqa: N818 - BaseException so tests can't swallow it
    """The submission did not answer in time (its worker was killed)."""


class SubmissionCrashed(BaseException):  # noqa: N818
    """The submission's worker died or broke the protocol while answering."""


_BUILTIN_ERRORS = {
    name: getattr(builtins, name)
    for name in (
        "ValueError",
        "TypeError",
        "IndexError",
        "KeyError",
        "ZeroDivisionError",
        "NotImplementedError",
        "ArithmeticError",
        "RuntimeError",
        "AttributeError",
        "LookupError",
        "NameError",
        "AssertionError",
        "MemoryError",
        "RecursionError",
        "OverflowError",
    )
}
_ERROR_CLASSES: dict[str, type] = {}


def _student_exception(etype: str, message: str) -> Exception:
    """An exception a test can catch as the builtin type the student raised."""
    base = _BUILTIN_ERRORS.get(etype) if isinstance(etype, str) else None
    if base is None:
        return SubmissionError(message)
    cls = _ERROR_CLASSES.get(etype)
    if cls is None:
        cls = type(f"Submission{etype}", (SubmissionError, base), {})
        _ERROR_CLASSES[etype] = cls
    return cls(message)


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " [...]"


# --------------------------------------------------------------------------- limits
@dataclass
class Limits:
    cell_timeout: float = 30.0
    notebook_timeout: float = 120.0
    startup_timeout: float = 60.0


# --------------------------------------------------------------------------- session
class Session:
    """One submission's worker: runs its cells, restarts it after a crash or hang.

    A cell that hangs, crashes the process or exhausts memory is recorded and
    left out when the worker restarts, so the rest of the notebook still counts.
    """

    def __init__(self, sandbox: Sandbox, cells: list[dict], limits: Limits):
        self.sandbox = sandbox
        self.cells = cells  # [{"id", "source"}]
        self.limits = limits
        # the notebook's time limit counts the submission's time only (start-up,
        # its cells, its function calls), not the tests' own reference computations
        self.used = 0.0
        self.deadline = 0.0  # absolute end of the notebook budget while timing
        self.skip: set[str] = set()
        self.status: dict[str, dict] = {}
        self.worker: Worker | None = None
        self.budget = limits.cell_timeout  # submission time left in the current test cell
        self.infra_failures = 0
        self.restarts = 0

    # -- lifecycle
    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def _record(self, cid: str, status: str, message: str | None = None, output: str = "") -> None:
        if cid not in self.status:
            self.status[cid] = {"status": status, "message": message, "output": output}

    def remaining(self) -> float:
        return self.limits.notebook_timeout - self.used

    def start(self) -> None:
        """Start the worker and run every cell not skipped; return when it is ready."""
        t0 = time.monotonic()
        self.deadline = t0 + self.remaining()
        try:
            self._start()
        finally:
            self.used += time.monotonic() - t0

    def _start(self) -> None:
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                raise SubmissionTimeout("the notebook's time limit was reached")
            worker = self.sandbox.spawn()
            current: str | None = None
            last: str | None = None
            cell_deadline = min(now + self.limits.startup_timeout, self.deadline)
            hello = False
            try:
                msg = wire.recv(worker.from_child, cell_deadline, MAX_RESULT_BYTES)
                if msg.get("ev") != "hello":
                    raise wire.WireError("unexpected first message")
                hello = True
                job = {"cells": [c for c in self.cells if c["id"] not in self.skip]}
                wire.send(worker.to_child, job, cell_deadline)
                while True:
                    msg = wire.recv(worker.from_child, cell_deadline, MAX_RESULT_BYTES)
                    ev = msg.get("ev") if isinstance(msg, dict) else None
                    if ev == "start":
                        current = last = str(msg.get("cell"))
                        cell_deadline = min(
                            time.monotonic() + self.limits.cell_timeout, self.deadline
                        )
                    elif ev == "done" and current is not None:
                        ok = msg.get("ok") is True
                        self._record(
                            current,
                            "ok" if ok else "error",
                            None if ok else _short(msg.get("error") or "error"),
                            _short(msg.get("output") or "", 4000),
                        )
                        current = None
                    elif ev == "ready":
                        self.worker = worker
                        return
                    else:
                        raise wire.WireError(f"unexpected message {str(msg)[:100]}")
            except wire.WireTimeout:
                worker.kill()
                if current is None and not hello:
                    self._infra(worker, "did not start in time")
                    continue
                culprit = current or last
                if culprit is None:
                    raise SubmissionTimeout("the notebook's time limit was reached") from None
                hit_nb = time.monotonic() >= self.deadline - 0.01
                limit = (
                    f"the notebook's time limit ({self.limits.notebook_timeout:g} s)"
                    if hit_nb
                    else f"the cell time limit ({self.limits.cell_timeout:g} s)"
                )
                self._record(culprit, "timeout", f"stopped: it ran past {limit}")
                self.skip.add(culprit)
            except (wire.PeerGone, wire.WireError) as exc:
                desc = worker.exit_description()
                worker.kill()
                if not hello:
                    self._infra(worker, f"{desc} ({exc})")
                    continue
                culprit = current or last
                if culprit is None:
                    raise SubmissionCrashed(f"the submission's process ended: {desc}") from None
                reason = (
                    f"the process running it ended ({desc}): os._exit, sys.exit in a "
                    "thread, a crash, or the memory limit"
                    if isinstance(exc, wire.PeerGone)
                    else f"it broke the grader's protocol ({exc})"
                )
                self._record(culprit, "crashed", reason)
                self.skip.add(culprit)
            self.restarts += 1

    def _infra(self, worker: Worker, what: str) -> None:
        self.infra_failures += 1
        if self.infra_failures >= 3:
            raise GradingError(f"the sandbox could not start a worker: {what}")
        log.warning("sandbox worker failed before running any cell (%s); retrying", what)

    # -- requests
    def request(self, req: dict, label: str):
        if self.worker is None:
            self.start()
        t0 = time.monotonic()
        self.deadline = t0 + self.remaining()
        deadline = min(t0 + max(self.budget, 0.0), self.deadline)
        worker = self.worker
        try:
            wire.send(worker.to_child, req, deadline, where=label)
            msg = wire.recv(worker.from_child, deadline, MAX_RESULT_BYTES)
        except wire.WireTimeout:
            self.budget = 0.0
            self.close()
            limit = (
                f"the notebook's time limit ({self.limits.notebook_timeout:g} s)"
                if deadline >= self.deadline
                else f"this test's time limit for your code ({self.limits.cell_timeout:g} s)"
            )
            raise SubmissionTimeout(
                f"{label} did not finish before {limit}; the grader stopped it"
            ) from None
        except (wire.PeerGone, wire.WireError) as exc:
            desc = worker.exit_description()
            self.close()
            if isinstance(exc, wire.PeerGone):
                raise SubmissionCrashed(
                    f"the submission's process ended while running {label} ({desc})"
                ) from None
            raise SubmissionCrashed(f"{label} answered with invalid data ({exc})") from None
        finally:
            self.budget -= time.monotonic() - t0
            self.used += time.monotonic() - t0
        if not isinstance(msg, dict) or msg.get("ev") != "result":
            self.close()
            raise SubmissionCrashed(f"{label} answered with invalid data")
        if msg.get("ok") is True:
            return msg.get("value")
        message = str(msg.get("message") or "an error")
        tb = str(msg.get("traceback") or "").strip()
        text = f"{label} raised {message}"
        if tb:
            text += f"\n{_short(tb, 1000)}"
        raise _student_exception(msg.get("etype"), text)


def make_proxy(session: Session, name: str):
    def proxy(*args, **kwargs):
        return session.request({"op": "call", "name": name, "args": args, "kwargs": kwargs}, name)

    proxy.__name__ = proxy.__qualname__ = name
    proxy.__doc__ = f"Calls the submission's {name} in its sandbox."
    return proxy


# --------------------------------------------------------------------------- submission
def _source(cell) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _norm_source(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def load_submission(path: Path) -> tuple[list[dict] | None, str | None]:
    """Parse a submitted notebook defensively: (cells, None) or (None, reason)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"the submitted file cannot be read ({exc.strerror})"
    if size > MAX_SUBMISSION_BYTES:
        return None, f"the notebook is {size // 1024 // 1024} MB, more than the 20 MB limit"
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"the file is not valid notebook JSON ({_short(exc, 200)})"
    if not isinstance(nb, dict):
        return None, "the file is not a notebook (no JSON object at the top)"
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return None, "the notebook has no list of cells"
    cells = [c for c in cells if isinstance(c, dict)]
    if not cells:
        return None, "the notebook has no cells"
    return cells, None


_NAME = {"test": "test cell", "setup": "read-only cell", "answer": "answer cell"}


def plan(spec: NotebookSpec, sub_cells: list[dict]) -> dict:
    """Which code runs in the sandbox, in which order, and what was tampered with.

    The instructor's cells (setup and tests) always come from the spec, never from
    the submission; the submission contributes its answer cells (matched by
    grade_id) and its own extra cells, which run after the instructor cell they
    follow in the submission.
    """
    by_id = spec.by_id()
    answers: dict[str, str] = {}
    scratch: dict[str | None, list[tuple[int, str]]] = {}
    seen: dict[str, int] = {}
    notes: list[str] = []
    anchor: str | None = None
    for i, cell in enumerate(sub_cells):
        gid = nbgrader_meta(cell).get("grade_id")
        gid = gid if isinstance(gid, str) else None
        target = by_id.get(gid) if gid else None
        if target is not None and gid in seen:
            notes.append(
                f"cell {i + 1} repeats the grade_id '{gid}' of cell {seen[gid] + 1}; "
                + (
                    "it was run as an ordinary cell"
                    if target.role == "answer"
                    else "it was ignored"
                )
            )
            if target.role == "answer" and cell.get("cell_type") == "code":
                scratch.setdefault(anchor, []).append((i, _source(cell)))
            continue
        if target is not None:
            seen[gid] = i
            anchor = gid
            src = _source(cell)
            if target.role == "answer":
                answers[gid] = src
            elif target.role in ("test", "setup"):
                what = _NAME[target.role]
                if _norm_source(src) != _norm_source(target.released):
                    notes.append(f"{what} '{gid}' was edited; the original was used")
                meta = nbgrader_meta(cell)
                keys = ("grade", "solution", "locked", "points")
                if any(meta.get(k) != target.meta.get(k) for k in keys):
                    notes.append(
                        f"{what} '{gid}' had its nbgrader metadata changed; the original was used"
                    )
            continue
        if cell.get("cell_type") == "code":
            if gid:
                notes.append(
                    f"cell {i + 1} claims the grade_id '{gid}', which is not part of the "
                    "assignment; it was run as an ordinary cell"
                )
            scratch.setdefault(anchor, []).append((i, _source(cell)))
    cells: list[dict] = []
    labels: dict[str, str] = {}

    def add_scratch(key):
        for i, src in scratch.get(key, []):
            cid = f"cell:{i}"
            cells.append({"id": cid, "source": src})
            labels[cid] = f"your cell {i + 1}"

    add_scratch(None)
    for c in spec.cells:
        if c.role == "setup":
            cid = f"setup:{c.grade_id}"
            cells.append({"id": cid, "source": c.source})
            labels[cid] = f"read-only cell '{c.grade_id}'"
        elif c.role == "answer":
            cid = f"answer:{c.grade_id}"
            if c.grade_id in answers:
                cells.append({"id": cid, "source": answers[c.grade_id]})
            else:
                notes.append(f"answer cell '{c.grade_id}' is missing; the unanswered stub was used")
                cells.append({"id": cid, "source": c.source})
            labels[cid] = f"answer cell '{c.grade_id}'"
        elif c.role == "test" and c.grade_id not in seen:
            notes.append(f"test cell '{c.grade_id}' was deleted; the original was used")
        if c.grade_id:
            add_scratch(c.grade_id)
    return {
        "cells": cells,
        "labels": labels,
        "notes": notes,
        "answers": answers,
        "scratch": {k or "": v for k, v in scratch.items()},
    }


# --------------------------------------------------------------------------- grading
_MAGIC = re.compile(r"^\s*[%!]")


def _trusted_source(src: str) -> str:
    return "\n".join("" if _MAGIC.match(line) else line for line in src.split("\n"))


def _empty_tests(spec: NotebookSpec, message: str) -> list[dict]:
    return [
        {
            "grade_id": c.grade_id,
            "name": c.name,
            "points": 0.0,
            "max_points": c.points,
            "passed": False,
            "message": message,
            "seconds": 0.0,
        }
        for c in spec.tests
    ]


def grade_notebook(spec: NotebookSpec, path: Path | None, sandbox: Sandbox, limits: Limits) -> dict:
    """Grade one submitted notebook; never raises for anything the submission does."""
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
        result["tests"] = _empty_tests(spec, "not run: the notebook was not submitted")
        return result
    sub_cells, problem = load_submission(Path(path))
    if problem:
        result["status"] = "invalid"
        result["notes"].append(problem)
        result["tests"] = _empty_tests(spec, f"not run: {problem}")
        return result
    p = plan(spec, sub_cells)
    result["notes"] += p["notes"]
    result["answers"] = p["answers"]
    result["scratch"] = p["scratch"]
    session = Session(sandbox, p["cells"], limits)
    try:
        try:
            session.start()
        except (SubmissionTimeout, SubmissionCrashed) as exc:
            result["notes"].append(f"the notebook could not be run to the end: {exc}")
        result["tests"] = run_tests(spec, session, limits)
    finally:
        session.close()
    for c in p["cells"]:
        st = session.status.get(c["id"], {"status": "not run", "message": None, "output": ""})
        result["cells"].append({"id": c["id"], "label": p["labels"][c["id"]], **st})
    result["score"] = sum(t["points"] for t in result["tests"])
    result["seconds"] = round(time.monotonic() - t0, 3)
    result["submission_seconds"] = round(session.used, 3)
    result["restarts"] = session.restarts
    return result


def run_tests(spec: NotebookSpec, session: Session, limits: Limits) -> list[dict]:
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    functions, values = [], []
    for c in spec.cells:
        if c.role == "answer":
            functions += c.functions
            values += c.values
    results = []
    for c in spec.cells:
        if c.role == "setup":
            try:
                exec(compile(_trusted_source(c.source), f"<setup {c.grade_id}>", "exec"), ns)
            except Exception as exc:
                raise GradingError(
                    f"the instructor's setup cell '{c.grade_id}' failed in the test runner: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            continue
        if c.role != "test":
            continue
        results.append(run_test_cell(c, ns, session, limits, functions, values))
    return results


def run_test_cell(
    c: SpecCell,
    ns: dict,
    session: Session,
    limits: Limits,
    functions: list[str],
    values: list[str],
) -> dict:
    r = {
        "grade_id": c.grade_id,
        "name": c.name,
        "points": 0.0,
        "max_points": c.points,
        "passed": False,
        "message": "",
        "seconds": 0.0,
    }
    t = time.monotonic()
    if session.remaining() <= 0:
        r["message"] = (
            f"not run: the notebook's time limit ({limits.notebook_timeout:g} s) was reached"
        )
        return r
    # the submission's functions get cell_timeout in total per test cell; the
    # instructor's own code (references such as Keras) is not counted
    session.budget = limits.cell_timeout
    for name in functions:
        ns[name] = make_proxy(session, name)
    try:
        for name in values:
            ns.pop(name, None)
            if re.search(rf"\b{re.escape(name)}\b", c.source):
                try:
                    ns[name] = session.request({"op": "get", "name": name}, name)
                except SubmissionError:
                    pass  # the test then fails with a NameError
        exec(compile(_trusted_source(c.source), f"<test {c.grade_id}>", "exec"), ns)
        r["passed"], r["points"], r["message"] = True, c.points, "passed"
    except (SubmissionTimeout, SubmissionCrashed) as exc:
        r["message"] = _short(str(exc))
        r["hidden"] = _failed_in_hidden_part(c, exc)
    except KeyboardInterrupt:
        raise
    except GradingError:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure of the test is a fail
        msg = str(exc).strip()
        if isinstance(exc, SubmissionError):
            r["message"] = _short(msg)
        else:
            r["message"] = _short(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)
        r["hidden"] = _failed_in_hidden_part(c, exc)
    r["seconds"] = round(time.monotonic() - t, 3)
    return r


def _hidden_lines(source: str) -> set[int]:
    lines, hidden = set(), False
    for n, line in enumerate(source.split("\n"), start=1):
        if HIDDEN_MARKERS[0] in line:
            hidden = True
        elif HIDDEN_MARKERS[1] in line:
            hidden = False
        elif hidden:
            lines.add(n)
    return lines


def _failed_in_hidden_part(c: SpecCell, exc: BaseException) -> bool:
    """Whether the test cell stopped on a line of its hidden part."""
    filename = f"<test {c.grade_id}>"
    lineno = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno is not None and lineno in _hidden_lines(c.source)


# --------------------------------------------------------------------------- process
def serve() -> None:
    """JSON-lines loop: header, then one job per line, one result per line."""
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
    for mod in header.get("warm_imports", []):
        try:
            __import__(mod)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm import of %s failed: %s", mod, exc)
    proto.write(json.dumps({"ready": True, "mode": sandbox.mode, "reason": sandbox.reason}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        out = {"student": job["student"], "assignment": job["assignment"], "notebooks": {}}
        try:
            for nb_name, path in job["notebooks"].items():
                spec = specs[(job["assignment"], nb_name)]
                out["notebooks"][nb_name] = grade_notebook(
                    spec, Path(path) if path else None, sandbox, limits
                )
        except GradingError as exc:
            out["error"] = str(exc)
        except Exception:  # noqa: BLE001 - report, keep serving
            out["error"] = "internal error in the test runner:\n" + traceback.format_exc()
        proto.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    serve()
