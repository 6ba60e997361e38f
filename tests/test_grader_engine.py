"""autograde on Dask distributed, with the faults real clusters have: a real
scheduler and two workers started as separate processes, a worker killed by its
PID in the middle of a batch, a submission that kills or hangs whatever worker
grades it, the coordinator stopped by SIGTERM halfway and run again, and a
scheduler that cannot be reached. A toy assignment (no Keras), small classes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from test_grader_runner import answer_cell, answers, grade_cell, notebook, release_toy, setup_cell

from grader import cli, config, engine
from grader.autograde import autograde
from grader.errors import Interrupted, SchedulerUnreachable

pytestmark = pytest.mark.grading

TOY = "toy3"
SLOW_RIGHT = "import time\n\ndef answer(x):\n    time.sleep(0.5)\n    return x"
SLOW_WRONG = "import time\n\ndef answer(x):\n    time.sleep(0.5)\n    return x + 1"
BIN = Path(sys.executable).parent


def toy3_source() -> nbformat.NotebookNode:
    return notebook(
        [
            setup_cell("setup", "import numpy as np"),
            answer_cell(
                "answer",
                "def answer(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
            ),
            grade_cell("test_one", 2, '"""Check answer(1)"""\nassert answer(1) == 1'),
            grade_cell("test_two", 3, '"""Check answer(2)"""\nassert answer(2) == 2'),
        ]
    )


def expected(student: str) -> float:
    return 0.0 if student.endswith(("1", "3", "5", "7", "9")) else 5.0


class Toy:
    """A toy course: its config (also as a file for the CLI), paths and helpers."""

    def __init__(self, tmp_path_factory, n: int):
        self.cfg = config.load_config()
        self.cfg.GraderSettings.warm_imports = ["numpy"]  # no Keras: fast runners
        self.course = tmp_path_factory.mktemp("enginecourse")
        self.paths, self.release = release_toy(
            tmp_path_factory, TOY, toy3_source(), self.cfg, self.course
        )
        self.config_file = self.course.parent / f"{self.course.name}_config.py"
        self.config_file.write_text(
            f"c.CourseDirectory.source_directory = {str(self.paths.source)!r}\n"
            f"c.CourseDirectory.release_directory = {str(self.paths.release)!r}\n"
            "c.GraderSettings.warm_imports = ['numpy']\n"
        )
        self.students = [f"s{i:02d}" for i in range(n)]
        for sid in self.students:
            folder = self.course / "submitted" / sid / TOY
            folder.mkdir(parents=True)
            code = SLOW_WRONG if expected(sid) == 0 else SLOW_RIGHT
            nbformat.write(answers(self.release, answer=code), folder / f"{TOY}.ipynb")

    def add(self, sid: str, code: str = SLOW_RIGHT) -> None:
        folder = self.course / "submitted" / sid / TOY
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(answers(self.release, answer=code), folder / f"{TOY}.ipynb")

    def cli(self, *args: str) -> list[str]:
        return [
            str(BIN / "grader"),
            *args,
            "--course",
            str(self.course),
            "--config",
            str(self.config_file),
        ]

    def run(self, **kwargs):
        kwargs = {"cell_timeout": 10, "notebook_timeout": 30, **kwargs}
        return autograde(self.cfg, self.paths, TOY, **kwargs)

    def gradebook(self) -> dict[str, tuple[float, int]]:
        """student -> (score, number of grades) for every submission in the gradebook."""
        from nbgrader.api import Gradebook

        with Gradebook(self.paths.db_url, "default_course") as gb:
            out = {}
            for sub in gb.find_assignment(TOY).submissions:
                grades = [g for nb in sub.notebooks for g in nb.grades]
                out[sub.student.id] = (sub.score, len(grades))
            return out

    def results(self, sid: str) -> dict:
        path = self.course / "autograded" / sid / TOY / "results.json"
        return json.loads(path.read_text())

    def assert_graded_once_each(self, report, students) -> None:
        saved = [o.student for o in report.outcomes]
        assert len(saved) == len(set(saved))  # none saved twice
        assert set(students) <= set(saved)  # none lost
        book = self.gradebook()
        for sid in students:
            assert book[sid] == (expected(sid), 2), sid
            assert self.results(sid)["notebooks"][TOY]["score"] == expected(sid)


# ------------------------------------------------------------------ a real scheduler
@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes, as an instructor starts them."""
    tmp = tmp_path_factory.mktemp("dask")
    file = tmp / "scheduler.json"
    procs = []
    logs = []

    def start(*args: str):
        log = open(tmp / f"{len(procs)}.log", "w")  # noqa: SIM115 - closed below
        logs.append(log)
        procs.append(subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=log))

    start("scheduler", "--scheduler-file", str(file), "--port", "0", "--no-dashboard")
    try:
        deadline = time.monotonic() + 120
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        for k in range(2):
            start(
                "worker",
                "--scheduler-file",
                str(file),
                "--nthreads",
                "1",
                "--name",
                f"w{k}",
                "--no-dashboard",
                "--local-directory",
                str(tmp),
            )
        from distributed import Client

        with Client(scheduler_file=str(file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=180)
        yield file
    finally:
        for p in procs:  # the processes this fixture started, by their PIDs
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    return Toy(tmp_path_factory, 8)


def test_the_cli_grades_a_class_on_a_scheduler_and_its_two_workers(remote, scheduler):
    res = subprocess.run(
        remote.cli("autograde", TOY, "--scheduler", str(scheduler)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"graded 8 submissions of {TOY} with 2 workers on {scheduler}" in res.stdout
    assert "progress: 8/8 students (100%)" in res.stdout  # not a terminal: plain lines
    book = remote.gradebook()
    assert book == {sid: (expected(sid), 2) for sid in remote.students}
    # both workers graded (the runner logs are named by worker)
    logs = {p.name.split("-")[1] for p in (remote.course / "autograded" / ".logs").iterdir()}
    assert logs == {"w0", "w1"}


def test_a_worker_killed_mid_batch_costs_nothing(remote, scheduler):
    """Kill one worker process (by its PID) while it grades: its task runs again
    elsewhere; every student is saved once, with the right grade."""
    from distributed import Client

    killed = []

    def kill_a_busy_worker(outcome) -> None:
        if killed:
            return
        with Client(scheduler_file=str(scheduler), timeout="30s") as client:
            busy = [w for w, keys in client.processing().items() if keys]
            pids = client.run(os.getpid, workers=busy[:1])
        for address, pid in pids.items():
            os.kill(pid, signal.SIGKILL)
            killed.append(address)

    report = remote.run(scheduler=str(scheduler), regrade=True, progress=kill_a_busy_worker)
    assert killed, "no worker was busy to be killed"
    assert report.errors == []
    remote.assert_graded_once_each(report, remote.students)


# ------------------------------------------------------------------ this machine
@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return Toy(tmp_path_factory, 4)


def test_a_submission_that_kills_or_hangs_every_worker_is_recorded_and_the_batch_goes_on(
    local, monkeypatch
):
    import grader_faults

    local.add("poison")
    local.add("sleepy")
    monkeypatch.setattr(engine, "ALLOWED_FAILURES", 1)  # two tries each: a quicker test
    report = local.run(workers=2, task=grader_faults.kill_or_hang, task_timeout=20)
    status = {o.student: (o.status, o.score) for o in report.outcomes}
    assert status["poison"] == ("stopped", 0) and status["sleepy"] == ("stopped", 0)
    for sid in ("poison", "sleepy"):
        note = local.results(sid)["notebooks"][TOY]["notes"][-1]
        assert "the grading worker process ended each of the 2 times it graded it" in note
        assert "KilledWorker" in note
    assert report.errors == []
    local.assert_graded_once_each(report, local.students)


def test_sigterm_halfway_keeps_whole_students_and_the_same_command_grades_the_rest(
    tmp_path_factory,
):
    local = Toy(tmp_path_factory, 6)
    command = local.cli("autograde", TOY, "--workers", "1")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    graded = 0
    for line in proc.stdout:
        graded += bool(re.match(r"  \S+: ", line))
        if graded == 2:
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out + err
    assert "interrupted by SIGTERM after grading" in err
    assert "Run the same command again to grade the other" in err
    # the gradebook and the folders hold whole students: every grade of a student or none
    book = local.gradebook()
    assert all(n == 2 for _, n in book.values())
    first = sorted(book)
    assert 2 <= len(first) < len(local.students)
    assert all((local.course / "autograded" / s / TOY / "results.json").is_file() for s in first)

    res = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    second = re.findall(r"^  (\S+): ", res.stdout, re.M)
    assert f"skipping {len(first)} students already graded" in res.stdout
    assert sorted(first + second) == local.students  # each graded once, none left out
    assert local.gradebook() == {sid: (expected(sid), 2) for sid in local.students}


def test_an_unreachable_scheduler_is_named_with_exit_code_10(local, monkeypatch, capsys):
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", "2s")
    rc = cli.main(
        [
            "autograde",
            TOY,
            "--course",
            str(local.course),
            "--config",
            str(local.config_file),
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--regrade",
        ]
    )
    assert rc == SchedulerUnreachable.exit_code == 10
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def test_an_interrupt_is_its_own_error_with_the_signals_exit_code():
    assert Interrupted("x", signal.SIGTERM).exit_code == 143
    assert Interrupted("x", signal.SIGINT).exit_code == 130


def test_ctrl_c_in_the_coordinator_stops_between_students(local):
    """SIGINT in the process running autograde (the main thread): the student being
    saved is saved whole, the batch stops with Interrupted, nothing is half written."""
    seen = []

    def interrupt_after_first(outcome) -> None:
        seen.append(outcome.student)
        if len(seen) == 1:
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(0.5)  # the signal arrives while this student is being reported

    with pytest.raises(Interrupted) as info:
        local.run(workers=1, regrade=True, progress=interrupt_after_first)
    assert info.value.exit_code == 130
    assert len(seen) >= 1
    assert all(n == 2 for _, n in local.gradebook().values())
