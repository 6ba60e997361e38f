"""grader release: assignments/ is exactly what regeneration produces, and never leaks."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from grader import cli, config
from grader.errors import LeakError, SpecError
from grader.leaks import course_blocks, course_secrets, iter_files, scan_files
from grader.notebooks import check_source, read_notebook
from grader.release import release

CFG = config.load_config()
PATHS = config.resolve_paths(CFG)
ASSIGNMENTS = PATHS.assignments()
A1 = "a1_convolution_from_scratch"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignments_folder_is_what_release_regenerates(assignment):
    (report,) = release(CFG, PATHS, [assignment], check=True)
    assert report.changed == [], f"run `grader release {assignment}` and commit assignments/"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_versions_hold_no_solution_or_hidden_test_line(assignment):
    secrets = course_secrets(PATHS.source / assignment)
    files = iter_files([PATHS.release / assignment])
    assert files
    assert scan_files(files, secrets, markers=True) == []


def test_release_cli_check_succeeds_from_another_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the config is found from anywhere
    assert cli.main(["release", "--check", A1]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.fixture
def repo_copy(tmp_path):
    """A scratch repository holding only A1's source."""
    (tmp_path / "solutions").mkdir()
    shutil.copytree(PATHS.source / A1, tmp_path / "solutions" / A1)
    return tmp_path


def edit_source(repo, edit):
    path = repo / "solutions" / A1 / f"{A1}.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)


def cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def test_release_writes_then_check_passes_in_a_fresh_repo(repo_copy):
    paths = config.resolve_paths(CFG, repo=repo_copy)
    (report,) = release(CFG, paths, [A1])
    assert report.changed == [f"{A1}.ipynb"]
    (report,) = release(CFG, paths, [A1], check=True)
    assert report.changed == []
    assert (repo_copy / "assignments" / A1 / f"{A1}.ipynb").read_bytes() == (
        PATHS.release / A1 / f"{A1}.ipynb"
    ).read_bytes()


def test_release_refuses_when_hidden_tests_would_reach_students(repo_copy, tmp_path):
    """A configuration that switches nbgrader's ClearHiddenTests off must not leak."""
    extra = tmp_path / "leaky_config.py"
    extra.write_text("c = get_config()\nc.ClearHiddenTests.enabled = False\n")
    paths = config.resolve_paths(CFG, repo=repo_copy)
    cfg = config.load_config(extra)
    with pytest.raises(LeakError, match="refusing to release") as exc:
        release(cfg, paths, [A1])
    assert "BEGIN HIDDEN TESTS" in str(exc.value)
    assert not (repo_copy / "assignments").exists()


def test_release_cli_exit_code_for_a_leak(repo_copy, tmp_path, capsys, monkeypatch):
    extra = tmp_path / "leaky_config.py"
    extra.write_text("c = get_config()\nc.ClearSolutions.enabled = False\n")
    monkeypatch.setattr(config, "REPO_ROOT", repo_copy)
    rc = cli.main(["release", A1, "--config", str(extra)])
    assert rc == LeakError.exit_code
    assert "refusing to release" in capsys.readouterr().err


def test_misspelled_marker_is_refused(repo_copy):
    def misspell(nb):
        c = cell(nb, "corr2d")
        c.source = c.source.replace("### BEGIN SOLUTION", "### Begin Solution")

    edit_source(repo_copy, misspell)
    paths = config.resolve_paths(CFG, repo=repo_copy)
    with pytest.raises(SpecError, match="misspelled marker"):
        release(CFG, paths, [A1])


def test_hidden_test_outside_a_test_cell_is_refused(repo_copy):
    def misplace(nb):
        c = cell(nb, "part_c")
        c.source += "\n### BEGIN HIDDEN TESTS\nsecret\n### END HIDDEN TESTS"

    edit_source(repo_copy, misplace)
    paths = config.resolve_paths(CFG, repo=repo_copy)
    with pytest.raises(SpecError, match="hidden-test markers outside a test cell"):
        release(CFG, paths, [A1])


def test_test_cell_without_docstring_is_refused(repo_copy):
    def strip_doc(nb):
        c = cell(nb, "test_corr2d")
        c.source = c.source.split("\n", 1)[1]

    edit_source(repo_copy, strip_doc)
    paths = config.resolve_paths(CFG, repo=repo_copy)
    with pytest.raises(SpecError, match="docstring"):
        release(CFG, paths, [A1])


def test_grade_id_ending_in_a_newline_is_refused():
    """Grade ids become CSV fields: "$" would accept one ending in a newline."""
    nb = read_notebook(PATHS.source / A1 / f"{A1}.ipynb")
    cell(nb, "test_corr2d").metadata["nbgrader"]["grade_id"] = "test_corr2d\n"
    with pytest.raises(SpecError, match="is not snake_case"):
        check_source(nb, A1)


@pytest.mark.book
def test_book_html_holds_no_solution_or_hidden_test_block(built_book):
    """The published book must not show any assignment's solution or hidden tests."""
    files = iter_files([built_book])
    leaks = scan_files(files, markers=False, blocks=course_blocks(PATHS.source))
    assert leaks == [], "\n".join(str(x) for x in leaks[:20])
