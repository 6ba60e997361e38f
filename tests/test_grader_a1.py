"""Assignment A1's structure (CONVENTIONS.md, "An assignment notebook")."""

from __future__ import annotations

import re

import assignment_checks as checks
import pytest

from grader.config import REPO_ROOT
from grader.notebooks import cell_role, nbgrader_meta, read_notebook
from grader.notebooks import test_name as docstring_name

A1 = "a1_convolution_from_scratch"
SOURCE = read_notebook(REPO_ROOT / "solutions" / A1 / f"{A1}.ipynb")
RELEASE = read_notebook(REPO_ROOT / "assignments" / A1 / f"{A1}.ipynb")
REQUIRED = ["conv_output_size", "zero_pad", "corr2d", "conv2d_forward", "max_pool2d", "avg_pool2d"]


def parts(nb):
    """[(heading, points in heading, [test cells])] for each '## Part X (N points)'."""
    out = []
    for cell in nb.cells:
        m = re.search(r"^## Part \w \((\d+) points\)", cell.source, flags=re.M)
        if cell.cell_type == "markdown" and m:
            out.append((cell.source.splitlines()[m.start() and 0], int(m.group(1)), []))
        elif cell_role(cell) == "test" and out:
            out[-1][2].append(cell)
    return out


def test_header_explains_grading_self_checks_and_honour_code():
    header = SOURCE.cells[0].source
    assert header.startswith("# Assignment 1: Convolution and pooling from scratch")
    for phrase in ("How it is graded (100 points)", "Self-checks", "Honour code", "NumPy only"):
        assert phrase in header


def test_points_add_up_to_each_heading_and_to_100():
    found = parts(SOURCE)
    assert len(found) == 5
    for heading, points, tests in found:
        assert sum(nbgrader_meta(c)["points"] for c in tests) == points, heading
    assert sum(p for _, p, _ in found) == 100


def test_every_test_cell_opens_with_a_docstring_and_hides_some_checks():
    tests = [c for c in SOURCE.cells if cell_role(c) == "test"]
    assert len(tests) == 9
    for c in tests:
        assert docstring_name(c.source, "") != ""
        assert "### BEGIN HIDDEN TESTS" in c.source
        assert "grading_rng(" in c.source, "hidden cases differ per student"


def test_hidden_checks_name_their_case_and_never_a_value():
    checks.assert_hidden_checks_name_their_case(A1)


def test_hidden_tests_compare_with_independent_references():
    hidden = "\n".join(c.source for c in SOURCE.cells if cell_role(c) == "test")
    for ref in (
        "signal.correlate2d",
        "keras.layers.Conv2D",
        "keras.layers.ZeroPadding2D",
        "MaxPooling2D",
        "AveragePooling2D",
    ):
        assert ref in hidden


@pytest.mark.parametrize("name", REQUIRED)
def test_student_version_has_each_function_stub(name):
    src = "\n".join(c.source for c in RELEASE.cells if cell_role(c) == "answer")
    assert f"def {name}(" in src
    assert "raise NotImplementedError()" in src


def test_student_version_has_no_outputs():
    for c in RELEASE.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
