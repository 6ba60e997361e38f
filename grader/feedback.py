"""``grader feedback``: one HTML page per student and notebook, without test code.

nbgrader's own feedback is the autograded notebook rendered to HTML, hidden tests
included (jupyter/nbgrader#917, "by design"). Here the page is built from
``results.json`` instead: each test's name (the first line of its docstring,
which students already see), points and pass/fail message, the notes about the
submission, and errors in the student's own cells. No test source is ever
rendered, and a failed *hidden* check shows its case but not the values it
compared. As a second line of defence every message is checked against the
secret lines of the source notebook (grader.leaks) and redacted if it quotes
one, and the finished page is scanned again before it is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2

from .config import GRADER_DIR, Paths, check_id
from .errors import ConfigError, LeakError
from .leaks import course_secrets, find_in_text, redact

TEMPLATE = "feedback.html.j2"

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


def render(record: dict, notebook: str, title: str, secrets: set[str]) -> tuple[str, int]:
    """HTML feedback for one notebook of one record; returns (html, redactions)."""
    r = record["notebooks"][notebook]
    redactions = 0

    def clean(text: str | None) -> str:
        nonlocal redactions
        text, hit = redact(text or "", secrets)
        redactions += hit
        return text

    tests = []
    for t in r["tests"]:
        message = t["message"]
        if t.get("hidden") and not t["passed"]:
            message = hidden_message(message)
        tests.append({**t, "name": clean(t["name"]), "message": clean(message)})
    cells = [
        {"label": c["label"], "status": c["status"], "message": clean(c.get("message"))}
        for c in r.get("cells", [])
        if c["status"] != "ok" and not c["id"].startswith("setup:")
    ]
    html = (
        _env()
        .get_template(TEMPLATE)
        .render(
            assignment_title=title,
            student=record["student"],
            notebook=notebook,
            graded_at=record.get("graded_at", ""),
            score=r["score"],
            max_score=r["max_score"],
            notes=[clean(n) for n in r.get("notes", [])],
            tests=tests,
            cells=cells,
        )
    )
    return html, redactions


def feedback(paths: Paths, assignment: str, students: list[str] | None = None) -> list[Path]:
    """Write ``<course>/feedback/<student>/<assignment>/<notebook>.html``."""
    paths.check_assignment(assignment)
    course = paths.require_course()
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
    secrets = course_secrets(paths.source / assignment)
    title = _title(paths, assignment)
    written = []
    for sid in ids:
        rpath = graded / sid / assignment / "results.json"
        if not rpath.is_file():
            raise ConfigError(f"{sid} has no autograded {assignment}: run `grader autograde`")
        record = json.loads(rpath.read_text(encoding="utf-8"))
        out_dir = paths.step_dir("feedback", sid, assignment)
        out_dir.mkdir(parents=True, exist_ok=True)
        for nb in record["notebooks"]:
            html, _ = render(record, nb, title, secrets)
            leaks = find_in_text(html, secrets, markers=True)
            if leaks:  # cannot happen after redaction; refuse rather than leak
                raise LeakError(
                    f"feedback for {sid} would contain hidden test code: {leaks[0][1]!r}"
                )
            path = out_dir / f"{nb}.html"
            path.write_text(html, encoding="utf-8")
            written.append(path)
    return written
