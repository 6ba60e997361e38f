"""Reading a submission and planning what runs: the instructor's cells, the student's.

The instructor's cells (read-only and tests) always come from the grading spec,
never from the submission. The submission contributes its answer cells (matched
by grade_id) and its own extra code cells, which run after the instructor cell
they follow in the submission, at most caps.MAX_OWN_CELLS of them. What the
student changed in the instructor's cells is undone and reported in notes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .caps import MAX_OWN_CELLS, Notes, quote_id, shorten
from .notebooks import NotebookSpec, nbgrader_meta

MAX_SUBMISSION_BYTES = 20 * 1024 * 1024

_NAME = {"test": "test cell", "setup": "read-only cell", "answer": "answer cell"}


def cell_source(cell) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _norm_source(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def load_submission(path: Path) -> tuple[list[dict] | None, str | None]:
    """Parse a submitted notebook defensively: (cells, None) or (None, reason)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"the submitted file cannot be read ({exc.strerror})"
    if size > MAX_SUBMISSION_BYTES:
        return None, f"the notebook is {size // 1024 // 1024} MB, more than the 20 MB limit"
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"the file is not valid notebook JSON ({shorten(exc, 200)})"
    if not isinstance(nb, dict):
        return None, "the file is not a notebook (no JSON object at the top)"
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return None, "the notebook has no list of cells"
    cells = [c for c in cells if isinstance(c, dict)]
    if not cells:
        return None, "the notebook has no cells"
    return cells, None


@dataclass
class Plan:
    """What the sandbox runs, in order, and what the grader noticed on the way."""

    cells: list[dict] = field(default_factory=list)  # [{"id", "source"}]
    labels: dict[str, str] = field(default_factory=dict)  # cell id -> what students read
    notes: Notes = field(default_factory=Notes)
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> submitted source
    scratch: dict[str, list] = field(default_factory=dict)  # anchor ("" first) -> [(i, source)]


def plan(spec: NotebookSpec, sub_cells: list[dict]) -> Plan:
    """Which code runs in the sandbox, in which order, and what was tampered with."""
    by_id = spec.by_id()
    out = Plan()
    scratch: dict[str | None, list[tuple[int, str]]] = {}
    seen: dict[str, int] = {}
    anchor: str | None = None
    own_cells = 0

    def add_own(i: int, cell) -> None:
        nonlocal own_cells
        own_cells += 1
        if own_cells <= MAX_OWN_CELLS:
            scratch.setdefault(anchor, []).append((i, cell_source(cell)))

    for i, cell in enumerate(sub_cells):
        gid = nbgrader_meta(cell).get("grade_id")
        gid = gid if isinstance(gid, str) else None
        target = by_id.get(gid) if gid else None
        if target is not None and gid in seen:
            out.notes.add_per_cell(
                f"cell {i + 1} repeats the grade_id {quote_id(gid)} of cell {seen[gid] + 1}; "
                + (
                    "it was run as an ordinary cell"
                    if target.role == "answer"
                    else "it was ignored"
                )
            )
            if target.role == "answer" and cell.get("cell_type") == "code":
                add_own(i, cell)
            continue
        if target is not None:
            seen[gid] = i
            anchor = gid
            src = cell_source(cell)
            if target.role == "answer":
                out.answers[gid] = src
            elif target.role in ("test", "setup"):
                what = _NAME[target.role]
                if _norm_source(src) != _norm_source(target.released):
                    out.notes.add(f"{what} '{gid}' was edited; the original was used")
                meta = nbgrader_meta(cell)
                keys = ("grade", "solution", "locked", "points")
                if any(meta.get(k) != target.meta.get(k) for k in keys):
                    out.notes.add(
                        f"{what} '{gid}' had its nbgrader metadata changed; the original was used"
                    )
            continue
        if cell.get("cell_type") == "code":
            if gid:
                out.notes.add_per_cell(
                    f"cell {i + 1} claims the grade_id {quote_id(gid)}, which is not part of "
                    "the assignment; it was run as an ordinary cell"
                )
            add_own(i, cell)
    if own_cells > MAX_OWN_CELLS:
        out.notes.add(
            f"the notebook has {own_cells:,} code cells of your own; only the first "
            f"{MAX_OWN_CELLS} were run (the limit per notebook)"
        )

    def add_scratch(key):
        for i, src in scratch.get(key, []):
            cid = f"cell:{i}"
            out.cells.append({"id": cid, "source": src})
            out.labels[cid] = f"your cell {i + 1}"

    add_scratch(None)
    for c in spec.cells:
        if c.role == "setup":
            cid = f"setup:{c.grade_id}"
            out.cells.append({"id": cid, "source": c.source})
            out.labels[cid] = f"read-only cell '{c.grade_id}'"
        elif c.role == "answer":
            cid = f"answer:{c.grade_id}"
            if c.grade_id in out.answers:
                out.cells.append({"id": cid, "source": out.answers[c.grade_id]})
            else:
                out.notes.add(
                    f"answer cell '{c.grade_id}' is missing; the unanswered stub was used"
                )
                out.cells.append({"id": cid, "source": c.source})
            out.labels[cid] = f"answer cell '{c.grade_id}'"
        elif c.role == "test" and c.grade_id not in seen:
            out.notes.add(f"test cell '{c.grade_id}' was deleted; the original was used")
        if c.grade_id:
            add_scratch(c.grade_id)
    out.scratch = {k or "": v for k, v in scratch.items()}
    return out
