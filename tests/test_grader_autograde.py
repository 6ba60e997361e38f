"""The A1 fixture class, graded end to end: collect -> autograde -> feedback -> export.

One module-scoped run grades every submission in tests/fixtures/a1/submissions
(correct, blank, wrong-but-plausible, hostile) with 2 workers, through the CLI,
and the tests below assert many things about that one run.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from assignment_checks import feedback_leaks, scores_in_process

from grader import cli, sandbox
from grader.config import REPO_ROOT
from grader.leaks import course_secrets, find_in_text, iter_files

pytestmark = pytest.mark.grading

A1 = "a1_convolution_from_scratch"
FIXTURES = Path(__file__).parent / "fixtures" / "a1" / "submissions"
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 10, 60
BWRAP, _ = sandbox.probe_bubblewrap(sandbox.SandboxConfig().python)

POINTS = {
    "test_conv_output_size": 10,
    "test_zero_pad": 10,
    "test_corr2d": 20,
    "test_conv2d_general": 10,
    "test_conv2d_stride": 10,
    "test_conv2d_padding": 10,
    "test_conv2d_bias": 10,
    "test_max_pool2d": 10,
    "test_avg_pool2d": 10,
}
ALL = set(POINTS)
CONV = {"test_conv2d_general", "test_conv2d_stride", "test_conv2d_padding", "test_conv2d_bias"}

# fixture -> the test cells it must fail (its score is 100 minus their points)
EXPECTED_FAILURES = {
    "correct": set(),
    "blank": ALL,
    # wrong but plausible: each loses exactly the parts it gets wrong
    "kernel-flipped": {"test_corr2d"},
    "padding-one-side": {
        "test_zero_pad", "test_conv2d_general", "test_conv2d_padding", "test_conv2d_bias",
    },
    "zero-pad-float64": {"test_zero_pad"},
    "bias-ignored": {"test_conv2d_bias"},
    "stride-off-by-one": {"test_conv2d_general", "test_conv2d_stride", "test_conv2d_bias"},
    "avg-for-max": {"test_max_pool2d"},
    "size-rounded-up": ALL - {"test_zero_pad", "test_conv2d_padding"},
    # hostile: never an unearned point
    "infinite-loop": {"test_max_pool2d"},
    "memory-bomb": {"test_corr2d"},
    "invalid-json": ALL,
    "no-cells": ALL,
    "deleted-test-cells": {"test_max_pool2d", "test_avg_pool2d"},
    "test-replaced-by-pass": {"test_corr2d"},
    "rebind-assert": ALL,
    "eq-cheat": ALL,
    "transformer-exploit": ALL - {"test_conv_output_size"},
    "fake-output": ALL,
    "snoop": ALL,
    # scipy is invisible inside bubblewrap only
    "forbidden-import": {"test_corr2d"} if BWRAP else set(),
    "metadata-tamper": ALL,
    "kill-self": {"test_avg_pool2d"},
    "huge-return": CONV,
}
# the submissions that are the solution with an honest mistake (safe to run in-process)
PLAUSIBLE = [
    "correct", "blank", "kernel-flipped", "padding-one-side", "zero-pad-float64", "bias-ignored",
    "stride-off-by-one", "avg-for-max", "size-rounded-up",
]
# without bubblewrap, `snoop` could read and overwrite this checkout: never run it there
CLASS = sorted(n for n in EXPECTED_FAILURES if BWRAP or n != "snoop")


def run_cli(*args: str) -> int:
    return cli.main([str(a) for a in args])


def load_results(course: Path, student: str) -> dict:
    path = course / "autograded" / student / A1 / "results.json"
    return json.loads(path.read_text())["notebooks"][A1]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Collect the fixture class from an LMS-style zip, autograde, feedback, export."""
    tmp = tmp_path_factory.mktemp("a1class")
    course = tmp / "course"
    archive = tmp / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in CLASS:
            zf.write(FIXTURES / f"{name}.ipynb", f"{name}_{A1}.ipynb")
        zf.writestr("readme.txt", "not a notebook")
        zf.writestr("no id.ipynb", "{}")
        zf.writestr("__MACOSX/._correct_a1.ipynb", "junk")
    out = {"course": course}
    assert run_cli("collect", A1, archive, "--course", course) == 0
    t0 = time.monotonic()
    rc = run_cli(
        "autograde",
        A1,
        "--course",
        course,
        "--workers",
        "2",
        "--cell-timeout",
        CELL_TIMEOUT,
        "--notebook-timeout",
        NOTEBOOK_TIMEOUT,
        "--memory-mb",
        "1024",
    )
    out["autograde_seconds"] = time.monotonic() - t0
    out["autograde_rc"] = rc
    out["feedback_rc"] = run_cli("feedback", A1, "--course", course)
    out["export_rc"] = run_cli("export", "--course", course)
    return out


def test_collect_imports_every_student_and_reports_the_rest(graded):
    submitted = sorted(p.name for p in (graded["course"] / "submitted").iterdir())
    assert submitted == CLASS
    stamp = graded["course"] / "submitted" / "correct" / A1 / "timestamp.txt"
    assert stamp.read_text().strip().endswith("UTC")


def test_autograde_finishes_the_batch(graded):
    assert graded["autograde_rc"] == 0
    for name in CLASS:
        assert (graded["course"] / "autograded" / name / A1 / "results.json").is_file(), name


@pytest.mark.parametrize("name", CLASS)
def test_fixture_scores_exactly(graded, name):
    r = load_results(graded["course"], name)
    failed = {t["grade_id"] for t in r["tests"] if not t["passed"]}
    assert failed == EXPECTED_FAILURES[name], [
        (t["grade_id"], t["message"][:200]) for t in r["tests"] if not t["passed"]
    ]
    assert r["score"] == 100 - sum(POINTS[g] for g in EXPECTED_FAILURES[name])
    assert r["max_score"] == 100


def test_grading_stays_within_its_limits(graded):
    """Each submission gets at most the notebook's limit of its own time (the tests'
    reference computations are not counted, so a loaded machine cannot cost points)."""
    for name in CLASS:
        r = load_results(graded["course"], name)
        if r["status"] == "graded":
            assert r["submission_seconds"] <= NOTEBOOK_TIMEOUT + 2, (name, r)
            assert r["seconds"] <= 2 * NOTEBOOK_TIMEOUT + 180, (name, r["seconds"])


def test_bubblewrap_is_used_where_it_works(graded):
    r = load_results(graded["course"], "correct")
    assert r["sandbox"] == ("bubblewrap" if BWRAP else "rlimits")


def notes(graded, name) -> str:
    return "\n".join(load_results(graded["course"], name)["notes"])


def message(graded, name, grade_id) -> str:
    r = load_results(graded["course"], name)
    return next(t["message"] for t in r["tests"] if t["grade_id"] == grade_id)


def test_tampering_is_undone_and_reported(graded):
    n = notes(graded, "deleted-test-cells")
    assert "test cell 'test_conv_output_size' was deleted; the original was used" in n
    assert "test cell 'test_max_pool2d' was deleted" in n
    n = notes(graded, "test-replaced-by-pass")
    assert "test cell 'test_corr2d' was edited" in n and "metadata changed" in n
    n = notes(graded, "metadata-tamper")
    assert "'bonus', which is not part of the assignment" in n
    assert "test cell 'test_conv2d_bias' had its nbgrader metadata changed" in n


def test_failures_say_why(graded):
    assert "time limit" in message(graded, "infinite-loop", "test_max_pool2d")
    cells = load_results(graded["course"], "infinite-loop")["cells"]
    assert any(c["status"] == "timeout" for c in cells)
    assert "process ended" in message(graded, "kill-self", "test_avg_pool2d")
    assert any(
        w in message(graded, "memory-bomb", "test_corr2d") for w in ("MemoryError", "time limit")
    )
    assert "larger than the limit" in message(graded, "huge-return", "test_conv2d_bias")
    assert "not plain data" in message(graded, "eq-cheat", "test_corr2d")
    assert "not valid notebook JSON" in notes(graded, "invalid-json")
    assert "no cells" in notes(graded, "no-cells")
    assert message(graded, "rebind-assert", "test_conv_output_size").startswith("AssertionError")
    if BWRAP:  # scipy is hidden: say so, not only "No module named"
        assert "scipy is not allowed in this assignment" in message(
            graded, "forbidden-import", "test_corr2d"
        )


def feedback_file(graded, name) -> Path:
    return graded["course"] / "feedback" / name / A1 / f"{A1}.html"


def test_feedback_shows_tests_points_and_messages(graded):
    assert graded["feedback_rc"] == 0
    html = feedback_file(graded, "kernel-flipped").read_text()
    assert "Score: 80 / 100" in html
    assert "Check corr2d on worked examples, with and without stride and padding" in html
    assert "0 / 20" in html and "10 / 10" in html
    assert "Mismatched elements" in html  # the assertion message from the check
    html = feedback_file(graded, "deleted-test-cells").read_text()
    assert "was deleted; the original was used" in html


def test_feedback_never_contains_test_or_solution_code(graded):
    """Beyond the student's own code: `size-rounded-up`, the solution with one
    mistake, sees its own traceback line, which is a line of the solution."""
    secrets = course_secrets(REPO_ROOT / "solutions" / A1)
    files = iter_files([graded["course"] / "feedback"])
    assert len(files) == len(CLASS)
    assert feedback_leaks(graded["course"], A1, secrets) == []
    for f in files:  # not even the visible checks' source
        assert "np.testing.assert_allclose(" not in f.read_text()


def test_failed_hidden_checks_are_told_apart_from_visible_ones(graded):
    r = {t["grade_id"]: t for t in load_results(graded["course"], "size-rounded-up")["tests"]}
    assert r["test_conv_output_size"]["hidden"] is True  # the visible checks pass
    r = {t["grade_id"]: t for t in load_results(graded["course"], "kernel-flipped")["tests"]}
    assert r["test_corr2d"]["hidden"] is False  # the worked example already fails
    html = feedback_file(graded, "size-rounded-up").read_text()
    assert "a hidden check failed (AssertionError) on the case: n=" in html
    assert "does not count" not in html  # the assertion's own text stays for the instructor
    detail = hidden_detail(graded, "size-rounded-up", "test_conv_output_size")
    assert "does not count the window's positions" in detail


def hidden_detail(graded, name, grade_id) -> str:
    """The full message of a failed hidden check: results.json only, for the instructor."""
    r = load_results(graded["course"], name)
    return next(t["detail"] for t in r["tests"] if t["grade_id"] == grade_id)


def test_feedback_escapes_what_submissions_print(graded):
    html = feedback_file(graded, "snoop" if BWRAP else "fake-output").read_text()
    assert "<script" not in html.lower()


def test_gradebook_has_every_students_grade(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", "default_course") as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment(A1).submissions}
    assert scores == {n: 100.0 - sum(POINTS[g] for g in EXPECTED_FAILURES[n]) for n in CLASS}


def test_hostile_submissions_reached_nothing_outside_their_sandbox(graded):
    course = graded["course"]
    for path in course.rglob("*"):  # `snoop` writes "pwned" or "{}" wherever it can
        if path.is_file() and path.stat().st_size < 10:
            assert path.read_text(errors="ignore") not in ("pwned", "{}"), path
    assert (course / "gradebook.db").stat().st_size > 10_000
    src = (REPO_ROOT / "solutions" / A1 / f"{A1}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in src  # not vandalised
    if BWRAP:
        assert load_results(course, "snoop")["tests"][2]["message"].startswith(
            "corr2d raised RuntimeError: found: \n"
        ), "the sandbox let the submission find files"


def read_csv(course: Path) -> list[dict]:
    with open(course / "exports" / "grades.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_writes_csv_summary_and_figure(graded):
    assert graded["export_rc"] == 0
    rows = read_csv(graded["course"])
    assert len(rows) == len(CLASS) * len(POINTS)
    assert set(rows[0]) == {
        "student_id",
        "assignment",
        "notebook",
        "part",
        "points",
        "max_points",
        "status",
        "total",
        "max_total",
        "sandbox",
    }
    totals = {}
    for r in rows:
        totals[r["student_id"]] = totals.get(r["student_id"], 0.0) + float(r["points"])
    assert totals["correct"] == 100 and totals["blank"] == 0
    assert {r["total"] for r in rows if r["student_id"] == "kernel-flipped"} == {"80"}
    assert {r["sandbox"] for r in rows} == {"bubblewrap" if BWRAP else "rlimits"}
    parts = [r["part"] for r in rows if r["student_id"] == "correct"]
    assert parts == list(POINTS)  # in the notebook's order
    summary = (graded["course"] / "exports" / "summary.md").read_text()
    assert f"{len(CLASS)} submissions" in summary and "grade_distribution.png" in summary
    png = graded["course"] / "exports" / "grade_distribution.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_regrading_selected_students_without_bubblewrap(graded, capsys):
    """Runs last. Replaces one submission, then regrades three students with the
    fallback sandbox (what a machine without bubblewrap gets): only their grades
    may change, the warning is loud, and the fallback is as fair."""
    course = graded["course"]
    before = {(r["student_id"], r["part"]): r["points"] for r in read_csv(course)}
    target = course / "submitted" / "kernel-flipped" / A1 / f"{A1}.ipynb"
    shutil.copy(FIXTURES / "correct.ipynb", target)
    capsys.readouterr()
    rc = run_cli(
        "autograde",
        A1,
        "--course",
        course,
        "--sandbox",
        "rlimits",
        "--workers",
        "1",
        "--student",
        "kernel-flipped",
        "--student",
        "rebind-assert",
        "--student",
        "kill-self",
        "--cell-timeout",
        CELL_TIMEOUT,
        "--memory-mb",
        "1024",
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "NOT isolated by bubblewrap" in err and "READ every file" in err
    for name in ("kernel-flipped", "rebind-assert", "kill-self"):
        assert load_results(course, name)["sandbox"] == "rlimits"
    assert load_results(course, "correct")["sandbox"] == ("bubblewrap" if BWRAP else "rlimits")
    assert run_cli("export", "--course", course) == 0
    after = {(r["student_id"], r["part"]): r["points"] for r in read_csv(course)}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("kernel-flipped", "test_corr2d")}
    assert after[("kernel-flipped", "test_corr2d")] == "20"


def test_feedback_redacts_a_hidden_check_message_that_quotes_hidden_code():
    """Only the instructor's words are redacted (a hidden check's message, built
    from the instructor's case); the student's own text is escaped, never
    redacted (tests/test_grader_feedback.py: redacting it would be an oracle)."""
    from grader.feedback import render

    secrets = course_secrets(REPO_ROOT / "solutions" / A1)
    line = sorted(secrets)[0]
    record = {
        "student": "x",
        "graded_at": "now",
        "notebooks": {
            A1: {
                "score": 0,
                "max_score": 20,
                "notes": ["<script>x</script>"],
                "cells": [],
                "tests": [
                    {
                        "grade_id": "t",
                        "name": "T",
                        "points": 0,
                        "max_points": 20,
                        "passed": False,
                        "hidden": True,
                        "message": f"a hidden check failed on the case: {line}",
                    }
                ],
            }
        },
    }
    html, redactions = render(record, A1, "A1", secrets)
    assert redactions == 1
    assert find_in_text(html, secrets) == []
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_feedback_hides_the_values_a_hidden_check_compared():
    from grader.feedback import render

    message = (
        "AssertionError: \nNot equal to tolerance rtol=0.0001, atol=0.0001\n"
        "conv2d_forward(X of shape (2, 7, 9, 3), stride=2) differs from keras.layers.Conv2D\n"
        "Mismatched elements: 14 / 16 (87.5%)\n ACTUAL: array([1.5, 2.5])\n"
        " DESIRED: array([3.25, 4.75])"
    )
    test = {
        "grade_id": "t",
        "name": "T",
        "points": 0,
        "max_points": 10,
        "passed": False,
        "message": message,
        "hidden": True,
    }
    record = {"student": "x", "notebooks": {A1: {"score": 0, "max_score": 10, "tests": [test]}}}
    html, _ = render(record, A1, "A1", set())
    assert "stride=2) differs from keras.layers.Conv2D" in html
    assert "3.25" not in html and "Mismatched" not in html
    assert "a hidden check: the values it compared are not shown" in html


# the fixture class is graded above under FIXED_SECRET; hidden cases differ per secret,
# and a plausible mistake must lose the same points whatever the cases
OTHER_SECRETS = ["a" * 64, "7" * 63 + "0"]


@pytest.mark.parametrize("name", PLAUSIBLE)
def test_plausible_fixtures_score_the_same_under_other_secrets(name):
    fixture = FIXTURES / f"{name}.ipynb"
    for failed in scores_in_process(A1, fixture, OTHER_SECRETS):
        assert failed == EXPECTED_FAILURES[name]
