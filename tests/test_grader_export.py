"""grader export from a small gradebook built here: ids cannot split CSV rows, and
one student's unreadable entries cost no other student their rows."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import pytest

from grader import cli, config
from grader.errors import StudentsSkipped

A1 = "a1_convolution_from_scratch"
ODD_ID = "s9\n\x1b[31m,x"  # what an older collect let into the gradebook


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """A gradebook with A1 (two parts of 10 points), s1 and the odd id graded, s2 missing."""
    from nbgrader.api import Gradebook

    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    config.venv_on_path()  # nbgrader's Gradebook runs alembic
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db}") as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment(A1)
        gb.update_or_create_notebook(A1, A1)
        for part in ("test_a", "test_b"):
            gb.update_or_create_grade_cell(part, A1, A1, max_score=10, cell_type="code")
        for sid in ("s1", ODD_ID, "s2"):
            gb.add_student(sid)
        for sid in ("s1", ODD_ID):
            gb.add_submission(A1, sid)
            for part in ("test_a", "test_b"):
                grade = gb.find_grade(part, A1, A1, sid)
                grade.auto_score = 10 if part == "test_a" else 0
                grade.needs_manual_grade = False
        gb.db.commit()
    return db


@pytest.fixture
def course(gradebook, tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(gradebook, course / "gradebook.db")
    return course


def read_rows(course) -> tuple[str, list[dict]]:
    text = (course / "exports" / "grades.csv").read_text(encoding="utf-8")
    return text, list(csv.DictReader(text.splitlines()))


def test_every_csv_row_is_one_line(course):
    assert cli.main(["export", "--course", str(course)]) == 0
    text, rows = read_rows(course)
    assert len(text.splitlines()) == 1 + len(rows) == 1 + 3 * 2
    assert {r["student_id"] for r in rows} == {"s1", "s2", "s9\\n\\x1b[31m,x"}
    assert {(r["student_id"], r["status"]) for r in rows if r["part"] == "test_a"} == {
        ("s1", "graded"),
        ("s2", "missing"),
        ("s9\\n\\x1b[31m,x", "graded"),
    }


def test_an_unreadable_student_is_reported_and_the_others_exported(course, monkeypatch, capsys):
    from nbgrader.api import Gradebook

    original = Gradebook.find_submission

    def find_submission(self, assignment, student):
        if student == "s1":
            raise ValueError("damaged entry")
        return original(self, assignment, student)

    monkeypatch.setattr(Gradebook, "find_submission", find_submission)
    assert cli.main(["export", "--course", str(course)]) == StudentsSkipped.exit_code
    err = capsys.readouterr().err
    assert "without 1 students" in err and "'s1': " in err and "damaged entry" in err
    assert f"grader autograde {A1} --student ID" in err
    _, rows = read_rows(course)
    assert {r["student_id"] for r in rows} == {"s2", "s9\\n\\x1b[31m,x"}
    assert (course / "exports" / "summary.md").is_file()


# ------------------------------------------------------------------ what an instructor hit
LMS = Path(__file__).parent / "fixtures" / "lms"
CANVAS_TITLE = "Assignment 1: Convolution from scratch (12345)"


def write_record(course, sid: str, sandbox_mode: str, points: dict[str, float]) -> None:
    """The results.json autograde writes (what feedback and the sandbox column read)."""
    tests = [
        {"grade_id": g, "name": f"Check {g}", "points": p, "max_points": 10, "passed": p == 10,
         "message": "passed" if p == 10 else "wrong"}
        for g, p in points.items()
    ]  # fmt: skip
    nb = {"score": sum(points.values()), "max_score": 20, "tests": tests, "notes": [],
          "cells": [], "sandbox": sandbox_mode}  # fmt: skip
    folder = course / "autograded" / sid / A1
    folder.mkdir(parents=True, exist_ok=True)
    record = {"student": sid, "assignment": A1, "sandbox": sandbox_mode, "notebooks": {A1: nb}}
    (folder / "results.json").write_text(json.dumps(record))


def test_grades_csv_has_each_students_total_and_sandbox(course):
    write_record(course, "s1", "bubblewrap", {"test_a": 10, "test_b": 0})
    assert cli.main(["export", "--course", str(course)]) == 0
    _, rows = read_rows(course)
    s1 = [r for r in rows if r["student_id"] == "s1"]
    assert {(r["total"], r["max_total"], r["sandbox"]) for r in s1} == {("10", "20", "bubblewrap")}
    s2 = [r for r in rows if r["student_id"] == "s2"]
    assert {(r["status"], r["total"], r["sandbox"]) for r in s2} == {("missing", "0", "")}
    summary = (course / "exports" / "summary.md").read_text()
    assert "Graded in sandbox bubblewrap: 1, unknown (no results.json): 1." in summary


def test_the_histogram_keeps_full_marks_apart_from_the_90s():
    from grader.export import BIN_LABELS, score_bins

    counts = score_bins([0, 9.9, 10, 90, 95, 99.9, 100, 100])
    assert BIN_LABELS[-2:] == ["90–99", "100"]
    assert counts[0] == 2 and counts[1] == 1 and counts[9] == 3 and counts[10] == 2


def test_a_manual_score_changes_the_export_and_the_feedback_page_alike(course):
    from nbgrader.api import Gradebook

    write_record(course, "s1", "bubblewrap", {"test_a": 10, "test_b": 0})
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")
        gb.find_grade("test_b", A1, A1, "s1").manual_score = 7
        gb.db.commit()
    assert cli.main(["export", "--course", str(course)]) == 0
    _, rows = read_rows(course)
    assert {r["total"] for r in rows if r["student_id"] == "s1"} == {"17"}
    assert cli.main(["feedback", A1, "--course", str(course), "--student", "s1"]) == 0
    page = (course / "feedback" / "s1" / A1 / f"{A1}.html").read_text()
    assert "Score: 17 / 20" in page and "7 / 10" in page
    assert "Your instructor set the score of &#39;Check test_b&#39; by hand" in page


def test_lms_files_load_into_each_lms_sample_and_match_students_by_id(course, tmp_path):
    """canvas.csv and moodle.csv read the way Canvas and Moodle read a file in their
    own export format (tests/fixtures/lms): every student matched by id, one score
    per assignment, the totals of grades.csv."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")  # ids as Canvas's submission downloads name them
        for sid, (a, b) in {"4711": (10, 10), "4712": (10, 0)}.items():
            gb.add_student(sid)
            gb.add_submission(A1, sid)
            for part, score in (("test_a", a), ("test_b", b)):
                gb.find_grade(part, A1, A1, sid).auto_score = score
        gb.add_student("4713")  # on the roster, no submission
        gb.db.commit()
    config_file = tmp_path / "lms_config.py"
    config_file.write_text(f"c.GraderSettings.lms_columns = {{{A1!r}: {CANVAS_TITLE!r}}}\n")
    assert cli.main(["export", "--course", str(course), "--config", str(config_file)]) == 0
    out = course / "exports"

    canvas = list(csv.reader((out / "canvas.csv").open()))
    sample = list(csv.reader((LMS / "canvas_gradebook_export.csv").open()))
    assert canvas[0][:5] == sample[0][:5]  # Student, ID, SIS User ID, SIS Login ID, Section
    assert canvas[0][5:] == [CANVAS_TITLE] and CANVAS_TITLE in sample[0]
    assert canvas[1][0] == sample[1][0] == "    Points Possible" and canvas[1][5] == "20"
    column = sample[0].index(CANVAS_TITLE)
    by_id = {row[1]: row for row in sample[2:]}
    for row in canvas[2:]:  # Canvas matches by ID
        if row[1] in by_id:
            by_id[row[1]][column] = row[5]
    assert {i: r[column] for i, r in by_id.items()} == {"4711": "20", "4712": "10", "4713": "0"}

    moodle = list(csv.DictReader((out / "moodle.csv").open()))
    sample = list(csv.DictReader((LMS / "moodle_grades_export.csv").open()))
    assert "ID number" in sample[0]  # the user field Moodle's import maps to useridnumber
    grades = {r["ID number"]: r[CANVAS_TITLE] for r in moodle}
    assert {s["ID number"] for s in sample} <= set(grades)
    assert grades["4711"] == "20" and grades["4712"] == "10" and grades["4713"] == "0"


def test_an_export_with_no_grades_or_no_course_folder_exits_2(tmp_path, capsys):
    from nbgrader.api import Gradebook

    assert cli.main(["export", "--course", str(tmp_path / "typo")]) == 2
    assert "typo does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    config.venv_on_path()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}"):
        warnings.simplefilter("ignore")
    assert cli.main(["export", "--course", str(tmp_path)]) == 2
    assert "holds no grades" in capsys.readouterr().err


def test_roster_students_who_did_not_submit_are_exported_as_missing(course, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id\ns1\ns3\n")
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "s1_a1.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4}')
    args = ["collect", A1, str(folder), "--course", str(course), "--roster", str(roster)]
    assert cli.main(args) == 0
    assert cli.main(["export", "--course", str(course)]) == 0
    _, rows = read_rows(course)
    assert {(r["status"], r["points"]) for r in rows if r["student_id"] == "s3"} == {
        ("missing", "0")
    }
    summary = (course / "exports" / "summary.md").read_text()
    assert "(2 students without one)" in summary  # s2 and s3
