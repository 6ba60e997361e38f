"""grader.runner on a toy assignment (no Keras, so fast): plan, proxies, limits."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import config, runner
from grader.notebooks import build_spec, read_notebook
from grader.release import generate
from grader.sandbox import Sandbox, SandboxConfig


def nbg(cell, **meta):
    cell.metadata["nbgrader"] = {"schema_version": 3, "task": False, **meta}
    return cell


def toy_source() -> nbformat.NotebookNode:
    cells = [
        nbg(new_markdown_cell("# Toy"), grade=False, solution=False, locked=True, grade_id="hdr"),
        nbg(
            new_code_cell("import numpy as np"),
            grade=False,
            solution=False,
            locked=True,
            grade_id="setup",
        ),
        nbg(
            new_code_cell(
                "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
            ),
            grade=False,
            solution=True,
            locked=False,
            grade_id="add",
        ),
        nbg(
            new_code_cell(
                '"""Check add"""\nassert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\n'
                "for _i in range(20):\n    assert add(_i, 5) == _i + 5, f'add({_i}, 5)'\n"
                "### END HIDDEN TESTS"
            ),
            grade=True,
            solution=False,
            locked=True,
            grade_id="test_add",
            points=4,
        ),
        nbg(
            new_code_cell(
                "def halve(x):\n    ### BEGIN SOLUTION\n    if np.any(x < 0):\n"
                "        raise ValueError('negative input')\n    return x / 2\n"
                "    ### END SOLUTION"
            ),
            grade=False,
            solution=True,
            locked=False,
            grade_id="halve",
        ),
        nbg(
            new_code_cell(
                '"""Check halve on arrays and its ValueError"""\n'
                "np.testing.assert_allclose(halve(np.arange(4.0)), [0, .5, 1, 1.5])\n"
                "try:\n    halve(-np.ones(2))\nexcept ValueError:\n    pass\nelse:\n"
                "    raise AssertionError('halve must reject negative input')"
            ),
            grade=True,
            solution=False,
            locked=True,
            grade_id="test_halve",
            points=6,
        ),
    ]
    kernel = {"name": "python3", "language": "python", "display_name": "Python 3"}
    return new_notebook(cells=cells, metadata={"kernelspec": kernel})


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toyrepo")
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), root / "solutions" / "toy" / "toy.ipynb")
    cfg = config.load_config()
    paths = config.resolve_paths(cfg, repo=root)
    generated = generate(cfg, paths, "toy", root / "assignments")
    release = read_notebook(generated / "toy.ipynb")
    spec = build_spec("toy", "toy", toy_source(), release)
    return {"spec": spec, "release": release, "root": root}


def answers(release, **sources):
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell.source = sources[gid]
    return nb


ADD = "def add(a, b):\n    return a + b"
HALVE = "def halve(x):\n    if np.any(x < 0):\n        raise ValueError('no')\n    return x / 2"


def grade(toy, nb, tmp_path, name="sub", **limits):
    path = tmp_path / f"{name}.ipynb"
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    box = Sandbox(SandboxConfig(mode="auto", memory_mb=1024))
    lim = runner.Limits(**{"cell_timeout": 5, "notebook_timeout": 40, **limits})
    return runner.grade_notebook(toy["spec"], path, box, lim)


def test_spec_holds_hidden_tests_but_never_solutions(toy):
    spec = toy["spec"]
    add_cell = spec.by_id()["add"]
    assert "return a + b" not in add_cell.source and "NotImplementedError" in add_cell.source
    assert "BEGIN HIDDEN TESTS" in spec.by_id()["test_add"].source
    assert "BEGIN HIDDEN TESTS" not in spec.by_id()["test_add"].released
    assert spec.max_points == 10
    assert spec.by_id()["test_halve"].name == "Check halve on arrays and its ValueError"


def test_correct_submission_earns_every_point(toy, tmp_path):
    r = grade(toy, answers(toy["release"], add=ADD, halve=HALVE), tmp_path)
    assert r["score"] == 10, r["tests"]
    assert r["notes"] == []


def test_student_exceptions_reach_the_tests_as_builtin_types(toy, tmp_path):
    no_check = "def halve(x):\n    return x / 2"
    r = grade(toy, answers(toy["release"], add=ADD, halve=no_check), tmp_path)
    by = {t["grade_id"]: t for t in r["tests"]}
    assert by["test_add"]["passed"] and not by["test_halve"]["passed"]
    assert "must reject negative input" in by["test_halve"]["message"]


def test_hidden_tests_catch_special_casing_of_visible_checks(toy, tmp_path):
    cheat = "def add(a, b):\n    return 3"
    r = grade(toy, answers(toy["release"], add=cheat, halve=HALVE), tmp_path)
    by = {t["grade_id"]: t for t in r["tests"]}
    assert not by["test_add"]["passed"]
    assert by["test_add"]["message"] == "AssertionError: add(0, 5)"
    assert r["score"] == 6


def test_hanging_function_costs_only_its_test(toy, tmp_path):
    hang = "def add(a, b):\n    while True:\n        pass"
    r = grade(toy, answers(toy["release"], add=hang, halve=HALVE), tmp_path, cell_timeout=2)
    by = {t["grade_id"]: t for t in r["tests"]}
    assert "did not finish before this test's time limit" in by["test_add"]["message"]
    assert by["test_halve"]["passed"]
    assert r["score"] == 6 and r["restarts"] == 0


def test_notebook_time_limit_stops_grading(toy, tmp_path):
    nb = answers(toy["release"], add=ADD, halve=HALVE)
    nb.cells.insert(2, new_code_cell("import time\ntime.sleep(30)"))
    nb.cells.insert(3, new_code_cell("import time\ntime.sleep(30)"))
    r = grade(toy, nb, tmp_path, cell_timeout=3, notebook_timeout=7)
    assert r["seconds"] < 20
    statuses = [c["status"] for c in r["cells"]]
    assert statuses.count("timeout") >= 1
    assert r["score"] <= 10  # whatever ran in time; never more


def test_plan_restores_deleted_and_edited_cells_and_keeps_scratch_order(toy):
    nb = answers(toy["release"], add=ADD, halve=HALVE)
    cells = [dict(c) for c in json.loads(nbformat.writes(nb))["cells"]]
    by = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in cells}
    by["test_add"]["source"] = "pass"
    by["test_add"]["metadata"]["nbgrader"]["points"] = 100
    by["setup"]["source"] = "import numpy as np\nnp.testing.assert_allclose = print"
    cells.remove(by["test_halve"])
    cells.insert(0, {"cell_type": "code", "source": "x = 1", "metadata": {}})
    dup = copy.deepcopy(by["add"])
    dup["source"] = "y = 2"
    cells.append(dup)
    p = runner.plan(toy["spec"], cells)
    notes = "\n".join(p["notes"])
    assert "test cell 'test_add' was edited" in notes
    assert "test cell 'test_add' had its nbgrader metadata changed" in notes
    assert "read-only cell 'setup' was edited" in notes
    assert "test cell 'test_halve' was deleted" in notes
    assert "repeats the grade_id 'add'" in notes
    order = [c["id"] for c in p["cells"]]
    assert order[0] == "cell:0"  # scratch before any known cell runs first
    assert order.index("setup:setup") < order.index("answer:add") < order.index("answer:halve")
    setup = next(c for c in p["cells"] if c["id"] == "setup:setup")
    assert setup["source"] == "import numpy as np"  # the instructor's, not the student's


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "not valid notebook JSON"),
        ("[1, 2]", "not a notebook"),
        ('{"cells": []}', "no cells"),
        ('{"nbformat": 4}', "no list of cells"),
    ],
)
def test_broken_files_score_zero_with_a_reason(toy, tmp_path, content, reason):
    r = grade(toy, content, tmp_path)
    assert r["status"] == "invalid" and r["score"] == 0
    assert reason in r["notes"][0]
    assert all(reason in t["message"] for t in r["tests"])
