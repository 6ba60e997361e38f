"""grader.runner on toy assignments (no Keras, so fast): plan, proxies, limits,
per-student hidden cases, what failed hidden checks say, caps, functions passed
to the submission, and autograde's handling of a runner that a submission stops."""

from __future__ import annotations

import copy
import json
import re
import stat

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import caps, config
from grader.autograde import autograde
from grader.cases import SECRET_FILE, course_secret, grading_rng_for
from grader.errors import ConfigError
from grader.notebooks import build_spec, read_notebook
from grader.plan import plan
from grader.release import generate
from grader.runner import grade_notebook
from grader.sandbox import Sandbox, SandboxConfig
from grader.session import Limits

SECRET = "0123456789abcdef" * 4


def nbg(cell, **meta):
    cell.metadata["nbgrader"] = {"schema_version": 3, "task": False, **meta}
    return cell


def setup_cell(gid: str, source: str):
    return nbg(new_code_cell(source), grade=False, solution=False, locked=True, grade_id=gid)


def answer_cell(gid: str, source: str):
    return nbg(new_code_cell(source), grade=False, solution=True, locked=False, grade_id=gid)


def grade_cell(gid: str, points: int, source: str):
    return nbg(
        new_code_cell(source), grade=True, solution=False, locked=True, grade_id=gid, points=points
    )


def notebook(cells) -> nbformat.NotebookNode:
    kernel = {"name": "python3", "language": "python", "display_name": "Python 3"}
    return new_notebook(cells=cells, metadata={"kernelspec": kernel})


def toy_source() -> nbformat.NotebookNode:
    return notebook(
        [
            nbg(
                new_markdown_cell("# Toy"), grade=False, solution=False, locked=True, grade_id="hdr"
            ),
            setup_cell(
                "setup",
                "import numpy as np\n\n"
                "CHECK_FUNCTIONS = {'quadratic': lambda x, a: 0.5 * a * float(np.sum(x * x))}",
            ),
            answer_cell(
                "echo", "def echo(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"
            ),
            grade_cell(
                "test_echo",
                2,
                '"""Check echo"""\nassert echo(1) == 1\n### BEGIN HIDDEN TESTS\n'
                "_x = int(grading_rng(7).integers(0, 10**12))\n"
                '_case = f"x = {_x}"\n'
                "assert echo(_x) == _x, f'echo returned {echo(_x)}, expected {_x}'\n"
                "### END HIDDEN TESTS",
            ),
            answer_cell(
                "add",
                "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
            ),
            grade_cell(
                "test_add",
                4,
                '"""Check add"""\nassert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\n'
                "for _i in range(20):\n    assert add(_i, 5) == _i + 5, f'add({_i}, 5)'\n"
                "### END HIDDEN TESTS",
            ),
            answer_cell(
                "halve",
                "def halve(x):\n    ### BEGIN SOLUTION\n    if np.any(x < 0):\n"
                "        raise ValueError('negative input')\n    return x / 2\n"
                "    ### END SOLUTION",
            ),
            grade_cell(
                "test_halve",
                6,
                '"""Check halve on arrays and its ValueError"""\n'
                "np.testing.assert_allclose(halve(np.arange(4.0)), [0, .5, 1, 1.5])\n"
                "try:\n    halve(-np.ones(2))\nexcept ValueError:\n    pass\nelse:\n"
                "    raise AssertionError('halve must reject negative input')",
            ),
            answer_cell(
                "numerical_gradient",
                "def numerical_gradient(f, x, eps=1e-5):\n    ### BEGIN SOLUTION\n"
                "    x = np.array(x, dtype=np.float64)\n    grad = np.empty_like(x)\n"
                "    for i in np.ndindex(x.shape):\n        saved = x[i]\n"
                "        x[i] = saved + eps\n        up = f(x)\n"
                "        x[i] = saved - eps\n        down = f(x)\n"
                "        x[i] = saved\n        grad[i] = (up - down) / (2 * eps)\n"
                "    return grad\n    ### END SOLUTION",
            ),
            grade_cell(
                "test_gradient",
                5,
                '"""Check numerical_gradient on a quadratic"""\n'
                "_x = np.array([1.0, -2.0])\n"
                "_g = numerical_gradient(lambda v: CHECK_FUNCTIONS['quadratic'](v, 2.0), _x)\n"
                "np.testing.assert_allclose(_g, 2.0 * _x, rtol=1e-4)\n"
                "### BEGIN HIDDEN TESTS\n"
                "_rng = grading_rng(11)\n"
                "for _ in range(3):\n"
                "    _a = float(_rng.uniform(0.5, 2.0))\n"
                "    _x = _rng.normal(size=int(_rng.integers(1, 5)))\n"
                '    _case = f"x of shape {_x.shape}"\n'
                "    _g = numerical_gradient(lambda v: CHECK_FUNCTIONS['quadratic'](v, _a), _x)\n"
                "    np.testing.assert_allclose(_g, _a * _x, rtol=1e-4)\n"
                "### END HIDDEN TESTS",
            ),
            answer_cell(
                "layer_count",
                "def layer_count():\n    ### BEGIN SOLUTION\n    return 3\n    ### END SOLUTION",
            ),
            grade_cell(
                "test_layers",
                3,
                '"""Check layer_count by building that many layers"""\n'
                "_built = 0\nfor _ in range(int(layer_count())):\n    _built += 1\n"
                "assert _built == 3",
            ),
        ]
    )


def release_toy(tmp_path_factory, name: str, source, cfg, course=None):
    """A repository holding one toy assignment (one notebook): its paths and release."""
    root = tmp_path_factory.mktemp(f"{name}repo")
    (root / "solutions" / name).mkdir(parents=True)
    nbformat.write(source, root / "solutions" / name / f"{name}.ipynb")
    paths = config.resolve_paths(cfg, course, repo=root)
    generated = generate(cfg, paths, name, root / "assignments")
    return paths, read_notebook(generated / f"{name}.ipynb")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    _, release = release_toy(tmp_path_factory, "toy", toy_source(), config.load_config())
    spec = build_spec("toy", "toy", toy_source(), release)
    return {"spec": spec, "release": release}


def answers(release, **sources):
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell.source = sources[gid]
    return nb


ECHO = "def echo(x):\n    return x"
ADD = "def add(a, b):\n    return a + b"
HALVE = "def halve(x):\n    if np.any(x < 0):\n        raise ValueError('no')\n    return x / 2"
GRADIENT = (
    "def numerical_gradient(f, x, eps=1e-5):\n"
    "    x = np.array(x, dtype=np.float64)\n    grad = np.zeros_like(x)\n"
    "    for i in np.ndindex(x.shape):\n"
    "        up, down = x.copy(), x.copy()\n        up[i] += eps\n        down[i] -= eps\n"
    "        grad[i] = (f(up) - f(down)) / (2 * eps)\n    return grad"
)
LAYERS = "def layer_count():\n    return 3"
CORRECT = {
    "echo": ECHO,
    "add": ADD,
    "halve": HALVE,
    "numerical_gradient": GRADIENT,
    "layer_count": LAYERS,
}


def correct(release, **changes):
    return answers(release, **{**CORRECT, **changes})


def grade(toy, nb, tmp_path, name="sub", student="s001", **limits):
    path = tmp_path / f"{name}.ipynb"
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    box = Sandbox(SandboxConfig(mode="auto", memory_mb=1024))
    lim = Limits(**{"cell_timeout": 5, "notebook_timeout": 40, "trusted_timeout": 20, **limits})
    rng = grading_rng_for(SECRET, "toy", student)
    return grade_notebook(toy["spec"], path, box, lim, rng)


def by_id(result) -> dict:
    return {t["grade_id"]: t for t in result["tests"]}


def test_spec_holds_hidden_tests_but_never_solutions(toy):
    spec = toy["spec"]
    add_cell = spec.by_id()["add"]
    assert "return a + b" not in add_cell.source and "NotImplementedError" in add_cell.source
    assert "BEGIN HIDDEN TESTS" in spec.by_id()["test_add"].source
    assert "BEGIN HIDDEN TESTS" not in spec.by_id()["test_add"].released
    assert spec.max_points == 20
    assert spec.by_id()["test_halve"].name == "Check halve on arrays and its ValueError"


def test_correct_submission_earns_every_point(toy, tmp_path):
    r = grade(toy, correct(toy["release"]), tmp_path)
    assert r["score"] == 20, r["tests"]
    assert r["notes"] == []


def test_student_exceptions_reach_the_tests_as_builtin_types(toy, tmp_path):
    no_check = "def halve(x):\n    return x / 2"
    r = grade(toy, correct(toy["release"], halve=no_check), tmp_path)
    by = by_id(r)
    assert by["test_add"]["passed"] and not by["test_halve"]["passed"]
    assert "must reject negative input" in by["test_halve"]["message"]


def test_hanging_function_costs_only_its_test(toy, tmp_path):
    hang = "def add(a, b):\n    while True:\n        pass"
    r = grade(toy, correct(toy["release"], add=hang), tmp_path, cell_timeout=2)
    by = by_id(r)
    assert "did not finish before this test's time limit" in by["test_add"]["message"]
    assert by["test_halve"]["passed"]
    assert r["score"] == 16 and r["restarts"] == 0


def test_notebook_time_limit_stops_grading(toy, tmp_path):
    nb = correct(toy["release"])
    nb.cells.insert(2, new_code_cell("import time\ntime.sleep(30)"))
    nb.cells.insert(3, new_code_cell("import time\ntime.sleep(30)"))
    r = grade(toy, nb, tmp_path, cell_timeout=3, notebook_timeout=7)
    assert r["seconds"] < 20
    statuses = [c["status"] for c in r["cells"]]
    assert statuses.count("timeout") >= 1
    assert r["score"] <= 20  # whatever ran in time; never more


def test_plan_restores_deleted_and_edited_cells_and_keeps_scratch_order(toy):
    nb = correct(toy["release"])
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
    p = plan(toy["spec"], cells)
    notes = "\n".join(p.notes.as_list())
    assert "test cell 'test_add' was edited" in notes
    assert "test cell 'test_add' had its nbgrader metadata changed" in notes
    assert "read-only cell 'setup' was edited" in notes
    assert "test cell 'test_halve' was deleted" in notes
    assert "repeats the grade_id 'add'" in notes
    order = [c["id"] for c in p.cells]
    assert order[0] == "cell:0"  # scratch before any known cell runs first
    assert order.index("setup:setup") < order.index("answer:add") < order.index("answer:halve")
    setup = next(c for c in p.cells if c["id"] == "setup:setup")
    assert setup["source"].startswith("import numpy as np\n\nCHECK_FUNCTIONS")  # the original


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


# ------------------------------------------------------------------ per-student hidden cases
WRONG_ECHO = "def echo(x):\n    return x if x < 10 else x + 1"


def hidden_case(result) -> str:
    message = by_id(result)["test_echo"]["message"]
    m = re.fullmatch(r"a hidden check failed \(AssertionError\) on the case: x = (\d+)", message)
    assert m, message
    return m.group(1)


def test_hidden_cases_are_the_same_on_regrading_and_differ_between_students(toy, tmp_path):
    nb = correct(toy["release"], echo=WRONG_ECHO)
    first = hidden_case(grade(toy, nb, tmp_path, student="s001"))
    again = hidden_case(grade(toy, nb, tmp_path, student="s001"))
    other = hidden_case(grade(toy, nb, tmp_path, student="s002"))
    assert first == again
    assert first != other


def test_grading_rng_is_seeded_from_the_secret_the_assignment_student_and_tag():
    def draw(*key, tag=1):
        return grading_rng_for(*key)(tag).integers(0, 2**62, size=4).tolist()

    base = draw(SECRET, "a1", "s001")
    assert draw(SECRET, "a1", "s001") == base
    assert draw("f" * 64, "a1", "s001") != base
    assert draw(SECRET, "a2", "s001") != base
    assert draw(SECRET, "a1", "s002") != base
    assert draw(SECRET, "a1", "s001", tag=2) != base
    with pytest.raises(TypeError, match="int tag"):
        grading_rng_for(SECRET, "a1", "s001")("1001")


def test_course_secret_is_made_once_private_and_kept(tmp_path):
    secret = course_secret(tmp_path)
    path = tmp_path / SECRET_FILE
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert course_secret(tmp_path) == secret
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temporary file left
    path.write_text("not a secret\n")
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        course_secret(tmp_path)


# ------------------------------------------------------------------ failed hidden checks
def test_a_failed_hidden_check_names_its_case_not_its_values(toy, tmp_path):
    r = grade(toy, correct(toy["release"], echo=WRONG_ECHO), tmp_path)
    t = by_id(r)["test_echo"]
    x = hidden_case(r)
    assert t["hidden"] is True
    assert "expected" not in t["message"] and "returned" not in t["message"]
    assert f"expected {x}" in t["detail"]  # for the instructor, in results.json


@pytest.mark.parametrize(
    "raise_it, shown",
    [
        ("raise ValueError(f'got {x}')", "ValueError"),
        # the name of a class it makes is the submission's text too
        ("raise type(f'Got{x}', (Exception,), {})()", "an exception of its own class"),
    ],
)
def test_a_students_exception_in_a_hidden_check_shows_its_type_not_its_text(
    toy, tmp_path, raise_it, shown
):
    echoing = f"def echo(x):\n    if x == 1:\n        return 1\n    {raise_it}"
    r = grade(toy, correct(toy["release"], echo=echoing), tmp_path)
    t = by_id(r)["test_echo"]
    expected = rf"a hidden check failed: echo raised {shown} on the case: x = \d+"
    assert re.fullmatch(expected, t["message"]), t["message"]
    assert "got" not in t["message"].lower()


def test_the_case_is_reset_before_each_test_cell(toy, tmp_path):
    # test_echo names a case and fails; test_add's hidden loop names none
    cheat = "def add(a, b):\n    return 3"
    r = grade(toy, correct(toy["release"], echo=WRONG_ECHO, add=cheat), tmp_path)
    t = by_id(r)["test_add"]
    assert t["message"] == "a hidden check failed (AssertionError)"
    assert t["detail"] == "AssertionError: add(0, 5)"
    assert r["score"] == 20 - 2 - 4


def test_visible_failures_keep_their_message(toy, tmp_path):
    r = grade(toy, correct(toy["release"], echo="def echo(x):\n    return 2"), tmp_path)
    t = by_id(r)["test_echo"]
    assert t["hidden"] is False and t["message"] == "AssertionError" and "detail" not in t


# ------------------------------------------------------------------ caps per submission
def test_a_flood_of_cells_is_capped_with_a_note(toy, tmp_path):
    nb = correct(toy["release"])
    noisy = "print('x' * 5000)\nraise ValueError('y' * 3000)"
    nb.cells += [new_code_cell(noisy) for _ in range(caps.MAX_OWN_CELLS + 200)]
    test_add = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add"
    )
    for i in range(500):
        nb.cells.append(copy.deepcopy(test_add))
        nb.cells[-1].id = f"copy-{i}"
    r = grade(toy, nb, tmp_path, notebook_timeout=120)
    own = [c for c in r["cells"] if c["id"].startswith("cell:")]
    assert len(own) == caps.MAX_OWN_CELLS
    notes = "\n".join(r["notes"])
    assert f"has {caps.MAX_OWN_CELLS + 200} code cells of your own; only the first" in notes
    assert (
        "500 more notes" not in notes and "460 more notes about single cells were dropped" in notes
    )
    assert "were cut after 100,000 characters in all" in notes
    assert len(r["notes"]) <= caps.MAX_NOTES + 3
    assert len(json.dumps(r)) < 400_000
    assert r["score"] == 20


# ------------------------------------------------------- functions passed to the submission
def test_a_function_passed_by_a_test_is_called_back_in_the_runner(toy, tmp_path):
    r = grade(toy, correct(toy["release"]), tmp_path)
    assert by_id(r)["test_gradient"]["passed"], by_id(r)["test_gradient"]


SNOOPING_GRADIENT = """
def numerical_gradient(f, x, eps=1e-5):
    # the A2 exploit, one step further: read the curvature `a` from f instead of
    # computing a numerical gradient (f's closure holds it, if f is the real function)
    def floats(obj, depth=0):
        if isinstance(obj, float):
            yield obj
        if depth < 4:
            for cell in getattr(obj, '__closure__', None) or ():
                try:
                    yield from floats(cell.cell_contents, depth + 1)
                except ValueError:
                    pass
    found = list(floats(f))
    a = found[-1] if found else 0.0
    return a * np.asarray(x, dtype=np.float64)
"""


def test_the_submission_sees_a_functions_values_never_its_code(toy, tmp_path):
    r = grade(toy, correct(toy["release"], numerical_gradient=SNOOPING_GRADIENT), tmp_path)
    t = by_id(r)["test_gradient"]
    assert not t["passed"] and r["score"] == 15


def test_later_cells_cannot_change_the_function_a_test_passes(toy, tmp_path):
    # a later cell replaces the read-only helpers that the test builds its function from
    # (in the sandbox); the function that runs is the runner's, so an honest gradient of
    # the test's quadratic passes
    nb = correct(toy["release"], numerical_gradient=SNOOPING_GRADIENT)
    nb.cells.append(new_code_cell("CHECK_FUNCTIONS = {'quadratic': lambda x, a: 0.0}\n" + GRADIENT))
    r = grade(toy, nb, tmp_path)
    assert r["cells"][-1]["id"].startswith("cell:") and r["cells"][-1]["status"] == "ok"
    assert by_id(r)["test_gradient"]["passed"], by_id(r)["test_gradient"]


# ------------------------------------------------------------------ the trusted side bounded
def test_the_instructors_code_runs_under_a_wall_clock_limit(toy, tmp_path):
    huge = "def layer_count():\n    return 10**12"
    r = grade(toy, correct(toy["release"], layer_count=huge), tmp_path, trusted_timeout=2)
    t = by_id(r)["test_layers"]
    assert not t["passed"] and "ran past their time limit (2 s)" in t["message"]
    assert r["overran"] is True
    assert r["score"] == 17


def test_the_submissions_time_does_not_count_against_the_instructors(toy, tmp_path):
    slow = "def layer_count():\n    import time\n    time.sleep(2.5)\n    return 3"
    r = grade(toy, correct(toy["release"], layer_count=slow), tmp_path, trusted_timeout=1)
    assert by_id(r)["test_layers"]["passed"], by_id(r)["test_layers"]
    assert r["overran"] is False


# ------------------------------------------------------------------ autograde: a runner stopped
def toy2_source() -> nbformat.NotebookNode:
    return notebook(
        [
            setup_cell("setup", "import numpy as np"),
            answer_cell(
                "answer",
                "def answer(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
            ),
            grade_cell(
                "test_first",
                2,
                '"""Check answer on its input"""\nassert answer(1) == 1\n### BEGIN HIDDEN TESTS\n'
                "_x = int(grading_rng(5).integers(10, 10**12))\n"
                '_case = f"x = {_x}"\nassert answer(_x) == _x\n### END HIDDEN TESTS',
            ),
            grade_cell(
                "test_second",
                3,
                '"""Check answer on a value that stops the runner"""\n'
                "import os\nimport signal\n\n"
                "if answer(2) == 666:  # stands for the runner's memory limit, say\n"
                "    os.kill(os.getpid(), signal.SIGKILL)\nassert answer(2) == 2",
            ),
            grade_cell("test_third", 5, '"""Check answer once more"""\nassert answer(3) == 3'),
        ]
    )


TOY2_ANSWERS = {
    "good": "def answer(x):\n    return x",
    "wrong1": "def answer(x):\n    return x if x < 10 else x + 1",
    "wrong2": "def answer(x):\n    return x if x < 10 else x + 1",
    "killer": "def answer(x):\n    return 666 if x == 2 else x",
}


@pytest.fixture(scope="module")
def toy2(tmp_path_factory):
    cfg = config.load_config()
    cfg.GraderSettings.warm_imports = ["numpy"]  # no Keras: fast runners
    course = tmp_path_factory.mktemp("toy2course")
    paths, release = release_toy(tmp_path_factory, "toy2", toy2_source(), cfg, course)

    def submit(student, answer):
        folder = course / "submitted" / student / "toy2"
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(answers(release, answer=answer), folder / "toy2.ipynb")

    def run(*students):
        return autograde(
            cfg,
            paths,
            "toy2",
            students=list(students) or None,
            workers=1,
            cell_timeout=5,
            notebook_timeout=30,
        )

    def results(student):
        path = course / "autograded" / student / "toy2" / "results.json"
        return json.loads(path.read_text())["notebooks"]["toy2"]

    def scores():
        from nbgrader.api import Gradebook

        with Gradebook(paths.db_url, "default_course") as gb:
            return {s.student.id: s.score for s in gb.find_assignment("toy2").submissions}

    for student, answer in TOY2_ANSWERS.items():
        submit(student, TOY2_ANSWERS["good"] if student == "killer" else answer)
    first = run()
    return {
        "course": course,
        "submit": submit,
        "run": run,
        "results": results,
        "scores": scores,
        "first": first,
    }


def test_autograde_makes_the_course_secret_and_seeds_each_students_cases(toy2):
    path = toy2["course"] / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert toy2["first"].errors == []
    cases = {s: by_id(toy2["results"](s))["test_first"]["message"] for s in ("wrong1", "wrong2")}
    assert all(
        m.startswith("a hidden check failed (AssertionError) on the case: x = ")
        for m in cases.values()
    )
    assert cases["wrong1"] != cases["wrong2"]  # same code, different students
    toy2["run"]("wrong1")
    assert by_id(toy2["results"]("wrong1"))["test_first"]["message"] == cases["wrong1"]


def test_a_submission_that_stops_the_runner_twice_gets_zero_for_what_did_not_finish(toy2):
    assert toy2["scores"]()["killer"] == 10  # graded before with a correct answer
    toy2["submit"]("killer", TOY2_ANSWERS["killer"])
    report = toy2["run"]("killer")
    assert [(o.student, o.status) for o in report.outcomes] == [("killer", "stopped")]
    r = toy2["results"]("killer")
    tests = by_id(r)
    assert tests["test_first"]["passed"]  # finished before the runner stopped: kept
    assert not tests["test_second"]["passed"] and not tests["test_third"]["passed"]
    assert tests["test_third"]["message"].startswith("not finished: grading stopped")
    assert r["score"] == 2
    assert "grading stopped on this submission twice" in r["notes"][-1]
    assert r["notes"][-1].count("was killed by SIGKILL") == 2
    assert toy2["scores"]()["killer"] == 2  # the previous grade is not kept
    assert toy2["scores"]()["good"] == 10
