"""Notebooks run in Colab: the first cell installs what Colab lacks, there only,
and `glue` works without myst-nb. Colab is simulated (no network): a fake
`google.colab` module, a stubbed `%pip`, and myst_nb made unimportable."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from cnn_book import colab
from cnn_book.execute import chapter_notebooks

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = chapter_notebooks()


def notebook(*sources, minor=5):
    """A notebook with a title, a Setup heading and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = minor
    cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell("## Setup")]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    if minor < 5:
        for cell in cells:
            del cell["id"]
    nb.cells = cells
    return nb


SETUP = """import keras
import numpy as np
from myst_nb import glue

from cnn_course import data
from cnn_course.shapes import dense_params

keras.utils.set_random_seed(0)"""


# -- the tool -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_carries_the_canonical_colab_cell_and_glue_import(path):
    """Fails when a chapter was edited or added without `python -m cnn_book.colab`."""
    nb = nbformat.read(path, as_version=4)
    assert not colab.setup_for_colab(nb), "stale: run `python -m cnn_book.colab`"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert colab.CELL_TAG in first_code.metadata.get("tags", [])
    assert colab.CNN_COURSE_REQUIREMENT in first_code.source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "myst_nb" not in code
    assert colab.GLUE_IMPORT in code


def test_tool_inserts_the_cell_first_and_rewrites_the_glue_import():
    nb = notebook(SETUP, "glue('n', 1, display=False)")
    assert colab.setup_for_colab(nb)
    cell, setup = nb.cells[2], nb.cells[3]
    assert cell.source == colab.colab_cell_source([colab.CNN_COURSE_REQUIREMENT])
    assert cell.metadata["tags"] == [colab.CELL_TAG]
    assert setup.source == SETUP.replace("from myst_nb import glue\n", "").replace(
        "from cnn_course import data\n",
        "from cnn_course import data\nfrom cnn_course.glue import glue\n",
    )


def test_tool_is_idempotent_and_keeps_the_cell_id():
    nb = notebook(SETUP)
    colab.setup_for_colab(nb)
    cell_id = nb.cells[2].id
    before = json.dumps(nb, sort_keys=True)
    assert not colab.setup_for_colab(nb)
    assert json.dumps(nb, sort_keys=True) == before and nb.cells[2].id == cell_id


def test_tool_replaces_a_stale_colab_cell_in_place():
    nb = notebook(SETUP)
    colab.setup_for_colab(nb)
    nb.cells[2].source = "# an old version of the cell"
    nb.cells.insert(3, nb.cells.pop(2))  # and in the wrong place
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("Some prose."))
    assert colab.setup_for_colab(nb)
    assert [c.cell_type for c in nb.cells] == ["markdown"] * 3 + ["code", "code"]
    assert nb.cells[3].source.startswith("# In Colab")


def test_no_cell_for_a_notebook_that_imports_nothing_colab_lacks():
    nb = notebook("import numpy as np\nimport keras")
    assert not colab.setup_for_colab(nb)
    assert all(colab.CELL_TAG not in c.metadata.get("tags", []) for c in nb.cells)


def test_glue_import_opens_a_first_party_block_when_there_is_none():
    nb = notebook("import numpy as np\nfrom myst_nb import glue\n\nx = 1", "import cnn_course")
    colab.setup_for_colab(nb)
    assert nb.cells[3].source == "import numpy as np\n\nfrom cnn_course.glue import glue\n\nx = 1"


def test_a_myst_nb_import_the_tool_cannot_rewrite_is_an_error():
    nb = notebook("from myst_nb import glue, glue_figure\nimport cnn_course")
    with pytest.raises(colab.ColabSetupError, match="import only glue"):
        colab.setup_for_colab(nb)


def test_nbformat_4_4_notebooks_get_a_cell_without_an_id(tmp_path):
    path = tmp_path / "old.ipynb"
    nbformat.write(notebook(SETUP, minor=4), path)
    assert colab.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert "id" not in nb.cells[2] and colab.CELL_TAG in nb.cells[2].metadata["tags"]
    nbformat.validate(nb)


def test_cli_check_reports_stale_notebooks_and_changes_nothing(tmp_path, capsys):
    path = tmp_path / "stale.ipynb"
    nbformat.write(notebook(SETUP), path)
    before = path.read_bytes()
    assert colab.main(["--check", str(path)]) == 1
    assert path.read_bytes() == before and "stale" in capsys.readouterr().out
    assert colab.main([str(path)]) == 0 and colab.main(["--check", str(path)]) == 0


def test_tool_output_keeps_the_imports_sorted(tmp_path):
    """isort's order as ruff checks it (`make lint`), glue among the cnn_course imports."""
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook(SETUP, "glue('n', 1)"), path)
    colab.main([str(path)])
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"),
         "--select", "I", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


# -- the cell and the chapters' setup in a simulated Colab -----------------------------

SIMULATION = textwrap.dedent(
    """
    import json, sys, types
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    colab, setups, block_myst_nb = sys.argv[1] == "colab", json.loads(sys.argv[2]), sys.argv[3]
    if colab:
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    if block_myst_nb == "yes":
        sys.modules["myst_nb"] = None  # import myst_nb raises ImportError, as in Colab
    shell = InteractiveShell.instance()
    installs = []
    shell.register_magic_function(lambda line: installs.append(line), "line", "pip")
    report = {}
    for path, cells in setups.items():
        installs.clear()
        shell.reset()
        ok = all(shell.run_cell(source).success for source in cells)
        glue = shell.user_ns.get("glue")
        if ok and glue is not None:
            ok = shell.run_cell("glue('n', 1, display=False); glue('m', 2)").success
        report[path] = {"ok": ok, "installs": list(installs),
                        "glue": getattr(glue, "__module__", None)}
    print(json.dumps(report))
    """
)


def simulate(setups: dict, in_colab: bool, block_myst_nb: bool) -> dict:
    """Run each notebook's cells in a fresh interpreter; what each installed, what failed."""
    result = subprocess.run(
        [sys.executable, "-c", SIMULATION, "colab" if in_colab else "local",
         json.dumps(setups), "yes" if block_myst_nb else "no"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def setup_cells(path) -> list[str]:
    """The code cells before the `parameters` cell: the Colab cell and the imports."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            if "parameters" in cell.metadata.get("tags", []):
                break
            cells.append(cell.source)
    return cells


COLAB_CELL = colab.colab_cell_source([colab.CNN_COURSE_REQUIREMENT])
GLUE_ONLY = ["from cnn_course.glue import glue"]
INSTALL = f'install --quiet "{colab.CNN_COURSE_REQUIREMENT}"'


@pytest.fixture(scope="module")
def in_colab():
    """Simulated Colab, myst_nb unimportable: the cell alone, glue alone, each chapter's
    setup cells (imports and seeds; one interpreter, so the imports are paid once)."""
    setups = {"cell": [COLAB_CELL], "glue": GLUE_ONLY}
    setups.update({path.stem: setup_cells(path) for path in CHAPTERS})
    return simulate(setups, in_colab=True, block_myst_nb=True)


@pytest.fixture(scope="module")
def local():
    """A local Jupyter with myst-nb (as papermill and the book build run)."""
    return simulate({"cell": [COLAB_CELL], "glue": GLUE_ONLY}, in_colab=False, block_myst_nb=False)


def test_colab_cell_installs_the_helper_package_in_colab(in_colab):
    assert in_colab["cell"] == {"ok": True, "installs": [INSTALL], "glue": None}


def test_colab_cell_installs_nothing_elsewhere(local):
    assert local["cell"] == {"ok": True, "installs": [], "glue": None}


def test_glue_falls_back_to_the_stand_in_without_myst_nb(in_colab):
    assert in_colab["glue"]["ok"] and in_colab["glue"]["glue"] == "cnn_course.glue"


def test_glue_is_myst_nbs_where_myst_nb_is_installed(local):
    assert local["glue"]["ok"] and local["glue"]["glue"].startswith("myst_nb")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_setup_runs_in_simulated_colab_without_myst_nb(in_colab, path):
    outcome = in_colab[path.stem]
    assert outcome["ok"], "a setup cell failed in Colab without myst_nb"
    wanted = colab.colab_requirements(nbformat.read(path, as_version=4))
    assert outcome["installs"] == ["install --quiet " + " ".join(f'"{r}"' for r in wanted)]
    assert colab.CNN_COURSE_REQUIREMENT in wanted
    assert outcome["glue"] == "cnn_course.glue"


RELEASED = sorted((REPO / "assignments").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.parent.name)
def test_released_assignment_runs_in_colab(path):
    """It imports nothing Colab lacks unless its first code cell installs it, and no myst_nb."""
    nb = nbformat.read(path, as_version=4)
    assert not colab.setup_for_colab(nb), (
        "stale: run `python -m cnn_book.colab solutions/*/*.ipynb`, then `grader release`"
    )
    assert "myst_nb" not in "\n".join(c.source for c in nb.cells if c.cell_type == "code")
