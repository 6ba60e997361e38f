"""Committed notebooks: no outputs, and chapters that follow the template."""

from pathlib import Path

import nbformat
import pytest

from cnn_book.build import toc_files
from cnn_book.execute import chapter_notebooks

REPO = Path(__file__).resolve().parent.parent
COMMITTED = sorted(
    path
    for folder in ("chapters", "solutions", "assignments")
    for path in (REPO / folder).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in path.parts
)
CHAPTERS = chapter_notebooks()


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_notebook_carries_no_outputs(path):
    nb = read(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_template(path):
    nb = read(path)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    headings = [
        line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
        if line.startswith("## ")
    ]  # fmt: skip
    assert headings[0] == "## Setup"
    assert "## Summary" in headings and "## Exercises" in headings
    assert headings.index("## Summary") < headings.index("## Exercises")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged `parameters`"


def test_every_chapter_is_in_the_table_of_contents_and_nothing_else_is_missing():
    listed = toc_files(REPO / "_toc.yml")
    chapters = {f"chapters/{p.stem}" for p in CHAPTERS}
    assert chapters <= set(listed), f"not in _toc.yml: {chapters - set(listed)}"
    for doc in listed:
        assert (REPO / f"{doc}.ipynb").exists() or (REPO / f"{doc}.md").exists(), doc
    assert not any(doc.startswith(("solutions/", "assignments/")) for doc in listed)


def test_assignments_page_links_every_released_notebook():
    """A copy shipped with the book ({download}), the raw file, and Colab."""
    page = (REPO / "assignments.md").read_text(encoding="utf-8")
    released = sorted((REPO / "assignments").glob("*/*.ipynb"))
    assert released, "no released assignment"
    for notebook in released:
        path = notebook.relative_to(REPO).as_posix()
        assert f"{{download}}`download <{path}>`" in page, notebook.name
        assert f"raw.githubusercontent.com/cnn-course/cnn-course/main/{path})" in page
        assert f"colab.research.google.com/github/cnn-course/cnn-course/blob/main/{path})" in page
