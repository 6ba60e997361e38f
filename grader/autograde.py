"""``grader autograde``: grade a class's submissions, several at a time, in isolation.

For each worker slot a trusted test runner (``python -m grader.runner``) is
started once (it imports NumPy, SciPy and Keras once); it grades one submission
at a time, each in a fresh sandbox (grader.sandbox). This process alone writes
the course folder: per student ``autograded/<student>/<assignment>/`` (the graded
notebook for nbgrader's formgrader, and ``results.json`` with every test's
outcome) and the nbgrader gradebook, one student at a time. A submission never
sees the gradebook, the course folder or another submission.

If a runner dies or overruns (it should not: the submission's limits are
enforced inside it), that student is reported as an error with their previous
grades untouched, a new runner takes over and the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from .config import GRADER_DIR, Paths, check_id, settings, venv_on_path
from .errors import ConfigError, GradingError
from .launch import start_limited
from .memlimit import available as memory_cgroups
from .notebooks import NotebookSpec, build_spec, read_notebook
from .release import diff_trees, generate
from .sandbox import Sandbox, SandboxConfig

log = logging.getLogger("grader")


@dataclass
class StudentOutcome:
    student: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"  # graded | invalid | missing | error
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
        self.buf = b""
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
        while b"\n" not in self.buf:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("the test runner did not answer in time")
            ready, _, _ = select.select([fd], [], [], timeout)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"the test runner exited (status {self.proc.poll()})")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def grade(self, job: dict, timeout: float) -> dict:
        self._send(job)
        return self._read_line(time.monotonic() + timeout)

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
    """Write one student's autograded folder and gradebook entries (serially)."""
    from nbgrader.api import Gradebook, MissingEntry

    sid = result["student"]
    outcome = StudentOutcome(sid, max_score=sum(s.max_points for s in specs))
    if result.get("error"):
        outcome.status, outcome.error = "error", result["error"]
        return outcome
    folder = paths.step_dir("autograded", sid, assignment)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    record = {
        "student": sid,
        "assignment": assignment,
        "sandbox": sandbox,
        "graded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": result["notebooks"],
    }
    _write_json(folder / "results.json", record)
    statuses = []
    for spec in specs:
        r = result["notebooks"][spec.notebook]
        nbformat.write(graded_notebook(spec, r), folder / f"{spec.notebook}.ipynb")
        outcome.score += r["score"]
        outcome.seconds += r.get("seconds", 0.0)
        outcome.notes += r.get("notes", [])
        statuses.append(r["status"])
    outcome.status = next((s for s in ("invalid", "missing") if s in statuses), "graded")

    with warnings.catch_warnings(), Gradebook(paths.db_url, "default_course") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy 2 warns about nbgrader's sessions
        gb.update_or_create_student(sid)
        ts = _timestamp(paths.step_dir("submitted", sid, assignment))
        try:
            sub = gb.find_submission(assignment, sid)
            sub.timestamp = ts
        except MissingEntry:
            gb.add_submission(assignment, sid, timestamp=ts)
        for spec in specs:
            r = result["notebooks"][spec.notebook]
            for t in r["tests"]:
                grade = gb.find_grade(t["grade_id"], spec.notebook, assignment, sid)
                grade.auto_score = float(t["points"])
                grade.needs_manual_grade = grade.manual_score is not None
            for c in spec.cells:
                if c.role != "answer":
                    continue
                comment = gb.find_comment(c.grade_id, spec.notebook, assignment, sid)
                answered = c.grade_id in r.get("answers", {}) and (
                    r["answers"][c.grade_id].strip() != c.released.strip()
                )
                comment.auto_comment = None if answered else "No response."
        gb.db.commit()
    return outcome


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
) -> AutogradeReport:
    t0 = time.monotonic()
    venv_on_path()
    paths.check_assignment(assignment)
    course = paths.require_course()
    course.mkdir(parents=True, exist_ok=True)
    st = settings(cfg, assignment)
    workers = workers or st.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    limits = {
        "cell_timeout": float(cell_timeout or st.cell_timeout),
        "notebook_timeout": float(notebook_timeout or st.notebook_timeout),
    }
    box_cfg = SandboxConfig.from_settings(
        st,
        mode=sandbox,
        memory_mb=memory_mb,
        cpu_seconds=int(limits["notebook_timeout"] * 2 + 30),
    )
    box = Sandbox(box_cfg)  # probes bubblewrap; raises if required and missing
    if box.warning:
        log.warning("\n%s", box.warning)
        print(box.warning, file=sys.stderr, flush=True)
    specs = prepare_specs(cfg, paths, assignment)
    subs = find_submissions(paths, assignment, specs, students)
    report = AutogradeReport(assignment, box.mode, box.warning, min(workers, max(len(subs), 1)))
    if not subs:
        log.warning("no submissions of %s in %s", assignment, course / "submitted")
        return report

    box_cfg.mode = box.mode  # runners need not decide again
    header = {
        "specs": [s.to_dict() for s in specs],
        "limits": limits,
        "sandbox": box_cfg.__dict__,
        "warm_imports": list(st.warm_imports),
    }
    log_dir = course / "autograded" / ".logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # a safety net only: the runner enforces the submission's limits itself; this
    # also covers the tests' own reference computations on a loaded machine
    per_student_timeout = len(specs) * (2 * limits["notebook_timeout"] + 180) + 60

    jobs: queue.Queue = queue.Queue()
    for sid in subs:
        jobs.put(sid)
    results: queue.Queue = queue.Queue()

    def worker_loop(slot: int) -> None:
        runner = None
        while True:
            try:
                sid = jobs.get_nowait()
            except queue.Empty:
                break
            job = {"student": sid, "assignment": assignment, "notebooks": subs[sid]}
            try:
                if runner is None:
                    runner = RunnerProcess(header, log_dir / f"runner-{slot}.log")
                res = runner.grade(job, per_student_timeout)
            except Exception as exc:  # noqa: BLE001 - never stop the batch
                if runner is not None:
                    runner.close(kill=True)
                    runner = None
                res = {"student": sid, "error": f"test runner failed: {exc}"}
            results.put(res)
        if runner is not None:
            runner.close()
        results.put(None)

    threads = [
        threading.Thread(target=worker_loop, args=(k,), daemon=True) for k in range(report.workers)
    ]
    for th in threads:
        th.start()
    done_threads = 0
    while done_threads < len(threads):
        res = results.get()
        if res is None:
            done_threads += 1
            continue
        try:
            outcome = save_student(paths, assignment, specs, res, box.mode)
        except Exception as exc:  # noqa: BLE001 - report, keep the others
            log.exception("could not save the grades of %s", res.get("student"))
            outcome = StudentOutcome(
                res.get("student", "?"), status="error", error=f"could not save grades: {exc}"
            )
        report.outcomes.append(outcome)
        if progress:
            progress(outcome)
    for th in threads:
        th.join()
    report.outcomes.sort(key=lambda o: o.student)
    report.seconds = round(time.monotonic() - t0, 2)
    return report
