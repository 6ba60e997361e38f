"""Grade files that Canvas and Moodle import as they are: one row per student,
one column per assignment (its total, the scores set by hand included; 0 for a
student on the roster without a submission). Both are written by
``grader export`` next to ``grades.csv``.

- ``canvas.csv``: Canvas's gradebook import format, the columns of its own
  gradebook export: ``Student, ID, SIS User ID, SIS Login ID, Section``, then
  one column per assignment, and a ``Points Possible`` row under the header.
  Canvas matches a row to a student by ``ID`` (its numeric user id, which its
  submission downloads put in the file names, so ``grader collect --pattern``
  picks it up), or by ``SIS User ID`` / ``SIS Login ID``: ``canvas_id`` says
  which column holds the grader's student id. A column whose title matches no
  Canvas assignment becomes a new assignment: give the assignment's title as
  Canvas shows it (``Assignment 1 (12345)``) in ``lms_columns``.
- ``moodle.csv``: for Moodle's "Import grades from CSV": an ``ID number``
  column (map it to ``useridnumber``) and one column per assignment (map each
  to its grade item).

Sources: grader/README.md, "5. Export", cites both LMSs' guides.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .text import safe_line

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_ID_COLUMNS = ("ID", "SIS User ID", "SIS Login ID")
MOODLE_ID = "ID number"


def student_totals(rows: list[dict]) -> tuple[list[str], dict[str, float], dict[tuple, float]]:
    """(assignments, assignment -> points possible, (student, assignment) -> total)."""
    assignments = sorted({r["assignment"] for r in rows})
    possible = {r["assignment"]: r["max_total"] for r in rows}
    totals = {(r["student_id"], r["assignment"]): r["total"] for r in rows}
    return assignments, possible, totals


def _number(value: float) -> str:
    return f"{value:g}"


def write_canvas(
    rows: list[dict], path: Path, lms_columns: dict[str, str] | None, canvas_id: str = "ID"
) -> None:
    if canvas_id not in CANVAS_ID_COLUMNS:
        raise ValueError(f"canvas_id must be one of {', '.join(CANVAS_ID_COLUMNS)}")
    assignments, possible, totals = student_totals(rows)
    titles = [safe_line((lms_columns or {}).get(a, a)) for a in assignments]
    students = sorted({sid for sid, _ in totals})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CANVAS_IDENTITY + titles)
        writer.writerow(
            ["    Points Possible", "", "", "", ""] + [_number(possible[a]) for a in assignments]
        )
        for sid in students:
            identity = dict.fromkeys(CANVAS_IDENTITY, "")
            identity["Student"] = identity[canvas_id] = safe_line(sid)
            scores = [_number(totals.get((sid, a), 0.0)) for a in assignments]
            writer.writerow([identity[c] for c in CANVAS_IDENTITY] + scores)


def write_moodle(rows: list[dict], path: Path, lms_columns: dict[str, str] | None) -> None:
    assignments, _, totals = student_totals(rows)
    titles = [safe_line((lms_columns or {}).get(a, a)) for a in assignments]
    students = sorted({sid for sid, _ in totals})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([MOODLE_ID] + titles)
        for sid in students:
            writer.writerow(
                [safe_line(sid)] + [_number(totals.get((sid, a), 0.0)) for a in assignments]
            )
