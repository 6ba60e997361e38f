"""``grader export``: the gradebook as a CSV, a short summary and a histogram.

``grades.csv`` has one row per student × assignment × part (test cell), long
format, straight from nbgrader's gradebook (manual overrides win over automatic
scores, as in nbgrader), with the student's total on the assignment and the
sandbox that graded them on each row; every student in the gradebook (the
roster, if ``grader collect --roster`` was given one) is there, with status
``missing`` and 0 points where they did not submit. ``summary.md`` gives, per
assignment, the number of submissions, the mean, median, minimum and maximum
total, the sandboxes, and each part's mean and pass rate;
``grade_distribution.png`` is the histogram of totals (bins 0-9, ..., 90-99 and
100). ``canvas.csv`` and ``moodle.csv`` are for the LMS (grader.lms).

Every text field is written as one safe line (grader.text), so no id or name can
split a CSV row or a table. A student whose gradebook entries cannot be read is
left out and reported (StudentsSkipped, after the files are written); the
others are exported.
"""

from __future__ import annotations

import csv
import functools
import json
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import lms
from .config import ID_RE, Paths, venv_on_path
from .errors import ConfigError, StudentsSkipped
from .notebooks import nbgrader_meta, read_notebook
from .text import safe_line

FIELDS = [
    "student_id",
    "assignment",
    "notebook",
    "part",
    "points",
    "max_points",
    "status",
    "total",  # the student's total on the assignment, on each of their rows
    "max_total",
    "sandbox",  # how the submission was isolated: bubblewrap, or rlimits (not isolated)
]


@dataclass
class ExportReport:
    csv: Path
    summary: Path
    figure: Path
    rows: int
    canvas: Path | None = None
    moodle: Path | None = None


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
    """assignment -> student -> total points, for students with a submission."""
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["status"] == "missing":
            continue
        totals.setdefault(r["assignment"], {}).setdefault(r["student_id"], 0.0)
        totals[r["assignment"]][r["student_id"]] += r["points"]
    return totals


def _max_totals(rows: list[dict]) -> dict[str, float]:
    parts = {(r["assignment"], r["notebook"], r["part"]): r["max_points"] for r in rows}
    out: dict[str, float] = {}
    for (aname, _, _), mx in parts.items():
        out[aname] = out.get(aname, 0.0) + mx
    return out


def add_totals(rows: list[dict], paths: Paths) -> None:
    """Each row gets its student's total and maximum on the assignment, and the
    sandbox that graded them (from results.json; empty without a submission)."""
    totals, maxima = _totals(rows), _max_totals(rows)
    modes: dict[tuple[str, str], str] = {}
    for r in rows:
        key = (r["student_id"], r["assignment"])
        if key not in modes:
            modes[key] = "" if r["status"] == "missing" else _sandbox_of(paths, *key)
        r["total"] = totals.get(r["assignment"], {}).get(r["student_id"], 0.0)
        r["max_total"] = maxima[r["assignment"]]
        r["sandbox"] = modes[key]


def _sandbox_of(paths: Paths, sid: str, assignment: str) -> str:
    if not ID_RE.match(sid):
        return ""
    path = paths.step_dir("autograded", sid, assignment) / "results.json"
    try:
        mode = json.loads(path.read_text(encoding="utf-8")).get("sandbox")
    except (OSError, ValueError, AttributeError):
        return ""
    return mode if isinstance(mode, str) else ""


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
            out += ["", _sandboxes(arows)]
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


def _sandboxes(arows: list[dict]) -> str:
    """Which sandbox graded how many submissions (rlimits: not isolated)."""
    modes: dict[str, set] = {}
    for r in arows:
        if r["status"] != "missing":
            modes.setdefault(r.get("sandbox") or "unknown", set()).add(r["student_id"])
    named = {"rlimits": "rlimits (NOT isolated)", "unknown": "unknown (no results.json)"}
    parts = [f"{named.get(m, m)}: {len(ids)}" for m, ids in sorted(modes.items())]
    return "Graded in sandbox " + ", ".join(parts) + "."


# the histogram's bins: 0-9, 10-19, ..., 90-99 and 100 alone (full marks)
BIN_LABELS = [f"{lo}–{lo + 9}" for lo in range(0, 100, 10)] + ["100"]


def score_bins(percentages: list[float]) -> list[int]:
    """How many scores fall in each of BIN_LABELS' bins."""
    counts = [0] * len(BIN_LABELS)
    for pct in percentages:
        counts[10 if pct >= 100 else max(int(pct // 10), 0)] += 1
    return counts


def histogram(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals, maxima = _totals(rows), _max_totals(rows)
    fig, ax = plt.subplots(figsize=(7.2, 3.6), layout="constrained")
    names = sorted(totals)
    width = 0.8 / max(len(names), 1)
    for k, aname in enumerate(names):
        scores = totals[aname]
        pct = [100.0 * s / (maxima.get(aname) or 1.0) for s in scores.values()]
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(BIN_LABELS))]
        ax.bar(xs, score_bins(pct), width, label=f"{aname} (n={len(pct)})", edgecolor="black")
    ax.set_title("Distribution of total scores")
    ax.set_xlabel("score (% of the assignment's points)")
    ax.set_ylabel("students")
    ax.set_xticks(range(len(BIN_LABELS)), BIN_LABELS, rotation=45, ha="right")
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
                    **{k: f"{r[k]:g}" for k in ("points", "max_points", "total", "max_total")},
                }
            )


def export(
    paths: Paths,
    out_dir: Path | None = None,
    assignments: list[str] | None = None,
    lms_columns: dict[str, str] | None = None,
    canvas_id: str = "ID",
):
    """Write the CSV, summary and figure; raise StudentsSkipped afterwards if some
    students' entries could not be read (the files hold everyone else)."""
    skipped: list[tuple[str, str]] = []
    rows = gradebook_rows(paths, assignments, skipped)
    if not rows:
        raise ConfigError(
            f"the gradebook in {paths.require_course()} holds no grades"
            + (f" of {', '.join(assignments)}" if assignments else "")
            + ": run `grader autograde` first"
        )
    add_totals(rows, paths)
    out_dir = Path(out_dir) if out_dir else paths.require_course() / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "grades.csv"
    write_csv(rows, csv_path)
    lms.write_canvas(rows, out_dir / "canvas.csv", lms_columns, canvas_id)
    lms.write_moodle(rows, out_dir / "moodle.csv", lms_columns)
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
    return ExportReport(
        csv_path, summary, figure, len(rows), out_dir / "canvas.csv", out_dir / "moodle.csv"
    )
