"""Hostile text, graded end to end: collect -> autograde -> feedback -> export.

A small class (the A1 `correct` fixture and three submissions built here from the
released notebook) whose text would break files and terminals: a lone surrogate
in an exception message, in a cell's source and in nbgrader metadata; NUL, ANSI
sequences, carriage returns and a bidirectional override in an error cell and
its output; a student quoting a line of the hidden tests and an nbgrader marker
in their own text; a zip member whose name paints a fake "all OK" line. Every
student must get their grade, graded notebook, feedback page and CSV rows, with
the text escaped, and the student's own text never redacted.
"""

from __future__ import annotations

import csv
import html
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import cli
from grader.config import REPO_ROOT
from grader.leaks import course_secrets

pytestmark = pytest.mark.grading

A1 = "a1_convolution_from_scratch"
CORRECT = Path(__file__).parent / "fixtures" / "a1" / "submissions" / "correct.ipynb"
LINE = sorted(course_secrets(REPO_ROOT / "solutions" / A1))[0]  # a hidden-test/solution line
MARKER = "### BEGIN HIDDEN TESTS"
ANSI = "\x00\x1b[2J\x1b[32mall OK\x1b[0m\r\u202e"
FAKE_MEMBER = "readme.txt\n\x1b[2K\x1b[32mimported 25 submissions, all OK\x1b[0m"
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\ud800-\udfff]")


def submission(corr2d_raises: str, extra_cells: list[str], claimed_grade_id: str) -> str:
    """The released notebook with corr2d raising ValueError(<corr2d_raises>, a
    Python expression), extra cells, and a cell claiming a grade_id, as JSON
    (ASCII, so a lone surrogate stays a JSON escape, as a hostile file would hold it)."""
    nb = nbformat.read(REPO_ROOT / "assignments" / A1 / f"{A1}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "corr2d":
            cell.source = f"def corr2d(x, k):\n    raise ValueError({corr2d_raises})\n"
    nb.cells += [nbformat.v4.new_code_cell(src) for src in extra_cells]
    claim = nbformat.v4.new_code_cell("pass")
    claim.metadata["nbgrader"] = {"grade_id": claimed_grade_id}
    nb.cells.append(claim)
    return json.dumps(nb, ensure_ascii=True)


CLASS = {
    "surrogate": submission(
        '"bad " + chr(0xD800) + " text"',
        ["# a lone surrogate in the source: \ud800", "print(chr(0xD800))"],
        "gid \ud800",
    ),
    "control-bytes": submission(
        f"{ANSI!r}",
        [f"print({ANSI!r})\nraise RuntimeError({ANSI!r})"],
        f"gid {ANSI}",
    ),
    "guess": submission(f"{LINE!r}", [f"raise RuntimeError({MARKER!r})"], LINE),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    course = tmp / "course"
    archive = tmp / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(CORRECT, f"correct_{A1}.ipynb")
        for name, text in CLASS.items():
            zf.writestr(f"{name}_{A1}.ipynb", text)
        zf.writestr(FAKE_MEMBER, "not a notebook")
    out = {"course": course, "rc": {}}
    for step, args in [
        ("collect", ["collect", A1, archive]),
        ("autograde", ["autograde", A1, "--workers", "2", "--cell-timeout", "10"]),
        ("feedback", ["feedback", A1]),
        ("export", ["export"]),
    ]:
        out["rc"][step] = cli.main([str(a) for a in args] + ["--course", str(course)])
    return out


STUDENTS = ["control-bytes", "correct", "guess", "surrogate"]


def folder(graded, step: str, sid: str) -> Path:
    return graded["course"] / step / sid / A1


def strings(obj):
    """Every string in a JSON-like structure, keys included."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from strings(x)


def page(graded, sid: str) -> str:
    return (folder(graded, "feedback", sid) / f"{A1}.html").read_text(encoding="utf-8")


def test_every_step_finishes_for_the_whole_class(graded):
    assert graded["rc"] == {"collect": 0, "autograde": 0, "feedback": 0, "export": 0}


@pytest.mark.parametrize("sid", STUDENTS)
def test_every_student_has_results_a_graded_notebook_and_a_page(graded, sid):
    results = json.loads((folder(graded, "autograded", sid) / "results.json").read_text())
    graded_nb = nbformat.read(folder(graded, "autograded", sid) / f"{A1}.ipynb", as_version=4)
    nbformat.validate(graded_nb)
    for text in [*strings(results), *strings(graded_nb), page(graded, sid)]:
        assert not UNPRINTABLE.search(text), text
    r = results["notebooks"][A1]
    assert (r["score"] == r["max_score"]) == (sid == "correct")


def test_the_gradebook_and_the_csv_hold_every_student(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", "default_course") as gb:
        assert sorted(s.student.id for s in gb.find_assignment(A1).submissions) == STUDENTS
    text = (graded["course"] / "exports" / "grades.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert sorted({r["student_id"] for r in rows}) == STUDENTS
    assert len(text.splitlines()) == len(rows) + 1


def test_pages_show_hostile_text_escaped_not_interpreted(graded):
    assert "bad \\ud800 text" in page(graded, "surrogate")
    assert "gid \\ud800" in page(graded, "surrogate")
    escaped = "\\x00\\x1b[2J\\x1b[32mall OK\\x1b[0m\\r\\u202e"
    assert page(graded, "control-bytes").count(escaped) >= 3  # test, cell, note


def test_a_students_guess_of_a_hidden_line_is_shown_as_written(graded):
    """No `[withheld]`: that would confirm the guess. The marker in the student's
    own error does not make their page fail either."""
    text = html.unescape(page(graded, "guess"))
    assert "[withheld]" not in text
    assert text.count(LINE) >= 2 and MARKER in text


def test_the_graded_notebook_keeps_the_students_code_escaped(graded):
    nb = nbformat.read(folder(graded, "autograded", "surrogate") / f"{A1}.ipynb", as_version=4)
    sources = "\n".join(c.source for c in nb.cells)
    assert "# a lone surrogate in the source: \\ud800" in sources
    assert 'raise ValueError("bad " + chr(0xD800) + " text")' in sources
