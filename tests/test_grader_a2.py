"""A2 (backpropagation through convolution and pooling), graded end to end.

One module-scoped run autogrades every submission in tests/fixtures/a2/submissions
(the solution, the blank student version, one plausible bug each) with 2 workers
through the grader's library API, then writes their feedback; the tests below
assert the exact score of each and that nothing student-facing quotes the
instructor's code. The static tests at the end need no grading.
"""

from __future__ import annotations

from pathlib import Path

import assignment_checks as checks
import pytest

from grader.config import REPO_ROOT
from grader.notebooks import cell_role, read_notebook

A2 = "a2_backprop_conv_pooling"
FIXTURES = Path(__file__).parent / "fixtures" / "a2"
SOURCE = REPO_ROOT / "solutions" / A2 / f"{A2}.ipynb"
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 10, 60

POINTS = {
    "test_numerical_gradient_basics": 5,
    "test_numerical_gradient_second_order": 10,
    "test_conv2d_backward_bias": 5,
    "test_conv2d_backward_weights": 10,
    "test_conv2d_backward_input": 10,
    "test_conv2d_backward_input_stride": 10,
    "test_conv2d_backward_input_padding": 10,
    "test_max_pool2d_backward": 10,
    "test_max_pool2d_backward_overlap": 5,
    "test_max_pool2d_backward_ties": 10,
    "test_avg_pool2d_backward": 8,
    "test_avg_pool2d_backward_overlap": 7,
}
ALL = set(POINTS)
MAX_POOL = {
    "test_max_pool2d_backward",
    "test_max_pool2d_backward_overlap",
    "test_max_pool2d_backward_ties",
}

# fixture -> the test cells it must fail (its score is 100 minus their points)
EXPECTED_FAILURES = {
    "correct": set(),
    "blank": ALL,
    "conv-padding-wrong-crop": {"test_conv2d_backward_input_padding"},
    "conv-weights-transposed": {"test_conv2d_backward_weights"},
    "maxpool-whole-window": MAX_POOL,
    "checker-one-sided": {"test_numerical_gradient_second_order"},
}
CLASS = sorted(EXPECTED_FAILURES)


def load_results(course: Path, student: str) -> dict:
    return checks.load_results(course, A2, student)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Autograde the A2 fixture class once, then write its feedback."""
    course = tmp_path_factory.mktemp("a2class") / "course"
    limits = {"cell_timeout": CELL_TIMEOUT, "notebook_timeout": NOTEBOOK_TIMEOUT, "memory_mb": 1024}
    return checks.grade_class(course, A2, FIXTURES / "submissions", CLASS, **limits)


@pytest.mark.grading
def test_autograde_grades_every_submission(graded):
    checks.assert_class_graded(graded, CLASS)


@pytest.mark.grading
@pytest.mark.parametrize("name", CLASS)
def test_fixture_scores_exactly(graded, name):
    checks.assert_score(graded, A2, name, EXPECTED_FAILURES[name], POINTS)


@pytest.mark.grading
def test_grading_stays_within_its_limits(graded):
    for name in CLASS:
        r = load_results(graded["course"], name)
        assert r["seconds"] <= NOTEBOOK_TIMEOUT, (name, r["seconds"])
        for t in r["tests"]:
            assert t["seconds"] <= CELL_TIMEOUT, (name, t["grade_id"], t["seconds"])


@pytest.mark.grading
def test_feedback_names_the_failed_check(graded):
    html = (graded["course"] / "feedback" / "checker-one-sided" / A2 / f"{A2}.html").read_text()
    assert "Score: 90 / 100" in html
    assert "Check that numerical_gradient is second-order accurate" in html
    assert "a one-sided difference only to about eps" in html


@pytest.mark.grading
def test_feedback_never_contains_test_or_solution_code(graded):
    checks.assert_feedback_clean(graded, A2, CLASS, 'np.testing.assert_allclose(')


# --------------------------------------------------------------------------- static
def test_student_version_is_current_and_holds_no_instructor_code():
    checks.assert_student_version_current_and_clean(A2)


def test_header_explains_grading_self_checks_and_honour_code():
    checks.assert_header(A2, "# Assignment 2: Backpropagation through convolution and pooling")


def test_points_add_up_to_each_heading_and_to_100():
    checks.assert_points(A2, POINTS)


def test_every_test_cell_opens_with_a_docstring_and_hides_seeded_checks():
    checks.assert_test_cells_documented_and_seeded(A2)


def test_hidden_tests_compare_with_independent_references():
    hidden = "\n".join(c.source for c in read_notebook(SOURCE).cells if cell_role(c) == "test")
    for ref in (
        "tf.GradientTape",
        "keras.layers.Conv2D",
        "keras.layers.ZeroPadding2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "conv2d_forward(_up",
    ):
        assert ref in hidden


@pytest.mark.parametrize(
    "name",
    [
        "numerical_gradient",
        "check_function_gradient",
        "conv2d_backward",
        "max_pool2d_backward",
        "avg_pool2d_backward",
    ],
)
def test_student_version_has_each_function(name):
    release_nb = read_notebook(REPO_ROOT / "assignments" / A2 / f"{A2}.ipynb")
    src = "\n".join(c.source for c in release_nb.cells if cell_role(c) == "answer")
    assert f"def {name}(" in src
    assert "raise NotImplementedError()" in src


def test_fixtures_are_what_make_fixtures_writes():
    checks.assert_fixtures_current(FIXTURES, CLASS)
