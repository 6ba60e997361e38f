"""Grading fanned out on Dask distributed: one task per submission.

On one machine ``grader autograde`` starts a Dask ``LocalCluster`` of worker
processes (``--workers``, one task at a time each); with ``--scheduler`` it
sends the tasks to a running Dask scheduler instead, whose workers may be on
other machines (grader/README.md, "Grading on several machines").

Each worker keeps a warm trusted test runner per thread (``RunnerPool``, a
Dask worker plugin registered for one batch and removed at its end, which
closes the runners). A task gets a student's submitted files as bytes, grades
them in that runner (and the runner in the sandbox, as on one machine), and
returns plain data: the results and the graded notebooks. Only the
coordinating ``grader`` process writes the course folder and the gradebook.

Faults are Dask's to survive: a worker process that dies takes its task back
to the scheduler, which runs it elsewhere, and gives up on a task that took
``allowed-failures`` + 1 workers down with it (``KilledWorker``; the
coordinator then records that student as stopped, with 0 for every test).
A task that overruns ``task_timeout`` (far beyond the runner's own limits, so
only a hang outside the runner gets there) ends its worker process, which
counts as such a death. A test runner that a submission stops is retried
once inside the task (grader.autograde.RunnerProcess, stopped_result).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dask
from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .autograde import RunnerFailed, RunnerProcess, graded_notebook, stopped_result
from .errors import SchedulerUnreachable
from .notebooks import NotebookSpec

log = logging.getLogger("grader")

# a task whose worker died this many times more than once is given up (Dask's setting)
ALLOWED_FAILURES = 2
CONNECT_TIMEOUT = "20s"


# --------------------------------------------------------------------------- the cluster
@contextlib.contextmanager
def cluster(scheduler: str | None, workers: int) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` (an address, or a scheduler file
    as ``dask scheduler --scheduler-file`` writes), or of a LocalCluster of
    ``workers`` processes on this machine, closed on exit."""
    settings = {
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
        "distributed.comm.timeouts.connect": CONNECT_TIMEOUT,
        "distributed.admin.system-monitor.interval": "2s",  # metrics nobody reads here
    }
    with dask.config.set(settings):
        if scheduler is None:
            local = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=0,  # workers hold no data: no memory monitor polling
                dashboard_address=None,
                # its health and metrics pages, on a free local port (not 8787)
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.CRITICAL,  # the grader says what matters
            )
            client = Client(local)
        else:
            local = None
            client = _connect(scheduler)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=30)
            if local is not None:
                with contextlib.suppress(Exception):
                    local.close(timeout=30)


def _connect(scheduler: str) -> Client:
    is_file = Path(scheduler).expanduser().is_file()
    try:
        if is_file:
            return Client(scheduler_file=str(Path(scheduler).expanduser()), timeout=CONNECT_TIMEOUT)
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        where = f"the scheduler file {scheduler}" if is_file else scheduler
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {where} ({type(exc).__name__}: {exc}). "
            "Is `dask scheduler` running there, and is the port open from this machine? "
            "Without --scheduler the grader uses this machine's cores."
        ) from None


def total_threads(client: Client) -> int:
    return sum(client.nthreads().values())


# --------------------------------------------------------------------------- the workers
class RunnerPool(WorkerPlugin):
    """One batch's trusted test runners on one worker: one per worker thread,
    started by its first task, closed when the batch removes the plugin."""

    def __init__(self, header: dict, per_student_timeout: float, log_dir: str):
        self.header = header
        self.per_student_timeout = per_student_timeout
        self.log_dir = log_dir

    def setup(self, worker) -> None:
        self.name = str(worker.name).replace("/", "_").replace(":", "_")
        self.specs = [NotebookSpec.from_dict(d) for d in self.header["specs"]]
        self.runners: dict[int, RunnerProcess | None] = {}
        self.lock = threading.Lock()
        folder = Path(self.log_dir)
        if not folder.is_dir():  # another machine: the course folder is not here
            folder = Path(tempfile.gettempdir()) / "grader-runner-logs"
            folder.mkdir(exist_ok=True)
        self.logs = folder

    def teardown(self, worker) -> None:
        """The batch is over (or interrupted): end the runners now, mid-job or not."""
        with self.lock:
            runners, self.runners = list(self.runners.values()), {}
        for runner in runners:
            if runner is not None:
                runner.close(kill=True)

    def kill_runners(self) -> None:
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            if runner is not None:
                with contextlib.suppress(Exception):
                    os.killpg(runner.proc.pid, signal.SIGKILL)

    def grade(self, job: dict) -> dict:
        """Grade one student's job (files as bytes) in this thread's runner."""
        thread = threading.get_ident()
        with tempfile.TemporaryDirectory(prefix="grader-submission-") as tmp:
            notebooks = {}
            for nb, name in job["notebooks"].items():
                if name is None:
                    notebooks[nb] = None
                    continue
                path = Path(tmp) / Path(name).name
                path.write_bytes(job["files"][name])
                notebooks[nb] = str(path)
            runner_job = {
                "student": job["student"],
                "assignment": job["assignment"],
                "notebooks": notebooks,
            }
            result = self._grade_with_retry(thread, runner_job)
        if not result.get("error"):
            result["graded_notebooks"] = {
                spec.notebook: graded_notebook(spec, result["notebooks"][spec.notebook])
                for spec in self.specs
            }
        result.pop("event", None)
        return result

    def _grade_with_retry(self, thread: int, job: dict) -> dict:
        """The runner's result; a runner the submission stops gets one retry in a
        fresh one, then the student's unfinished tests count 0 (stopped_result)."""
        runner = self.runners.get(thread)
        failures: list[RunnerFailed] = []
        res = None
        while res is None:
            try:
                if runner is None:
                    log_path = self.logs / f"runner-{self.name}-{len(self.runners)}.log"
                    runner = RunnerProcess(self.header, log_path)
                    with self.lock:
                        self.runners[thread] = runner
                res = runner.grade(job, self.per_student_timeout)
            except RunnerFailed as exc:  # the student's doing, or bad luck: try again once
                runner.close(kill=True)
                runner = None
                failures.append(exc)
                log.warning("the test runner %s while grading %s", exc.reason, job["student"])
                if len(failures) == 2:
                    res = stopped_result(self.specs, job, failures, self.header["sandbox"]["mode"])
            except Exception as exc:  # noqa: BLE001 - never stop the batch
                if runner is not None:
                    runner.close(kill=True)
                    runner = None
                res = {"student": job["student"], "error": f"test runner failed: {exc}"}
        if res.get("recycle") and runner is not None:
            runner.close()  # it stopped the tests' own code mid-way: start afresh
            runner = None
        with self.lock:
            self.runners[thread] = runner
        return res


def grade_submission(job: dict, pool: str) -> dict:
    """The task: one student's results and graded notebooks, as plain data."""
    return get_worker().plugins[pool].grade(job)


def guarded(task: Callable[[dict, str], dict], job: dict, pool: str, timeout: float) -> dict:
    """Run ``task`` under a watchdog: past ``timeout`` it kills the runners and
    ends this worker process (its nanny starts a fresh one, and the scheduler
    counts the task as having taken a worker down)."""

    def overran() -> None:
        log.error("grading %s overran %g s: ending this worker process", job["student"], timeout)
        with contextlib.suppress(Exception):
            get_worker().plugins[pool].kill_runners()
        os._exit(75)

    timer = threading.Timer(timeout, overran)
    timer.daemon = True
    timer.start()
    t0 = time.monotonic()
    try:
        result = task(job, pool)
        result["task_seconds"] = round(time.monotonic() - t0, 3)  # for benchmarks
        return result
    finally:
        timer.cancel()


# --------------------------------------------------------------------------- the batch
def grade_batch(
    client: Client,
    header: dict,
    jobs: Iterable[tuple[str, Callable[[], dict]]],
    *,
    per_student_timeout: float,
    task_timeout: float,
    log_dir: str,
    task: Callable[[dict, str], dict] = grade_submission,
) -> Iterator[tuple[str, dict | BaseException]]:
    """Grade each ``(student, load_job)`` on the cluster; yield ``(student, result)``
    as each finishes, or ``(student, exception)`` for a task Dask gave up on.

    At most a few tasks per worker thread are in flight, so the coordinator's
    memory does not grow with the class. Closing the generator (an interrupt)
    cancels what is still in flight."""
    pool = f"grader-runners-{uuid.uuid4().hex[:12]}"
    client.register_plugin(RunnerPool(header, per_student_timeout, log_dir), name=pool)
    pending = iter(jobs)
    students: dict[str, str] = {}  # future key -> student
    # results are fetched from the workers in the background as tasks finish, while
    # this thread saves the previous student
    futures = as_completed(with_results=True, raise_errors=False)

    def submit_next() -> bool:
        for sid, load in pending:
            future = client.submit(
                guarded, task, load(), pool, task_timeout, key=f"grade-{sid}-{pool}", pure=False
            )
            students[future.key] = sid
            futures.add(future)
            return True
        return False

    try:
        for _ in range(max(2 * total_threads(client), 4)):
            if not submit_next():
                break
        for future, outcome in futures:
            sid = students.pop(future.key)
            if future.status == "error":  # KilledWorker, or a bug in the task
                outcome = outcome[1]
            elif future.status == "cancelled":
                outcome = (
                    outcome
                    if isinstance(outcome, BaseException)
                    else RuntimeError("the task was cancelled")
                )
            future.release()
            submit_next()
            yield sid, outcome
    finally:
        remaining = list(futures.futures)
        if remaining:
            with contextlib.suppress(Exception):
                client.cancel(remaining, force=True)
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(pool)


def killed_result(specs: list[NotebookSpec], job: dict, exc: BaseException, mode: str) -> dict:
    """A student whose grading took ALLOWED_FAILURES + 1 worker processes down:
    every test counts 0, and a note says why (as for a runner stopped twice)."""
    tries = ALLOWED_FAILURES + 1
    reason = (
        f"the grading worker process ended each of the {tries} times it graded it "
        f"(out of memory, killed, or past its time limit; {type(exc).__name__})"
    )
    note = f"grading stopped on this submission: {reason}. Its tests count 0."
    return stopped_result(specs, job, [RunnerFailed(reason, {})], mode, note=note)
