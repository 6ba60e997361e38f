"""grader feedback: safe text, no redaction oracle, capped pages, one page per
student whatever the others' records hold (records built by hand, no grading)."""

from __future__ import annotations

import html
import json
import re

import pytest

from grader import cli, config
from grader.config import REPO_ROOT
from grader.errors import StudentsSkipped
from grader.feedback import MAX_NOTES, feedback, render
from grader.leaks import course_secrets

A1 = "a1_convolution_from_scratch"
SECRETS = course_secrets(REPO_ROOT / "solutions" / A1)
LINE = sorted(SECRETS)[0]  # a line of the solution or of a hidden test
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def failed_test(message: str, hidden: bool = False, passed: bool = False) -> dict:
    return {
        "grade_id": "test_corr2d",
        "name": "Check corr2d",
        "points": 20 if passed else 0,
        "max_points": 20,
        "passed": passed,
        "message": message,
        "hidden": hidden,
    }


def record(sid="s1", notes=(), cells=(), tests=None) -> dict:
    tests = tests if tests is not None else [failed_test("corr2d raised ValueError: oops")]
    return {
        "student": sid,
        "graded_at": "2026-01-01T00:00:00+00:00",
        "notebooks": {
            A1: {
                "score": sum(t["points"] for t in tests),
                "max_score": 20,
                "notes": list(notes),
                "cells": list(cells),
                "tests": tests,
            }
        },
    }


def error_cell(n: int, message: str) -> dict:
    return {"id": f"cell:{n}", "label": f"your cell {n}", "status": "error", "message": message}


def student_guess(guess: str) -> dict:
    """A student's own text quoting ``guess`` wherever a submission can put text."""
    return record(
        notes=[f"cell 3 claims the grade_id '{guess}', which is not part of the assignment"],
        cells=[error_cell(4, f"ValueError: {guess}")],
        tests=[failed_test(f"corr2d raised ValueError: {guess}")],  # a visible check
    )


def test_a_students_own_text_does_not_depend_on_the_secrets():
    """`[withheld]` in place of a guessed line would confirm the guess: the page
    shows the student's text as they wrote it, right guess or wrong."""
    page, redactions = render(student_guess(LINE), A1, "A1", SECRETS)
    assert redactions == 0 and "[withheld]" not in page
    assert page == render(student_guess(LINE), A1, "A1", set())[0]
    assert html.unescape(page).count(LINE) == 3


def test_the_instructors_words_quoting_a_secret_line_are_withheld():
    hidden = failed_test(f"a hidden check failed (AssertionError) on the case: {LINE}", True)
    hidden["name"] = f"Check {LINE}"
    page, redactions = render(record(tests=[hidden]), A1, "A1", SECRETS)
    assert redactions == 2
    assert LINE not in html.unescape(page) and "[withheld]" in page


def write_results(course, rec: dict | str) -> None:
    folder = course / "autograded" / (rec["student"] if isinstance(rec, dict) else "s2") / A1
    folder.mkdir(parents=True, exist_ok=True)
    text = rec if isinstance(rec, str) else json.dumps(rec)  # ASCII: "\ud800" stays escaped
    (folder / "results.json").write_text(text)


@pytest.fixture
def paths(tmp_path):
    return config.resolve_paths(config.load_config(), course=tmp_path / "course")


def page_of(paths, sid: str) -> str:
    return (paths.course / "feedback" / sid / A1 / f"{A1}.html").read_text(encoding="utf-8")


def test_a_students_own_markers_and_secret_lines_cannot_fail_their_page(paths):
    rec = student_guess(f"### BEGIN HIDDEN TESTS {LINE}")
    write_results(paths.course, rec)
    assert len(feedback(paths, A1)) == 1
    assert html.unescape(page_of(paths, "s1")).count(f"### BEGIN HIDDEN TESTS {LINE}") == 3


def test_one_bad_record_costs_no_other_student_their_page(paths, capsys):
    """s2's results.json is empty (what a failed write used to leave), s3's holds
    a lone surrogate, NUL and ANSI sequences: s1 and s3 get their pages all the
    same, and s2 is reported with what to do."""
    write_results(paths.course, record("s1"))
    write_results(paths.course, "")
    hostile = "bad \ud800 nul\x00 \x1b[2J\x1b[32mall OK\x1b[0m"
    write_results(
        paths.course,
        record("s3", notes=[hostile], cells=[error_cell(2, hostile)], tests=[failed_test(hostile)]),
    )
    rc = cli.main(["feedback", A1, "--course", str(paths.course)])
    err = capsys.readouterr().err
    assert rc == StudentsSkipped.exit_code
    assert "wrote 2 feedback files" in err
    assert "'s2': results.json is not a grading record" in err
    assert f"grader autograde {A1} --student s2" in err
    page = page_of(paths, "s3")
    assert not UNPRINTABLE.search(page)
    assert page.count("bad \\ud800 nul\\x00 \\x1b[2J\\x1b[32mall OK\\x1b[0m") == 3
    assert "Score: 0 / 20" in page_of(paths, "s1")


def test_a_record_for_another_notebook_is_refused(paths):
    rec = record()
    rec["notebooks"]["../../escape"] = rec["notebooks"].pop(A1)
    write_results(paths.course, rec)
    with pytest.raises(StudentsSkipped, match="belongs to another student or assignment"):
        feedback(paths, A1)
    assert not list(paths.course.rglob("*.html"))


def test_a_huge_record_makes_a_bounded_page_that_says_what_it_left_out():
    big = "x" * 100_000
    rec = record(
        notes=[big] * 1000,
        cells=[error_cell(n, big) for n in range(1000)],
        tests=[failed_test(big)],
    )
    page, _ = render(rec, A1, "A1", SECRETS)
    assert len(page) < 500_000
    assert (
        f"This page leaves out {1000 - MAX_NOTES} more notes, {1000 - MAX_NOTES} more cells "
        f"and the end of {2 * MAX_NOTES + 1} long messages" in page
    )
    assert "more characters not shown" in page
