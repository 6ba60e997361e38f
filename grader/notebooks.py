"""Reading assignment notebooks: cell roles, the grading spec, and secret lines.

An assignment notebook (see CONVENTIONS.md, "An assignment notebook") has four
kinds of nbgrader cells, told apart by their ``metadata.nbgrader``:

- ``answer``: ``solution: true`` code cells (the student writes here);
- ``test``: ``grade: true`` locked code cells worth ``points`` (visible checks, then
  hidden ones between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``);
- ``setup``: other locked code cells (imports), run as the instructor wrote them;
- ``markdown``: text.

Code cells without nbgrader metadata are the student's own ("try it" cells).

The *grading spec* of a notebook is built from the instructor's source: answer
cells as released (stubs; never the solutions), setup cells, and test cells with
their hidden tests. It is what the test runner executes; it never enters a
submission's sandbox.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .errors import SpecError

SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MARK_SCHEME_MARKERS = ("BEGIN MARK SCHEME", "END MARK SCHEME")
ALL_MARKERS = SOLUTION_MARKERS + HIDDEN_MARKERS + MARK_SCHEME_MARKERS

GRADE_ID_RE = re.compile(r"\A[a-z][a-z0-9_]*\Z")  # \Z: "$" allows a final newline
# anything that looks like a marker; nbgrader only recognises the exact spellings
FUZZY_MARKER_RE = re.compile(
    r"(?i)\b(begin|end)[\s_-]*(solutions?|hidden[\s_-]*tests?|mark[\s_-]*scheme)\b"
)


def read_notebook(path: Path) -> NotebookNode:
    with open(path, encoding="utf-8") as fh:
        return nbformat.read(fh, as_version=4)


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def cell_role(cell) -> str:
    """'markdown', 'answer', 'test', 'setup', 'free' or 'unsupported'."""
    nbg = nbgrader_meta(cell)
    if cell.get("cell_type") != "code":
        if nbg.get("solution") or nbg.get("grade") or nbg.get("task"):
            return "unsupported"  # written answers / tasks: graded by hand
        return "markdown"
    grade, solution = bool(nbg.get("grade")), bool(nbg.get("solution"))
    if grade and solution:
        return "unsupported"  # autograded answer cell: not supported by the grader
    if solution:
        return "answer"
    if grade:
        return "test"
    if nbg.get("locked"):
        return "setup"
    return "free"


def test_name(source: str, default: str) -> str:
    """The first line of a test cell's docstring (visible to students)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return default
    doc = ast.get_docstring(tree, clean=True)
    if not doc:
        return default
    return doc.strip().splitlines()[0].strip()


def defined_names(source: str) -> tuple[list[str], list[str]]:
    """Top-level (functions, other names) that a cell defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SpecError(f"cannot parse cell: {exc}") from None
    funcs, values = [], []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            funcs.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    values.append(t.id)
    return funcs, values


def strip_hidden(source: str) -> str:
    """A test cell's source without its hidden part (what students see)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if HIDDEN_MARKERS[0] in line:
            hidden = True
        elif HIDDEN_MARKERS[1] in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


@dataclass
class SpecCell:
    index: int
    role: str
    grade_id: str | None
    source: str  # setup/test: instructor source (hidden tests included); answer: stub
    released: str = ""  # what students received
    points: float = 0.0
    name: str = ""
    functions: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # released nbgrader metadata


@dataclass
class NotebookSpec:
    assignment: str
    notebook: str
    cells: list[SpecCell]

    @property
    def tests(self) -> list[SpecCell]:
        return [c for c in self.cells if c.role == "test"]

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.tests)

    def by_id(self) -> dict[str, SpecCell]:
        return {c.grade_id: c for c in self.cells if c.grade_id}

    def to_dict(self) -> dict:
        return {
            "assignment": self.assignment,
            "notebook": self.notebook,
            "cells": [asdict(c) for c in self.cells],
        }

    @classmethod
    def from_dict(cls, d: dict) -> NotebookSpec:
        return cls(d["assignment"], d["notebook"], [SpecCell(**c) for c in d["cells"]])


def check_source(nb: NotebookNode, where: str) -> None:
    """Assignment rules that nbgrader itself does not enforce."""
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        role = cell_role(cell)
        nbg = nbgrader_meta(cell)
        gid = nbg.get("grade_id")
        label = f"{where}, cell {i}"
        if role == "unsupported":
            raise SpecError(
                f"{label}: manually graded or autograded-answer cells are not supported "
                "by the grader; use an answer cell followed by a test cell"
            )
        if nbg and not gid:
            raise SpecError(f"{label}: nbgrader cell without a grade_id")
        if gid:
            if not GRADE_ID_RE.match(gid):
                raise SpecError(f"{label}: grade_id {gid!r} is not snake_case")
            if gid in seen:
                raise SpecError(f"{label}: duplicate grade_id {gid!r}")
            seen.add(gid)
        if role == "test":
            if not (nbg.get("points") or 0) > 0:
                raise SpecError(f"{label}: test cell {gid!r} has no points")
            if test_name(cell.source, "") == "":
                raise SpecError(
                    f"{label}: test cell {gid!r} must open with a one-line docstring "
                    "naming what it checks (students see it in their feedback)"
                )
            if any(m in strip_hidden(cell.source) for m in HIDDEN_MARKERS):
                raise SpecError(f"{label}: unbalanced hidden-test markers in {gid!r}")
        text = cell.source
        for line in text.split("\n"):
            if FUZZY_MARKER_RE.search(line) and not any(m in line for m in ALL_MARKERS):
                raise SpecError(
                    f"{label}: {line.strip()!r} looks like a misspelled marker; nbgrader "
                    "only recognises '### BEGIN SOLUTION', '### END SOLUTION', "
                    "'### BEGIN HIDDEN TESTS' and '### END HIDDEN TESTS', and would "
                    "release what follows"
                )
        if role != "answer" and any(m in text for m in SOLUTION_MARKERS):
            raise SpecError(f"{label}: solution markers outside an answer cell")
        if role not in ("test",) and any(m in text for m in HIDDEN_MARKERS):
            raise SpecError(f"{label}: hidden-test markers outside a test cell")


def build_spec(
    assignment: str, name: str, source: NotebookNode, release: NotebookNode
) -> NotebookSpec:
    """Grading spec from the instructor's source and the generated release."""
    released = {nbgrader_meta(c).get("grade_id"): c for c in release.cells}
    cells = []
    for i, cell in enumerate(source.cells):
        role = cell_role(cell)
        gid = nbgrader_meta(cell).get("grade_id")
        rel = released.get(gid) if gid else None
        if gid and rel is None:
            raise SpecError(f"{assignment}/{name}: cell {gid!r} is missing from the release")
        spec = SpecCell(index=i, role=role, grade_id=gid, source="")
        if rel is not None:
            spec.released = rel.source
            spec.meta = dict(nbgrader_meta(rel))
        if role == "answer":
            spec.source = rel.source  # the stub: solutions never leave the instructor
            spec.functions, spec.values = defined_names(rel.source)
        elif role in ("setup", "test"):
            spec.source = cell.source
        elif role == "free":
            spec.released = cell.source
        if role == "test":
            spec.points = float(nbgrader_meta(cell)["points"])
            spec.name = test_name(cell.source, gid)
        cells.append(spec)
    return NotebookSpec(assignment, name, cells)


# --------------------------------------------------------------------------- secrets
def _norm(line: str) -> str:
    return " ".join(line.split())


MIN_SECRET_CHARS = 12
_IMPORT_RE = re.compile(r"^(import\s+[\w.]+(\s+as\s+\w+)?|from\s+[\w.]+\s+import\s+.+)$")


@dataclass
class SecretBlock:
    """The distinctive lines of one solution or hidden-test block."""

    kind: str  # "solution" or "hidden test"
    where: str  # "<notebook>: <grade_id>"
    lines: list[str]


def secret_blocks(source: NotebookNode, name: str = "") -> list[SecretBlock]:
    """Solution and hidden-test blocks of a source notebook, as distinctive lines.

    A line counts if it sits inside a block, is at least MIN_SECRET_CHARS long
    (whitespace-normalised), is neither a comment, nor an import, nor a line that
    only opens a bracket (``assert x == y, (``), and does not occur
    (even as part of a line) outside the blocks anywhere in the source notebook,
    so visible code that a hidden test shares is not flagged.
    """
    blocks: list[SecretBlock] = []
    outside: list[str] = []
    for cell in source.cells:
        gid = nbgrader_meta(cell).get("grade_id", "?")
        current: SecretBlock | None = None
        for line in cell.source.split("\n"):
            if SOLUTION_MARKERS[0] in line or HIDDEN_MARKERS[0] in line:
                kind = "solution" if SOLUTION_MARKERS[0] in line else "hidden test"
                current = SecretBlock(kind, f"{name}: {gid}" if name else gid, [])
                blocks.append(current)
            elif SOLUTION_MARKERS[1] in line or HIDDEN_MARKERS[1] in line:
                current = None
            elif current is not None:
                current.lines.append(_norm(line))
            else:
                outside.append(_norm(line))
    outside_text = "\n".join(outside)
    for b in blocks:
        b.lines = sorted(
            {
                s
                for s in b.lines
                if len(s) >= MIN_SECRET_CHARS
                and not s.startswith("#")
                and not _IMPORT_RE.match(s)
                and not s.endswith(("(", "[", "{"))  # openers carry little information
                and s not in outside_text
            }
        )
    return [b for b in blocks if b.lines]


def secret_lines(source: NotebookNode) -> set[str]:
    """Every distinctive line of every solution and hidden-test block."""
    return {line for b in secret_blocks(source) for line in b.lines}


def clear_solutions(nb: NotebookNode, cfg) -> NotebookNode:
    """nbgrader's ClearSolutions with the course configuration (on a copy)."""
    from nbgrader.preprocessors import ClearSolutions

    nb = copy.deepcopy(nb)
    nb, _ = ClearSolutions(config=cfg).preprocess(nb, {})
    return nb
