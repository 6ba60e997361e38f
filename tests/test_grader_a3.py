"""A3 (shapes, parameters and receptive fields), graded end to end.

One module-scoped run autogrades every submission in tests/fixtures/a3/submissions
(the solution, the blank student version, one plausible bug each, and layer
descriptions that smuggle in layers the grader must refuse to build) with 2 workers
through the grader's library API, then writes their feedback; the tests below assert
the exact score of each and that nothing student-facing quotes the instructor's code.
The static tests at the end need no grading.

Part D's submissions describe Keras layers as plain data; the trusted test runner
builds them (the notebook's read-only ``build_model``), so the sandbox never needs
Keras, which the course configuration hides from every assignment.
"""

from __future__ import annotations

from pathlib import Path

import assignment_checks as checks
import pytest

from grader.config import REPO_ROOT
from grader.notebooks import cell_role, read_notebook

A3 = "a3_shapes_params_receptive_fields"
FIXTURES = Path(__file__).parent / "fixtures" / "a3"
SOURCE = REPO_ROOT / "solutions" / A3 / f"{A3}.ipynb"
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 30, 120

POINTS = {
    "test_output_size_valid": 7,
    "test_output_size_same": 8,
    "test_conv2d_params": 8,
    "test_depthwise_conv2d_params": 8,
    "test_dense_params": 7,
    "test_batchnorm_params": 7,
    "test_receptive_field_stride1": 10,
    "test_receptive_field_strided": 15,
    "test_keras_layers_small_net": 10,
    "test_keras_layers_random_specs": 20,
}
ALL = set(POINTS)
MODEL = {"test_keras_layers_small_net", "test_keras_layers_random_specs"}

# fixture -> the test cells it must fail (its score is 100 minus their points)
EXPECTED_FAILURES = {
    "correct": set(),
    "blank": ALL,
    "bias-forgotten": {"test_conv2d_params", "test_depthwise_conv2d_params", "test_dense_params"},
    "rf-without-jump": {"test_receptive_field_strided"},
    "same-everywhere": {"test_output_size_valid"} | MODEL,
    "layers-smuggle": MODEL,
}
CLASS = sorted(EXPECTED_FAILURES)


def load_results(course: Path, student: str) -> dict:
    return checks.load_results(course, A3, student)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Autograde the A3 fixture class once, then write its feedback."""
    course = tmp_path_factory.mktemp("a3class") / "course"
    return checks.grade_class(course, A3, FIXTURES / "submissions", CLASS,
                              cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT)


@pytest.mark.grading
def test_autograde_grades_every_submission(graded):
    checks.assert_class_graded(graded, CLASS)


@pytest.mark.grading
@pytest.mark.parametrize("name", CLASS)
def test_fixture_scores_exactly(graded, name):
    checks.assert_score(graded, A3, name, EXPECTED_FAILURES[name], POINTS)


@pytest.mark.grading
def test_grading_stays_within_its_limits(graded):
    for name in CLASS:
        r = load_results(graded["course"], name)
        assert r["seconds"] <= NOTEBOOK_TIMEOUT, (name, r["seconds"])
        assert all(c["status"] != "timeout" for c in r["cells"]), name


@pytest.mark.grading
def test_smuggled_layers_are_refused_not_built(graded):
    r = load_results(graded["course"], "layers-smuggle")
    for t in r["tests"]:
        if t["grade_id"] in MODEL:
            assert "ValueError: layer 0: 'TFSMLayer' is not one of" in t["message"], t["message"]
    assert not Path("/tmp/pwned").exists()


@pytest.mark.grading
def test_feedback_names_the_failed_check(graded):
    html = (graded["course"] / "feedback" / "rf-without-jump" / A3 / f"{A3}.html").read_text()
    assert "Score: 85 / 100" in html
    assert "Check receptive_field for stacks with strides" in html
    assert "the jump is the product of the strides" in html


@pytest.mark.grading
def test_feedback_never_contains_test_or_solution_code(graded):
    checks.assert_feedback_clean(graded, A3, CLASS, 'assert output_size(')


# --------------------------------------------------------------------------- static
def test_student_version_is_current_and_holds_no_instructor_code():
    checks.assert_student_version_current_and_clean(A3)


def test_header_explains_grading_self_checks_and_honour_code():
    checks.assert_header(A3, "# Assignment 3: Shapes, parameters and receptive fields")


def test_points_add_up_to_each_heading_and_to_100():
    checks.assert_points(A3, POINTS)


def test_every_test_cell_opens_with_a_docstring_and_hides_seeded_checks():
    checks.assert_test_cells_documented_and_seeded(A3)


def test_hidden_tests_compare_with_independent_references():
    hidden = "\n".join(c.source for c in read_notebook(SOURCE).cells if cell_role(c) == "test")
    for ref in ("compute_output_shape", "count_params()", "tf.nn.conv1d", "keras.Sequential"):
        assert ref in hidden


@pytest.mark.parametrize(
    "name",
    [
        "output_size",
        "conv2d_params",
        "depthwise_conv2d_params",
        "dense_params",
        "batchnorm_params",
        "receptive_field",
        "keras_layers",
    ],
)
def test_student_version_has_each_function(name):
    release_nb = read_notebook(REPO_ROOT / "assignments" / A3 / f"{A3}.ipynb")
    src = "\n".join(c.source for c in release_nb.cells if cell_role(c) == "answer")
    assert f"def {name}(" in src
    assert "raise NotImplementedError()" in src


def test_fixtures_are_what_make_fixtures_writes():
    checks.assert_fixtures_current(FIXTURES, CLASS)
