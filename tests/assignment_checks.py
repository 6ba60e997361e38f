"""Checks shared by the per-assignment grading tests (A2, A3): grade a fixture
class once, read its results, and the static checks every assignment passes."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
from pathlib import Path

import nbformat

from grader.autograde import autograde
from grader.config import REPO_ROOT, load_config, resolve_paths
from grader.feedback import feedback
from grader.leaks import course_secrets, find_in_text, iter_files, scan_files, text_of
from grader.notebooks import cell_role, nbgrader_meta, read_notebook
from grader.notebooks import test_name as docstring_name
from grader.release import release


def source_notebook(assignment: str) -> Path:
    return REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb"


# the course secret the fixture classes are graded under (reproducible hidden cases);
# any other secret must give the same scores (see grade_class)
FIXED_SECRET = "0" * 63 + "1"


def write_secret(course: Path, secret: str = FIXED_SECRET) -> None:
    course.mkdir(parents=True, exist_ok=True)
    path = course / ".grader_secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)


def grade_class(
    course: Path, assignment: str, submissions: Path, names, secret: str = FIXED_SECRET, **limits
) -> dict:
    """Autograde every named fixture submission with 2 workers under the course
    ``secret``, then write feedback."""
    write_secret(course, secret)
    for name in names:
        folder = course / "submitted" / name / assignment
        folder.mkdir(parents=True)
        shutil.copy(submissions / f"{name}.ipynb", folder / f"{assignment}.ipynb")
    cfg = load_config()
    paths = resolve_paths(cfg, course)
    report = autograde(cfg, paths, assignment, workers=2, **limits)
    return {"course": course, "report": report, "feedback": feedback(paths, assignment)}


def load_results(course: Path, assignment: str, student: str) -> dict:
    path = course / "autograded" / student / assignment / "results.json"
    return json.loads(path.read_text())["notebooks"][assignment]


def assert_student_version_current_and_clean(assignment: str) -> None:
    cfg = load_config()
    release(cfg, resolve_paths(cfg), [assignment], check=True)  # raises if stale or leaking
    secrets = course_secrets(REPO_ROOT / "solutions")  # every assignment's
    assert scan_files(iter_files([REPO_ROOT / "assignments" / assignment]), secrets) == []


def parts(nb):
    """[(heading, points in heading, [test cells])] for each '## Part X (N points)'."""
    out = []
    for cell in nb.cells:
        m = re.search(r"^## Part \w \((\d+) points\)", cell.source, flags=re.M)
        if cell.cell_type == "markdown" and m:
            out.append((m.group(0), int(m.group(1)), []))
        elif cell_role(cell) == "test" and out:
            out[-1][2].append(cell)
    return out


def assert_header(assignment: str, title: str) -> None:
    header = read_notebook(source_notebook(assignment)).cells[0].source
    assert header.startswith(title)
    for phrase in ("How it is graded (100 points)", "Self-checks", "Honour code", "Rules"):
        assert phrase in header


def assert_points(assignment: str, points: dict[str, int]) -> None:
    nb = read_notebook(source_notebook(assignment))
    tests = [c for c in nb.cells if cell_role(c) == "test"]
    assert {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in tests} == points
    found = parts(nb)
    for heading, total, cells in found:
        assert sum(nbgrader_meta(c)["points"] for c in cells) == total, heading
    assert sum(p for _, p, _ in found) == 100 == sum(points.values())


def assert_test_cells_documented_and_seeded(assignment: str) -> None:
    for c in read_notebook(source_notebook(assignment)).cells:
        if cell_role(c) == "test":
            gid = nbgrader_meta(c)["grade_id"]
            assert docstring_name(c.source, "") != "", gid
            hidden = c.source.split("### BEGIN HIDDEN TESTS", 1)[1]
            assert "grading_rng(" in hidden, gid  # per-student cases (grader/cases.py)
            assert "default_rng(" not in hidden, gid


# what a hidden assertion's message may show: the case (shapes, strides, paddings: the
# inputs), never an expected or returned value (issue 12, grader interface I2)
CASE_NAMES = {"_case", "_i", "_spec"}


def assert_hidden_checks_name_their_case(assignment: str) -> None:
    """Every hidden part sets ``_case`` before its first check, no hidden message shows a
    value other than the case, and no hidden check is an ``np.testing`` assertion (whose
    message prints both arrays)."""
    for c in read_notebook(source_notebook(assignment)).cells:
        if cell_role(c) != "test":
            continue
        gid = nbgrader_meta(c)["grade_id"]
        hidden = c.source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS")[0]
        assert "np.testing" not in hidden, gid
        nodes = list(ast.walk(ast.parse(hidden)))
        asserts = [n for n in nodes if isinstance(n, ast.Assert)]
        cases = [
            n for n in nodes
            if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "_case" for t in n.targets)
        ]
        assert asserts and cases, f"{gid}: no hidden check, or no _case"
        assert min(n.lineno for n in cases) < min(n.lineno for n in asserts), gid
        for a in asserts:
            names = {n.id for n in ast.walk(a.msg) if isinstance(n, ast.Name)} if a.msg else set()
            names = {n for n in names if n.startswith("_")}
            assert names <= CASE_NAMES, f"{gid}, line {a.lineno}: the message shows {names}"


def scores_in_process(assignment: str, fixture: Path, secrets) -> list[set[str]]:
    """The test cells a (trusted) fixture submission fails under each course secret,
    graded in this process: its answer cells run in the behavioural check's harness
    (grader.behaviour), not in the sandbox. Fast enough to try several secrets."""
    from grader.behaviour import Harness, _specs

    spec = _specs(resolve_paths(load_config()), assignment)[0].to_dict()
    answers = {
        nbgrader_meta(c)["grade_id"]: c.source
        for c in read_notebook(fixture).cells
        if cell_role(c) == "answer"
    }
    failed = []
    for secret in secrets:
        h = Harness(spec, secret=secret)
        for gid, source in answers.items():
            exec(compile(source, f"<{fixture.stem} {gid}>", "exec"), h.ns)  # noqa: S102
        passed = set(h.run_tests())
        failed.append({c.grade_id for c in h.tests} - passed)
    return failed


def assert_fixtures_current(fixtures: Path, names) -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", fixtures / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.fixtures()
    assert sorted(made) == sorted(names)
    for name, nb in made.items():
        on_disk = nbformat.read(fixtures / "submissions" / f"{name}.ipynb", as_version=4)
        assert nbformat.writes(nb) == nbformat.writes(on_disk), (
            f"{name}.ipynb is stale: run {fixtures / 'make_fixtures.py'}"
        )


def assert_class_graded(graded: dict, names) -> None:
    """Every fixture was graded, in order, and none ended in a grader error."""
    assert [o.student for o in graded["report"].outcomes] == list(names)
    assert graded["report"].errors == []


def assert_score(graded: dict, assignment: str, student: str, failures: set, points: dict):
    """The student failed exactly ``failures`` and scored 100 minus their points."""
    r = load_results(graded["course"], assignment, student)
    failed = {t["grade_id"] for t in r["tests"] if not t["passed"]}
    assert failed == failures, [
        (t["grade_id"], t["message"][:300]) for t in r["tests"] if not t["passed"]
    ]
    assert r["score"] == 100 - sum(points[g] for g in failures)
    assert r["max_score"] == 100


def feedback_leaks(course: Path, assignment: str, secrets: set[str]) -> list:
    """Secret lines and markers on each feedback page that its student's own
    submission does not hold. A page may quote the student's own code (a
    traceback), which can match a solution line; that tells them nothing, and
    redacting it would confirm the match (grader/feedback.py)."""
    leaks = []
    for page in iter_files([course / "feedback"]):
        sid, notebook = page.parts[-3], page.stem
        submitted = course / "submitted" / sid / assignment / f"{notebook}.ipynb"
        own = {hit for _, hit in find_in_text(text_of(submitted), secrets)}
        found = scan_files([page], secrets, markers=True)
        leaks += [leak for leak in found if leak.text not in own]
    return leaks


def assert_feedback_clean(graded: dict, assignment: str, names, visible_check: str) -> None:
    """Feedback for every student, with no hidden test, solution (but what they
    wrote themselves), or even visible check."""
    files = iter_files([graded["course"] / "feedback"])
    assert len(files) == len(names) == len(graded["feedback"])
    secrets = course_secrets(source_notebook(assignment).parent)
    assert feedback_leaks(graded["course"], assignment, secrets) == []
    for f in files:
        assert visible_check not in f.read_text()
