"""Make notebooks run in Colab: the canonical first cell and the glue import.

    python -m cnn_book.colab                      # every chapter, in place
    python -m cnn_book.colab --check              # report, change nothing (exit 1 if stale)
    python -m cnn_book.colab path/to/notebook.ipynb ...

Colab lacks the course's helper package (and myst-nb). Each notebook gets, as
its first code cell, a cell that installs what the notebook imports and Colab
lacks, when it runs in Colab, and does nothing anywhere else (papermill, the
book build, a local Jupyter). `from myst_nb import glue` becomes
`from cnn_course.glue import glue`, which falls back to a stand-in without
myst-nb. Running the tool again changes nothing: it rewrites the cell it
tagged, so a notebook edited or added later is brought in line by one run.

Exit codes: 0 up to date (or updated), 1 --check found a stale notebook,
2 bad usage or a notebook the tool cannot fix by itself.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat
from nbformat.reader import NotJSONError

from cnn_book.execute import chapter_notebooks

# What the notebooks import that Colab does not have, and how pip gets it.
CNN_COURSE_REQUIREMENT = (
    "cnn-course @ git+https://github.com/cnn-course/cnn-course#subdirectory=package"
)
COLAB_LACKS = {
    "cnn_course": CNN_COURSE_REQUIREMENT,
    "keras_tuner": "keras-tuner[bayesian]>=1.4",  # chapter 14
}

CELL_TAG = "colab-setup"
GLUE_IMPORT = "from cnn_course.glue import glue"
MYST_NB_GLUE_IMPORT = re.compile(r"^from myst_nb import glue[ \t]*$", re.M)
MYST_NB_IMPORT = re.compile(r"^\s*(from\s+myst_nb\b|import\s+myst_nb\b)", re.M)
FIRST_PARTY_IMPORT = re.compile(r"^(from|import) cnn_course\b")


class ColabSetupError(ValueError):
    """A notebook imports myst_nb in a way this tool cannot rewrite."""


def colab_cell_source(requirements: list[str]) -> str:
    """The first code cell: pip-installs ``requirements`` in Colab, nothing elsewhere."""
    quoted = " ".join(f'"{requirement}"' for requirement in requirements)
    return (
        "# In Colab, install what this notebook needs and Colab lacks; elsewhere\n"
        "# (your own Jupyter, the book's build) this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f"    %pip install --quiet {quoted}"
    )


def _python_source(cell_source: str) -> str:
    """A code cell as plain Python (IPython magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def imported_modules(nb: nbformat.NotebookNode) -> set[str]:
    """Top-level names of every module the notebook's code cells import."""
    modules = set()
    for cell in _code_cells(nb, include_colab_cell=False):
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue  # a cell that does not parse imports nothing we can see
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def colab_requirements(nb: nbformat.NotebookNode) -> list[str]:
    """pip requirements for what the notebook imports and Colab lacks."""
    found = imported_modules(nb)
    return sorted(requirement for module, requirement in COLAB_LACKS.items() if module in found)


def _is_colab_cell(cell) -> bool:
    return cell.cell_type == "code" and CELL_TAG in cell.metadata.get("tags", [])


def _code_cells(nb, include_colab_cell=True):
    return [
        cell
        for cell in nb.cells
        if cell.cell_type == "code" and (include_colab_cell or not _is_colab_cell(cell))
    ]


def _insert_glue_import(source: str) -> str:
    """Add GLUE_IMPORT where isort puts it: in the cnn_course block, sorted by module."""
    lines = source.split("\n")
    block = [i for i, line in enumerate(lines) if FIRST_PARTY_IMPORT.match(line)]
    if not block:  # no first-party block yet: open one after the last import
        imports = [i for i, line in enumerate(lines) if re.match(r"(from|import) \w", line)]
        at = imports[-1] + 1 if imports else 0
        return "\n".join(lines[:at] + ["", GLUE_IMPORT] + lines[at:])
    at = block[-1] + 1
    for i in block:
        module = re.match(r"(?:from|import) ([\w.]+)", lines[i]).group(1)
        if module.lower() > "cnn_course.glue":
            at = i
            break
    return "\n".join(lines[:at] + [GLUE_IMPORT] + lines[at:])


def _rewrite_glue_import(source: str) -> str:
    """Replace `from myst_nb import glue` by the helper package's glue."""
    if not MYST_NB_GLUE_IMPORT.search(source):
        return source
    lines = source.split("\n")
    at = next(i for i, line in enumerate(lines) if MYST_NB_GLUE_IMPORT.match(line))
    del lines[at]
    # Removing the only line of an import section would leave two blank lines.
    if 0 < at < len(lines) and lines[at - 1] == "" and lines[at] == "":
        del lines[at]
    source = "\n".join(lines)
    return source if GLUE_IMPORT in source else _insert_glue_import(source)


def setup_for_colab(nb: nbformat.NotebookNode) -> bool:
    """Bring one notebook in line, in memory; True when anything changed."""
    before = [(cell.cell_type, cell.source, dict(cell.metadata)) for cell in nb.cells]
    for cell in _code_cells(nb, include_colab_cell=False):
        cell.source = _rewrite_glue_import(cell.source)
        if MYST_NB_IMPORT.search(cell.source):
            raise ColabSetupError(
                "the notebook imports myst_nb other than by `from myst_nb import glue` "
                f"(in a cell starting {cell.source.strip()[:60]!r}): import only glue, "
                f"as `{GLUE_IMPORT}`, so that the notebook runs without myst-nb"
            )
    requirements = colab_requirements(nb)
    tagged = [cell for cell in nb.cells if _is_colab_cell(cell)]
    nb.cells = [cell for cell in nb.cells if not _is_colab_cell(cell)]
    if requirements:
        cell = tagged[0] if tagged else _new_cell(nb)  # keep its id: no churn
        cell.source = colab_cell_source(requirements)
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
        nb.cells.insert(len(nb.cells) if first_code is None else first_code, cell)
    after = [(cell.cell_type, cell.source, dict(cell.metadata)) for cell in nb.cells]
    return after != before


def _new_cell(nb):
    cell = nbformat.v4.new_code_cell(metadata={"tags": [CELL_TAG]})
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        del cell["id"]  # cell ids came with nbformat 4.5
    return cell


def process(path: Path, check: bool = False) -> bool:
    """Update (or with ``check``, only inspect) one notebook file; True if it was stale."""
    nb = nbformat.read(path, as_version=4)
    stale = setup_for_colab(nb)
    if stale and not check:
        nbformat.write(nb, path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_book.colab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or chapter_notebooks()
    stale = []
    for path in notebooks:
        try:
            if process(path, check=args.check):
                stale.append(path)
        except (OSError, ColabSetupError, NotJSONError, nbformat.ValidationError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
    verb = "stale" if args.check else "updated"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
