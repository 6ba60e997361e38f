"""``grader feedback``: one HTML page per student and notebook, without test code.

nbgrader's own feedback is the autograded notebook rendered to HTML, hidden tests
included (jupyter/nbgrader#917, "by design"). Here the page is built from
``results.json`` instead: each test's name (the first line of its docstring,
which students already see), points and pass/fail message, the notes about the
submission, and errors in the student's own cells. No test source is ever
rendered, and a failed *hidden* check shows its case but not the values it
compared.

Every string is made safe first (grader.text: no surrogate, control character
or ANSI sequence reaches the page) and capped, with a note saying what was left
out. Text has one of two origins, and only the instructor's is checked against
the secret lines of the source notebooks (grader.leaks):

- the instructor's words (test names, the messages of failed hidden checks,
  which the runner builds from the exception's type and the instructor's case)
  are redacted if they quote a line of a solution or hidden test, and the page
  without the student's text is scanned again before it is written (refuse
  rather than leak);
- text the student controls (notes, which quote their cells' metadata; their
  cells' errors; the messages of failed visible checks, which quote what their
  code returned or raised) is never altered depending on the secrets: redacting
  it would confirm a guessed line, and it cannot make their page fail.

One student's bad record is reported with what to do; the others' pages are
written all the same.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import jinja2

from .config import GRADER_DIR, ID_RE, Paths, check_id, venv_on_path
from .errors import ConfigError, LeakError, StudentsSkipped
from .leaks import course_secrets, find_in_text, redact
from .text import safe_line, safe_text, shorten

TEMPLATE = "feedback.html.j2"

# what one page shows at most (the runner caps results too: defence in depth)
MAX_MESSAGE_CHARS = 2_000
MAX_NOTES = 30
MAX_CELLS = 30
MAX_TESTS = 200

# where NumPy's assertion messages start listing the values they compared
_VALUES = re.compile(r"^\s*(Mismatch|Max (absolute|relative)|ACTUAL|DESIRED|x:|y:|First \d+)")
HIDDEN_NOTE = "(a hidden check: the values it compared are not shown)"


def hidden_message(message: str) -> str:
    """A failed hidden check's message without the values it compared.

    The case (shapes, strides, paddings, as the instructor wrote it) stays; the
    arrays NumPy prints (actual and desired values) go, so that feedback cannot
    be turned into a table of the hidden tests' expected outputs."""
    kept = []
    for line in message.splitlines():
        if _VALUES.match(line):
            break
        if line.strip():
            kept.append(line)
    return "\n".join(kept + [HIDDEN_NOTE])


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(GRADER_DIR / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _title(paths: Paths, assignment: str) -> str:
    """The assignment's title: the first heading of its released notebook."""
    import nbformat

    for nb_path in sorted((paths.release / assignment).glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
    return assignment


class _Shown:
    """The text of one page: made safe, capped, redacted where it is the instructor's."""

    def __init__(self, secrets: set[str]):
        self.secrets = secrets
        self.redactions = 0
        self.shortened = 0

    def _cap(self, text: str) -> str:
        self.shortened += len(text) > MAX_MESSAGE_CHARS
        return shorten(text, MAX_MESSAGE_CHARS)

    def student(self, text) -> str:
        """Text the student controls: never altered depending on the secrets."""
        return self._cap(safe_text(text if text is not None else ""))

    def instructor(self, text) -> str:
        """The instructor's words: a quoted secret line is withheld."""
        text, hit = redact(safe_text(text if text is not None else ""), self.secrets)
        self.redactions += hit
        return self._cap(text)


def _left_out(tests: int, notes: int, cells: int, shortened: int) -> str:
    """The note saying what a page too big to show whole leaves out."""
    parts = [
        f"{n} more {what}" + ("s" if n != 1 else "")
        for n, what in ((tests, "test"), (notes, "note"), (cells, "cell"))
        if n
    ]
    if shortened:
        parts.append(f"the end of {shortened} long message" + ("s" if shortened != 1 else ""))
    if not parts:
        return ""
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"This page leaves out {listed}, to stay readable; your instructor has the full record."


def _context(record: dict, notebook: str, title: str, secrets: set[str], student_text: bool):
    """The template's variables and the number of redactions; without the
    student's text (blanked) when ``student_text`` is false, for the leak scan."""
    r = record["notebooks"][notebook]
    shown = _Shown(secrets)
    student = shown.student if student_text else (lambda text: "")
    tests = []
    for t in r["tests"][:MAX_TESTS]:
        passed = bool(t["passed"])
        if passed:
            message = ""
        elif t.get("hidden"):  # built by the runner from the type and the instructor's case
            message = shown.instructor(hidden_message(safe_text(t["message"])))
        else:  # quotes what the student's code returned or raised
            message = student(t["message"])
        tests.append(
            {
                "grade_id": shown.instructor(t["grade_id"]),
                "name": shown.instructor(t["name"]),
                "points": float(t["points"]),
                "max_points": float(t["max_points"]),
                "passed": passed,
                "message": message,
            }
        )
    problems = [
        c
        for c in r.get("cells", [])
        if c["status"] != "ok" and not str(c["id"]).startswith("setup:")
    ]
    cells = [
        {
            "label": student(c.get("label")),
            "status": student(c.get("status")),
            "message": student(c.get("message")),
        }
        for c in problems[:MAX_CELLS]
    ]
    notes = r.get("notes", [])
    context = dict(
        assignment_title=safe_line(title),
        student=safe_line(record["student"]),
        notebook=safe_line(notebook),
        graded_at=safe_line(record.get("graded_at", "")),
        score=float(r["score"]),
        max_score=float(r["max_score"]),
        notes=[student(n) for n in notes[:MAX_NOTES]],
        tests=tests,
        cells=cells,
    )
    context["left_out"] = _left_out(
        max(0, len(r["tests"]) - MAX_TESTS),
        max(0, len(notes) - MAX_NOTES),
        max(0, len(problems) - MAX_CELLS),
        shown.shortened,
    )
    return context, shown.redactions


def render(record: dict, notebook: str, title: str, secrets: set[str]) -> tuple[str, int]:
    """HTML feedback for one notebook of one record; returns (html, redactions)."""
    context, redactions = _context(record, notebook, title, secrets, student_text=True)
    return _env().get_template(TEMPLATE).render(**context), redactions


def leaks_in_page(record: dict, notebook: str, title: str, secrets: set[str]) -> list:
    """Secret lines or markers in the page *without the student's text*: what the
    grader and the instructor put there (a student's own words cannot fail it)."""
    context, _ = _context(record, notebook, title, secrets, student_text=False)
    page = _env().get_template(TEMPLATE).render(**context)
    return find_in_text(page + "\n" + html.unescape(page), secrets, markers=True)


class _Skip(Exception):
    """One student's page cannot be written; the message says why and what to do."""

    def __init__(self, message: str, leak: bool = False):
        super().__init__(message)
        self.leak = leak


def manual_scores(paths: Paths, assignment: str) -> dict[tuple[str, str, str], float]:
    """(student, notebook, grade_id) -> the score set by hand in nbgrader's gradebook
    (formgrader), which overrides the automatic one in the export: the page must say
    the same."""
    db = paths.require_course() / "gradebook.db"
    if not db.is_file():
        return {}
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    venv_on_path()
    out = {}
    with warnings.catch_warnings(), Gradebook(paths.db_url, "default_course") as gb:
        warnings.simplefilter("ignore")
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return {}
        for sub in submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.manual_score is not None:
                        out[(sub.student.id, nb.name, g.name)] = float(g.manual_score)
    return out


MANUAL_NOTE = "Your instructor set the score of {n} by hand; the score above includes it."


def apply_manual_scores(record: dict, manual: dict) -> None:
    """Put the scores set by hand into a student's record (points, total, a note)."""
    sid = record["student"]
    for nb, r in record["notebooks"].items():
        changed = []
        for t in r["tests"]:
            score = manual.get((sid, nb, t["grade_id"]))
            if score is not None and score != t["points"]:
                t["points"] = score
                changed.append(t["name"])
        if changed:
            r["score"] = sum(float(t["points"]) for t in r["tests"])
            names = ", ".join(repr(n) for n in changed)
            r["notes"] = [*r.get("notes", []), MANUAL_NOTE.format(n=names)]


def _student_pages(
    paths: Paths,
    sid: str,
    assignment: str,
    notebooks: set[str],
    title: str,
    secrets: set[str],
    manual: dict | None = None,
) -> dict[Path, str]:
    """The pages of one student, checked, not yet written."""
    again = f"run `grader autograde {assignment} --student {sid}` again"
    rpath = paths.step_dir("autograded", sid, assignment) / "results.json"
    if not rpath.is_file():
        raise _Skip(f"no autograded {assignment}: {again}")
    try:
        record = json.loads(rpath.read_text(encoding="utf-8", errors="replace"))
        names = list(record["notebooks"])
        if record["student"] != sid or not set(names) <= notebooks:
            raise _Skip(f"{rpath.name} belongs to another student or assignment: {again}")
        apply_manual_scores(record, manual or {})
        checked = {
            nb: (render(record, nb, title, secrets)[0], leaks_in_page(record, nb, title, secrets))
            for nb in names
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Skip(
            f"{rpath.name} is not a grading record ({type(exc).__name__}: "
            f"{safe_line(exc, 200)}): {again}"
        ) from None
    pages = {}
    out_dir = paths.step_dir("feedback", sid, assignment)
    for nb, (page, leaks) in checked.items():
        if leaks:  # cannot happen after redaction; refuse rather than leak
            raise _Skip(
                f"the page would contain hidden test code: {leaks[0][1]!r}; check the "
                f"names and hidden-check cases of {assignment}'s tests",
                leak=True,
            )
        pages[out_dir / f"{nb}.html"] = page
    return pages


def feedback(paths: Paths, assignment: str, students: list[str] | None = None) -> list[Path]:
    """Write ``<course>/feedback/<student>/<assignment>/<notebook>.html``.

    Every student's pages are attempted; if some cannot be written, the others
    are, and then StudentsSkipped (or LeakError, if a page would have leaked)
    lists them with what to do.
    """
    paths.check_assignment(assignment)
    course = paths.require_existing_course()
    graded = course / "autograded"
    if students:
        ids = [check_id("student", s) for s in students]
    else:
        ids = (
            sorted(p.name for p in graded.iterdir() if (p / assignment / "results.json").is_file())
            if graded.is_dir()
            else []
        )
    if not ids:
        raise ConfigError(f"no autograded submissions of {assignment}: run `grader autograde`")
    notebooks = {p.stem for p in (paths.source / assignment).glob("*.ipynb")}
    secrets = course_secrets(paths.source / assignment)
    title = _title(paths, assignment)
    manual = manual_scores(paths, assignment)
    written: list[Path] = []
    skipped: list[tuple[str, _Skip]] = []
    for sid in ids:
        try:
            if not ID_RE.fullmatch(sid):
                raise _Skip("the folder name is not a valid student id: remove or rename it")
            pages = _student_pages(paths, sid, assignment, notebooks, title, secrets, manual)
            for path, page in pages.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(page, encoding="utf-8")
                written.append(path)
        except _Skip as exc:
            skipped.append((sid, exc))
        except OSError as exc:
            skipped.append((sid, _Skip(f"cannot write the page: {safe_line(exc, 300)}")))
    if skipped:
        error = LeakError if any(e.leak for _, e in skipped) else StudentsSkipped
        raise error(
            f"wrote {len(written)} feedback files under {course / 'feedback'}, but none for "
            f"{len(skipped)} students (their earlier pages, if any, are unchanged):\n  "
            + "\n  ".join(f"{safe_line(sid)!r}: {e}" for sid, e in skipped)
        )
    return written
