"""``grader export``: the gradebook as a CSV, a short summary and a histogram.

``grades.csv`` has one row per student × assignment × part (test cell), long
format, straight from nbgrader's gradebook (manual overrides win over automatic
scores, as in nbgrader). ``summary.md`` gives, per assignment, the number of
submissions, the mean, median, minimum and maximum total, and each part's mean
and pass rate; ``grade_distribution.png`` is the histogram of totals.

Every text field is written as one safe line (grader.text), so no id or name can
split a CSV row or a table. A student whose gradebook entries cannot be read is
left out and reported (StudentsSkipped, after the files are written); the
others are exported.
"""

from __future__ import annotations

import csv
import functools
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from .config import Paths, venv_on_path
from .errors import ConfigError, StudentsSkipped
from .notebooks import nbgrader_meta, read_notebook
from .text import safe_line

FIELDS = ["student_id", "assignment", "notebook", "part", "points", "max_points", "status"]


@dataclass
class ExportReport:
    csv: Path
    summary: Path
    figure: Path
    rows: int


def gradebook_rows(
    paths: Paths, assignments: list[str] | None = None, skipped: list | None = None
) -> list[dict]:
    """One row per student x assignment x part; students whose entries cannot be
    read are appended to ``skipped`` as (student, why) instead."""
    from nbgrader.api import Gradebook, MissingEntry

    venv_on_path()
    db = paths.require_existing_course() / "gradebook.db"
    if not db.is_file():
        raise ConfigError(f"no gradebook at {db}: run `grader autograde` first")
    skipped = [] if skipped is None else skipped
    rows = []
    with warnings.catch_warnings(), Gradebook(paths.db_url, "default_course") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy 2 warns about nbgrader's sessions
        names = assignments or sorted(a.name for a in gb.assignments)
        for aname in names:
            try:
                assignment = gb.find_assignment(aname)
            except MissingEntry:
                raise ConfigError(f"the gradebook has no assignment {aname!r}") from None
            cells = [
                (nb.name, gc.name, float(gc.max_score))
                for nb in sorted(assignment.notebooks, key=lambda n: n.name)
                for gc in sorted(
                    nb.grade_cells, key=lambda c, nb=nb: _position(paths, aname, nb.name, c.name)
                )
            ]
            order = {key: i for i, key in enumerate((n, g) for n, g, _ in cells)}
            for student in sorted(gb.students, key=lambda s: s.id):
                try:
                    rows += _student_rows(gb, aname, student.id, cells, order)
                except Exception as exc:  # noqa: BLE001 - one bad entry never stops the export
                    skipped.append(
                        (
                            student.id,
                            f"{aname}: cannot read the gradebook's entries "
                            f"({type(exc).__name__}: {exc}); regrade with `grader autograde "
                            f"{aname} --student ID`, or fix them in `nbgrader formgrader`",
                        )
                    )
    return rows


def _student_rows(gb, aname: str, sid: str, cells: list, order: dict) -> list[dict]:
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(aname, sid)
    except MissingEntry:
        return [
            dict(
                student_id=sid,
                assignment=aname,
                notebook=nb,
                part=part,
                points=0.0,
                max_points=mx,
                status="missing",
            )
            for nb, part, mx in cells
        ]
    grades = [
        dict(
            student_id=sid,
            assignment=aname,
            notebook=snb.name,
            part=g.name,
            points=float(g.score or 0.0),
            max_points=float(g.max_score),
            status="needs manual grade" if g.needs_manual_grade else "graded",
        )
        for snb in sub.notebooks
        for g in snb.grades
    ]
    grades.sort(key=lambda r: order.get((r["notebook"], r["part"]), 1 << 30))
    return grades


def _position(paths: Paths, assignment: str, notebook: str, grade_id: str):
    """Where a grade cell sits in the source notebook (parts in reading order)."""
    order = _source_order(paths.source / assignment / f"{notebook}.ipynb")
    return (order.get(grade_id, len(order)), grade_id)


@functools.lru_cache(maxsize=32)
def _source_order(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    nb = read_notebook(path)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    return {gid: i for i, gid in enumerate(ids) if gid}


def _totals(rows: list[dict]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["status"] == "missing":
            continue
        totals.setdefault(r["assignment"], {}).setdefault(r["student_id"], 0.0)
        totals[r["assignment"]][r["student_id"]] += r["points"]
    return totals


def summary_markdown(rows: list[dict], figure_name: str) -> str:
    out = ["# Grade summary", ""]
    totals = _totals(rows)
    for aname in sorted({r["assignment"] for r in rows}):
        arows = [r for r in rows if r["assignment"] == aname]
        scores = sorted(totals.get(aname, {}).values())
        max_total = sum(
            mx for (_, _, mx) in {(r["notebook"], r["part"], r["max_points"]) for r in arows}
        )
        missing = len({r["student_id"] for r in arows if r["status"] == "missing"})
        out += [f"## {safe_line(aname)}", ""]
        if scores:
            out.append(
                f"{len(scores)} submissions ({missing} students without one), out of "
                f"{max_total:g} points: mean {statistics.fmean(scores):.1f}, median "
                f"{statistics.median(scores):g}, min {scores[0]:g}, max {scores[-1]:g}."
            )
        else:
            out.append(f"No submissions ({missing} students).")
        out += ["", "| part | max | mean | full marks |", "| --- | ---: | ---: | ---: |"]
        parts: dict[str, list[dict]] = {}
        for r in arows:
            if r["status"] != "missing":
                parts.setdefault(r["part"], []).append(r)
        for part, prow in parts.items():
            mean = statistics.fmean(r["points"] for r in prow)
            full = sum(r["points"] >= r["max_points"] for r in prow) / len(prow)
            mx = prow[0]["max_points"]
            out.append(f"| {safe_line(part)} | {mx:g} | {mean:.1f} | {full:.0%} |")
        out.append("")
    out += [f"![Distribution of total scores]({figure_name})", ""]
    return "\n".join(out)


def histogram(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = _totals(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    bins = list(range(0, 101, 10))
    for aname, scores in sorted(totals.items()):
        arows = [r for r in rows if r["assignment"] == aname]
        max_total = (
            sum(mx for (_, _, mx) in {(r["notebook"], r["part"], r["max_points"]) for r in arows})
            or 1.0
        )
        pct = [100.0 * s / max_total for s in scores.values()]
        ax.hist(pct, bins=bins, alpha=0.7, label=f"{aname} (n={len(pct)})", edgecolor="black")
    ax.set_title("Distribution of total scores")
    ax.set_xlabel("score (% of the assignment's points)")
    ax.set_ylabel("students")
    ax.set_xticks(bins)
    if totals:
        ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_csv(rows: list[dict], path: Path) -> None:
    """``grades.csv``: every text field one safe line (an id cannot split a row)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    **{k: safe_line(v) for k, v in r.items() if isinstance(v, str)},
                    "points": f"{r['points']:g}",
                    "max_points": f"{r['max_points']:g}",
                }
            )


def export(paths: Paths, out_dir: Path | None = None, assignments: list[str] | None = None):
    """Write the CSV, summary and figure; raise StudentsSkipped afterwards if some
    students' entries could not be read (the files hold everyone else)."""
    skipped: list[tuple[str, str]] = []
    rows = gradebook_rows(paths, assignments, skipped)
    out_dir = Path(out_dir) if out_dir else paths.require_course() / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "grades.csv"
    write_csv(rows, csv_path)
    figure = out_dir / "grade_distribution.png"
    histogram(rows, figure)
    summary = out_dir / "summary.md"
    summary.write_text(summary_markdown(rows, figure.name), encoding="utf-8")
    if skipped:
        raise StudentsSkipped(
            f"wrote {csv_path} ({len(rows)} rows), {summary} and {figure} without "
            f"{len(skipped)} students:\n  "
            + "\n  ".join(f"{safe_line(sid)!r}: {safe_line(why)}" for sid, why in skipped)
        )
    return ExportReport(csv_path, summary, figure, len(rows))
