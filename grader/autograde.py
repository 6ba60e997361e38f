"""``grader autograde``: grade a class's submissions, several at a time, in isolation.

The submissions are fanned out on Dask distributed (grader.engine): a
LocalCluster of worker processes on this machine, or the workers of a running
scheduler. Each worker keeps a trusted test runner (``python -m grader.runner``,
``RunnerProcess`` here) that imports NumPy, SciPy and Keras once and grades one
submission at a time, each in a fresh sandbox (grader.sandbox). This process
alone writes the course folder: per student ``autograded/<student>/<assignment>/``
(the graded notebook for nbgrader's formgrader, and ``results.json`` with every
test's outcome) and the nbgrader gradebook, one student at a time. A submission
never sees the gradebook, the course folder or another submission.

The runner reports each test as it finishes. If it dies or overruns while
grading a student (the submission's limits and the tests' own time limit are
enforced inside it, so only something like a C call that never returns, or the
runner's memory limit, gets there), a fresh runner grades that student again;
if that fails too, the student's finished tests keep their points, the others
count 0, and a note says why. A hostile submission cannot keep its previous
grade by stopping the grader. Only a runner that cannot start at all is an
infrastructure error (previous grades kept, exit status 8).

A student already graded from their current submission with the same tests and
limits (``graded_with`` in results.json) is skipped unless ``regrade``; SIGINT
and SIGTERM stop the batch between two students (``Interrupts``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from .cases import course_secret
from .config import GRADER_DIR, Paths, check_id, settings, venv_on_path
from .errors import ConfigError, GradingError, Interrupted
from .launch import start_limited
from .memlimit import available as memory_cgroups
from .notebooks import NotebookSpec, build_spec, read_notebook
from .release import diff_trees, generate
from .sandbox import Sandbox, SandboxConfig
from .testcells import empty_test
from .text import safe_data

log = logging.getLogger("grader")


@dataclass
class StudentOutcome:
    student: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"  # graded | stopped (the runner, twice) | invalid | missing | error
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class AutogradeReport:
    assignment: str
    sandbox: str
    warning: str | None
    workers: int
    outcomes: list[StudentOutcome] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # already graded, unchanged
    scheduler: str | None = None  # None: this machine's LocalCluster

    @property
    def errors(self) -> list[StudentOutcome]:
        return [o for o in self.outcomes if o.status == "error"]


# --------------------------------------------------------------------------- preparation
def prepare_specs(cfg: Config, paths: Paths, assignment: str) -> list[NotebookSpec]:
    """Sync the assignment into the gradebook and build each notebook's grading spec.

    nbgrader's GenerateAssignment regenerates the student version with the course
    gradebook attached (so the gradebook knows every grade cell), in a temporary
    folder; the committed release must match it.
    """
    with tempfile.TemporaryDirectory(prefix="grader-prepare-") as tmp:
        generated = generate(cfg, paths, assignment, Path(tmp), db_url=paths.db_url)
        stale = diff_trees(generated, paths.release / assignment)
        if stale:
            log.warning(
                "assignments/%s is not what `grader release` generates (%s): students may "
                "have an outdated version; grading uses the current one",
                assignment,
                ", ".join(stale),
            )
        specs = []
        for nb_path in sorted((paths.source / assignment).glob("*.ipynb")):
            name = nb_path.stem
            specs.append(
                build_spec(
                    assignment,
                    name,
                    read_notebook(nb_path),
                    read_notebook(generated / nb_path.name),
                )
            )
    if not specs:
        raise ConfigError(f"no notebooks in {paths.source / assignment}")
    return specs


def find_submissions(
    paths: Paths, assignment: str, specs: list[NotebookSpec], students: list[str] | None
) -> dict[str, dict[str, str | None]]:
    submitted = paths.require_course() / "submitted"
    if students:
        ids = [check_id("student", s) for s in students]
        missing = [s for s in ids if not (submitted / s / assignment).is_dir()]
        if missing:
            raise ConfigError(
                f"no submission of {assignment} for: {', '.join(missing)} "
                f"(expected {submitted}/<student>/{assignment}/; run `grader collect` first)"
            )
    elif submitted.is_dir():
        ids = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())
    else:
        ids = []
    out = {}
    for sid in ids:
        folder = submitted / sid / assignment
        out[sid] = {
            spec.notebook: (
                str(folder / f"{spec.notebook}.ipynb")
                if (folder / f"{spec.notebook}.ipynb").is_file()
                else None
            )
            for spec in specs
        }
    return out


# --------------------------------------------------------------------------- runners
MAX_RUNNER_LINE_BYTES = 256 * 1024 * 1024


class RunnerFailed(Exception):
    """The test runner overran, died or sent garbage while grading one student."""

    def __init__(self, reason: str, partial: dict):
        super().__init__(reason)
        self.reason = reason
        # notebook -> {"plan": its "notebook" event or None, "tests": [finished tests]}
        self.partial = partial

    def finished(self) -> int:
        return sum(len(p["tests"]) for p in self.partial.values())


class LineBuffer:
    """Splits a byte stream into lines, looking at each byte once: linear time
    (searching the whole buffer after each chunk took 284 s for one 172 MB line)."""

    def __init__(self, max_line: int = MAX_RUNNER_LINE_BYTES):
        self.max_line = max_line
        self._pending: list[bytes] = []  # the start of a line not complete yet
        self._pending_bytes = 0
        self._lines: deque[bytes] = deque()

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            self._pending_bytes += len(piece)
            if self._pending_bytes > self.max_line:
                raise ValueError(f"a line longer than {self.max_line:,} bytes")
            if piece:
                self._pending.append(piece)
            if end < 0:
                return
            self._lines.append(b"".join(self._pending))
            self._pending, self._pending_bytes = [], 0
            start = end + 1

    def pop(self) -> bytes | None:
        """The next complete line (without its newline), or None."""
        return self._lines.popleft() if self._lines else None


class RunnerProcess:
    """A ``python -m grader.runner`` child speaking JSON lines."""

    def __init__(self, header: dict, log_path: Path, ready_timeout: float = 600.0):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(GRADER_DIR.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("TF_NUM_INTRAOP_THREADS", "1")
        env.setdefault("TF_NUM_INTEROP_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("MPLBACKEND", "Agg")
        self.workdir = tempfile.mkdtemp(prefix="grader-runner-")
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.proc = start_limited(  # a build from student data must not take the machine
            [sys.executable, "-m", "grader.runner"],
            header["sandbox"]["runner_memory_mb"],
            memory_cgroups()[0],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )
        self.lines = LineBuffer()
        self._send(header)
        ready = self._read_line(time.monotonic() + ready_timeout)
        if not ready.get("ready"):
            raise GradingError(f"test runner did not start: {ready}")
        self.mode = ready.get("mode")

    def _send(self, obj: dict) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def _read_line(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        while (line := self.lines.pop()) is None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("the test runner did not answer in time")
            ready, _, _ = select.select([fd], [], [], timeout)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"the test runner {self.exit_description()}")
                self.lines.feed(chunk)
        return json.loads(line)

    def exit_description(self) -> str:
        try:
            status = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "closed its output but is still running"
        if status < 0:
            try:
                return f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                return f"was killed by signal {-status}"
        return f"exited with status {status}"

    def grade(self, job: dict, timeout: float) -> dict:
        """The runner's result for one student's job, or RunnerFailed with the tests
        that finished before it overran or died."""
        partial: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        try:
            self._send(job)
            while True:
                event = self._read_line(deadline)
                kind = event.get("event")
                if kind == "result":
                    return event
                notebook = partial.setdefault(event["notebook"], {"plan": None, "tests": []})
                if kind == "notebook":
                    notebook["plan"] = event
                elif kind == "test":
                    notebook["tests"].append(event["test"])
                else:
                    raise ValueError(f"unexpected event {str(kind)[:40]!r}")
        except TimeoutError:
            reason = f"ran past its time limit for one student ({timeout:g} s)"
            raise RunnerFailed(reason, partial) from None
        except (EOFError, OSError) as exc:
            raise RunnerFailed(str(exc).removeprefix("the test runner "), partial) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RunnerFailed(f"sent an unreadable answer ({exc})", partial) from None

    def close(self, kill: bool = False) -> None:
        try:
            if not kill:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            kill = True
        if kill or self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def stopped_result(
    specs: list[NotebookSpec],
    job: dict,
    failures: list[RunnerFailed],
    sandbox: str,
    note: str | None = None,
) -> dict:
    """A student's result after grading stopped the runner twice: the tests that
    finished (on the try that got further) keep their points, the others count 0."""
    best = max(reversed(failures), key=RunnerFailed.finished)
    note = note or (
        "grading stopped on this submission twice: the grader's test runner "
        + "; then it ".join(f.reason for f in failures)
        + ". The tests that had not finished count 0."
    )
    unfinished = "not finished: grading stopped on this submission (see the notes); counts 0"
    out = {"student": job["student"], "assignment": job["assignment"], "notebooks": {}}
    for spec in specs:
        part = best.partial.get(spec.notebook, {"plan": None, "tests": []})
        plan = part["plan"] or {}
        done = {t.get("grade_id"): t for t in part["tests"] if isinstance(t, dict)}
        tests = [done.get(c.grade_id) or empty_test(c, unfinished) for c in spec.tests]
        out["notebooks"][spec.notebook] = {
            "notebook": spec.notebook,
            "status": "stopped" if job["notebooks"].get(spec.notebook) else "missing",
            "score": sum(t["points"] for t in tests),
            "max_score": spec.max_points,
            "tests": tests,
            "cells": [],
            "notes": list(plan.get("notes", [])) + [note],
            "answers": plan.get("answers", {}),
            "scratch": plan.get("scratch", {}),
            "sandbox": sandbox,
            "seconds": 0.0,
        }
    return out


# --------------------------------------------------------------------------- writing
def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def graded_notebook(spec: NotebookSpec, result: dict) -> nbformat.NotebookNode:
    """The instructor-facing graded notebook (nbgrader's autograded/ format).

    Test cells carry the instructor's source (hidden tests included) and, when
    they failed, an error output: nbgrader's formgrader reads the scores from it.
    It is never shown to students.
    """
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    tests = {t["grade_id"]: t for t in result.get("tests", [])}
    answers = result.get("answers", {})
    scratch = {k or None: v for k, v in result.get("scratch", {}).items()}
    cells = []

    def add_scratch(key):
        for i, src in scratch.get(key, []):
            cells.append(new_code_cell(src, metadata={"grader": {"student_cell": i + 1}}))

    add_scratch(None)
    for c in spec.cells:
        meta = {"nbgrader": dict(c.meta)} if c.meta else {}
        if c.role == "markdown":
            cells.append(new_markdown_cell(c.released or "", metadata=meta))
        elif c.role == "free":
            pass  # the student's copy is among the scratch cells
        elif c.role == "setup":
            cells.append(new_code_cell(c.source, metadata=meta))
        elif c.role == "answer":
            cells.append(new_code_cell(answers.get(c.grade_id, c.source), metadata=meta))
        elif c.role == "test":
            cell = new_code_cell(c.source, metadata=meta)
            t = tests.get(c.grade_id)
            if t is None or not t["passed"]:
                msg = t["message"] if t else "not run"
                cell.outputs = [
                    new_output("error", ename="TestFailed", evalue=msg, traceback=[msg])
                ]
            cells.append(cell)
        if c.grade_id:
            add_scratch(c.grade_id)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    return nb


def _timestamp(folder: Path):
    ts = folder / "timestamp.txt"
    if ts.is_file():
        from nbgrader.utils import parse_utc

        try:
            return parse_utc(ts.read_text().strip())
        except (ValueError, TypeError):
            return None
    return None


def save_student(
    paths: Paths, assignment: str, specs: list[NotebookSpec], result: dict, sandbox: str
) -> StudentOutcome:
    """Write one student's autograded folder and gradebook entries (serially).

    Everything the submission could put in the result (messages, output, cell
    sources, metadata) is made safe first (grader.text), so no string can make a
    file unwritable. The folder is written aside and swapped in only once the
    gradebook holds the new grades: if anything fails, the student's previous
    folder and grades stay as they were.
    """
    result = safe_data(result)
    sid = result["student"]
    outcome = StudentOutcome(sid, max_score=sum(s.max_points for s in specs))
    if result.get("error"):
        outcome.status, outcome.error = "error", result["error"]
        return outcome
    folder = paths.step_dir("autograded", sid, assignment)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{assignment}-", dir=folder.parent))
    try:
        _write_graded(staging, sid, assignment, specs, result, sandbox)
        statuses = []
        for spec in specs:
            r = result["notebooks"][spec.notebook]
            outcome.score += r["score"]
            outcome.seconds += r.get("seconds", 0.0)
            outcome.notes += r.get("notes", [])
            statuses.append(r["status"])
        outcome.status = next(
            (s for s in ("stopped", "invalid", "missing") if s in statuses), "graded"
        )
        _record_grades(paths, assignment, specs, result)
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def _write_graded(
    folder: Path, sid: str, assignment: str, specs: list[NotebookSpec], result: dict, sandbox: str
) -> None:
    """``results.json`` and the graded notebooks (built by the worker, or here), into
    ``folder``. The sandbox is the one the runner reports, which on another
    machine may not be this one's."""
    modes = {r.get("sandbox") for r in result["notebooks"].values()} - {None}
    record = {
        "student": sid,
        "assignment": assignment,
        "sandbox": modes.pop() if len(modes) == 1 else sandbox,
        "graded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": result["notebooks"],
    }
    if result.get("graded_with"):
        record["graded_with"] = result["graded_with"]  # what `autograde` skips if unchanged
    built = result.get("graded_notebooks") or {}
    for spec in specs:
        nb = built.get(spec.notebook)
        nb = (
            nbformat.from_dict(nb)
            if nb
            else graded_notebook(spec, result["notebooks"][spec.notebook])
        )
        nbformat.write(nb, folder / f"{spec.notebook}.ipynb")
    _write_json(folder / "results.json", record)  # last: its presence means the folder is whole


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by ``staging`` (two renames; the old one is then removed)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _by_cell_name(gb, model, notebook) -> dict:
    """A submitted notebook's grades (or comments) by cell name, in one query."""
    from sqlalchemy.orm import joinedload

    rows = gb.db.query(model).options(joinedload(model.cell)).filter(model.notebook == notebook)
    return {row.cell.name: row for row in rows}


def _record_grades(paths: Paths, assignment: str, specs: list[NotebookSpec], result: dict) -> None:
    """The student's scores and "No response." comments, into nbgrader's gradebook,
    in one transaction. The submission's grades and comments are loaded once per
    notebook (one query each, not one per test cell: the coordinator saves every
    student of a batch, so this bounds how many workers it can keep busy)."""
    from nbgrader.api import Comment, Grade, Gradebook, MissingEntry

    sid = result["student"]
    with warnings.catch_warnings(), Gradebook(paths.db_url, "default_course") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy 2 warns about nbgrader's sessions
        gb.update_or_create_student(sid)
        ts = _timestamp(paths.step_dir("submitted", sid, assignment))
        try:
            sub = gb.find_submission(assignment, sid)
            sub.timestamp = ts
        except MissingEntry:
            sub = gb.add_submission(assignment, sid, timestamp=ts)
        submitted = {nb.name: nb for nb in sub.notebooks}
        for spec in specs:
            r = result["notebooks"][spec.notebook]
            grades = _by_cell_name(gb, Grade, submitted[spec.notebook])
            comments = _by_cell_name(gb, Comment, submitted[spec.notebook])
            for t in r["tests"]:
                grade = grades[t["grade_id"]]
                grade.auto_score = float(t["points"])
                grade.needs_manual_grade = grade.manual_score is not None
            for c in spec.cells:
                if c.role != "answer":
                    continue
                answered = c.grade_id in r.get("answers", {}) and (
                    r["answers"][c.grade_id].strip() != c.released.strip()
                )
                comments[c.grade_id].auto_comment = None if answered else "No response."
        gb.db.commit()


# --------------------------------------------------------------------------- resuming
def fingerprint(header: dict) -> str:
    """What decides a grade besides the submission: the tests, limits, sandbox and secret."""
    fixed = {k: header[k] for k in ("specs", "limits", "sandbox", "warm_imports", "secret")}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()


def submission_digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def graded_with(paths: Paths, sid: str, assignment: str) -> dict | None:
    """The fingerprints a student's saved results were graded with, if any."""
    path = paths.step_dir("autograded", sid, assignment) / "results.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record.get("graded_with") if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def read_job(paths: Paths, assignment: str, sid: str, notebooks: dict[str, str | None]) -> dict:
    """One student's task: their submitted notebooks as bytes (a worker on another
    machine has no course folder), each read up to the runner's size limit + 1."""
    from .plan import MAX_SUBMISSION_BYTES

    files: dict[str, bytes] = {}
    names: dict[str, str | None] = {}
    for nb, path in notebooks.items():
        names[nb] = None
        if path is None:
            continue
        try:
            with open(path, "rb") as fh:
                files[Path(path).name] = fh.read(MAX_SUBMISSION_BYTES + 1)
            names[nb] = Path(path).name
        except OSError:
            pass  # graded as not submitted
    return {"student": sid, "assignment": assignment, "notebooks": names, "files": files}


class Interrupts:
    """SIGINT and SIGTERM stop a batch between two students, never inside one's save:
    the gradebook and the course folder hold each student whole or not at all."""

    def __init__(self):
        self.signum: int | None = None
        self._saving = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        if not self._saving:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def saving(self):
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self.signum is not None:
            raise KeyboardInterrupt


# --------------------------------------------------------------------------- main entry
def autograde(
    cfg: Config,
    paths: Paths,
    assignment: str,
    students: list[str] | None = None,
    workers: int | None = None,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    memory_mb: int | None = None,
    sandbox: str | None = None,
    progress=None,
    trusted_timeout: float | None = None,
    scheduler: str | None = None,
    regrade: bool = False,
    planned=None,
    task_timeout: float | None = None,
    task=None,
) -> AutogradeReport:
    """Grade the submissions of ``assignment`` on a Dask cluster (grader.engine):
    this machine's cores, or the workers of the scheduler at ``scheduler``.

    Students whose saved results were graded from their current submission with
    the same tests, limits and sandbox are skipped unless ``regrade`` (or named
    in ``students``): running the command again after an interrupt grades the
    rest. ``progress(outcome)`` is called after each student is saved,
    ``planned(to_grade, skipped)`` once before grading starts."""
    t0 = time.monotonic()
    venv_on_path()
    paths.check_assignment(assignment)
    course = paths.require_existing_course()
    st = settings(cfg, assignment)
    workers = workers or st.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    limits = {
        "cell_timeout": float(cell_timeout or st.cell_timeout),
        "notebook_timeout": float(notebook_timeout or st.notebook_timeout),
        "trusted_timeout": float(trusted_timeout or st.trusted_timeout),
    }
    box_cfg = SandboxConfig.from_settings(
        st,
        mode=sandbox,
        memory_mb=memory_mb,
        cpu_seconds=int(limits["notebook_timeout"] * 2 + 30),
    )
    warning = None
    if scheduler is None:
        box = Sandbox(box_cfg)  # probes bubblewrap; raises if required and missing
        warning = box.warning
        box_cfg.mode = box.mode  # runners need not decide again
        if warning:
            log.warning("\n%s", warning)
            print(warning, file=sys.stderr, flush=True)
    # with a scheduler each worker machine decides for itself ("auto"), or refuses
    # ("bubblewrap"); the mode each student was graded in is in their results
    no_submissions = ConfigError(
        f"no submissions of {assignment} in {course / 'submitted'}: "
        f"run `grader collect {assignment} SOURCE` first (and check --course)"
    )
    if not students and not any((course / "submitted").glob(f"*/{assignment}")):
        raise no_submissions  # before the gradebook is touched
    specs = prepare_specs(cfg, paths, assignment)
    subs = find_submissions(paths, assignment, specs, students)
    if not subs:
        raise no_submissions
    header = {
        "specs": [s.to_dict() for s in specs],
        "limits": limits,
        "sandbox": dict(box_cfg.__dict__),
        "warm_imports": list(st.warm_imports),
        "secret": course_secret(course),  # seeds each student's hidden cases (grader.cases)
    }
    grading = fingerprint(header)
    jobs = {sid: read_job(paths, assignment, sid, nbs) for sid, nbs in subs.items()}
    digests = {sid: submission_digest(job["files"]) for sid, job in jobs.items()}
    del jobs  # read again, one at a time, as tasks are sent: memory stays flat
    skipped = []
    if not (regrade or students):
        skipped = [
            sid
            for sid in subs
            if graded_with(paths, sid, assignment)
            == {"submission": digests[sid], "grading": grading}
        ]
    todo = [sid for sid in subs if sid not in set(skipped)]
    report = AutogradeReport(assignment, box_cfg.mode, warning, min(workers, max(len(todo), 1)))
    report.skipped = skipped
    report.scheduler = scheduler
    if planned:
        planned(len(todo), len(skipped))
    if not todo:
        report.seconds = round(time.monotonic() - t0, 2)
        return report

    log_dir = course / "autograded" / ".logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # a safety net only: the runner enforces the submission's limits and the tests'
    # own (trusted_timeout per cell) itself; this catches what those cannot stop
    trusted_cells = sum(1 for s in specs for c in s.cells if c.role in ("setup", "test"))
    per_student_timeout = (
        len(specs) * (2 * limits["notebook_timeout"] + 180)
        + trusted_cells * limits["trusted_timeout"]
        + 60
    )
    # the last resort, for a hang outside the runner: two tries, each with a start
    task_timeout = task_timeout or 2 * (per_student_timeout + 600) + 120

    from . import engine

    interrupts = Interrupts()
    try:
        with interrupts, engine.cluster(scheduler, report.workers) as client:
            if scheduler is not None:
                report.workers = engine.total_threads(client)
            batch = engine.grade_batch(
                client,
                header,
                (
                    (sid, lambda sid=sid: read_job(paths, assignment, sid, subs[sid]))
                    for sid in todo
                ),
                per_student_timeout=per_student_timeout,
                task_timeout=task_timeout,
                log_dir=str(log_dir),
                task=task or engine.grade_submission,
            )
            try:
                for sid, res in batch:
                    if isinstance(res, BaseException):
                        job = {"student": sid, "assignment": assignment, "notebooks": subs[sid]}
                        res = _lost_task(engine, specs, job, res, box_cfg.mode)
                    res["graded_with"] = {"submission": digests[sid], "grading": grading}
                    with interrupts.saving():
                        outcome = _save(paths, assignment, specs, res, box_cfg.mode)
                    report.outcomes.append(outcome)
                    if progress:
                        progress(outcome)
            finally:
                batch.close()
    except KeyboardInterrupt:
        signum = interrupts.signum or signal.SIGINT
        done, left = len(report.outcomes), len(todo) - len(report.outcomes)
        raise Interrupted(
            f"interrupted by {signal.Signals(signum).name} after grading {done} of "
            f"{len(todo)} students of {assignment}: their grades are saved. Run the "
            f"same command again to grade the other {left}.",
            signum,
        ) from None
    report.outcomes.sort(key=lambda o: o.student)
    report.seconds = round(time.monotonic() - t0, 2)
    return report


def _lost_task(engine, specs, job: dict, exc: BaseException, mode: str) -> dict:
    """The result of a task Dask gave up on: the worker died each time (the
    submission's doing, 0 points), or something else failed (previous grades kept)."""
    from distributed import KilledWorker

    sid = job["student"]
    if isinstance(exc, KilledWorker):
        log.warning("grading %s took %s worker processes down", sid, engine.ALLOWED_FAILURES + 1)
        return engine.killed_result(specs, job, exc, mode)
    return {"student": sid, "error": f"grading task failed: {type(exc).__name__}: {exc}"}


def _save(paths, assignment, specs, res, mode) -> StudentOutcome:
    try:
        return save_student(paths, assignment, specs, res, mode)
    except Exception as exc:  # noqa: BLE001 - report, keep the others
        log.exception("could not save the grades of %s", res.get("student"))
        return StudentOutcome(
            res.get("student", "?"), status="error", error=f"could not save grades: {exc}"
        )
