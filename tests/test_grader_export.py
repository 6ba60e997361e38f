"""grader export from a small gradebook built here: ids cannot split CSV rows, and
one student's unreadable entries cost no other student their rows."""

from __future__ import annotations

import csv
import shutil
import warnings

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
