"""``grader release``: regenerate the student versions in assignments/.

Runs nbgrader's GenerateAssignment (solutions cleared, hidden tests removed,
cells locked, checksums computed) from solutions/<assignment>/ into a temporary
folder, refuses if any generated file still holds a solution or hidden-test
marker or a secret line, and only then replaces assignments/<assignment>/.
With ``check=True`` nothing is written: it reports whether assignments/ is
exactly what regeneration produces.
"""

from __future__ import annotations

import filecmp
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config

from .config import Paths, nbgrader_config, venv_on_path
from .errors import GraderError, LeakError, SpecError, StaleReleaseError
from .leaks import iter_files, scan_files
from .notebooks import check_source, read_notebook, secret_lines

log = logging.getLogger("grader")


@dataclass
class ReleaseReport:
    assignment: str
    files: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # added, modified or removed


def generate(
    cfg: Config,
    paths: Paths,
    assignment: str,
    out_root: Path,
    db_url: str | None = None,
) -> Path:
    """Run nbgrader GenerateAssignment for one assignment into ``out_root/<assignment>``.

    With ``db_url`` the assignment's cells are also saved into that gradebook
    (what autograde needs); without it no database is touched.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    venv_on_path()

    for nb_path in sorted((paths.source / assignment).glob("*.ipynb")):
        check_source(read_notebook(nb_path), f"{assignment}/{nb_path.name}")

    out_root = Path(out_root)
    with tempfile.TemporaryDirectory(prefix="grader-root-") as root:
        c = nbgrader_config(cfg, paths, root=Path(root), db_url=db_url)
        c.CourseDirectory.release_directory = str(out_root)
        c.CourseDirectory.assignment_id = assignment
        if db_url is None:
            c.GenerateAssignment.no_database = True
            c.SaveCells.enabled = False
        coursedir = CourseDirectory(config=c)
        app = GenerateAssignment(coursedir=coursedir, config=c)
        app.force = True
        app.log.setLevel(logging.WARNING)
        try:
            app.start()
        except Exception as exc:  # nbgrader raises bare exceptions
            raise SpecError(f"nbgrader could not generate {assignment}: {exc}") from exc
    out = out_root / assignment
    if not out.is_dir():
        raise SpecError(f"nbgrader produced nothing for {assignment}")
    return out


def check_generated(paths: Paths, assignment: str, generated: Path) -> None:
    """Refuse generated files that hold markers or solution/hidden-test lines."""
    secrets: set[str] = set()
    for nb_path in sorted((paths.source / assignment).glob("*.ipynb")):
        secrets |= secret_lines(read_notebook(nb_path))
    leaks = scan_files(iter_files([generated]), secrets)
    if leaks:
        listing = "\n  ".join(str(leak) for leak in leaks[:20])
        raise LeakError(
            f"refusing to release {assignment}: the student version would contain "
            f"solution code or hidden tests:\n  {listing}\n"
            "Put every solution between '### BEGIN SOLUTION' and '### END SOLUTION' in an "
            "answer cell, and every hidden test between '### BEGIN HIDDEN TESTS' and "
            "'### END HIDDEN TESTS' in a test cell."
        )


def _relative_files(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and ".ipynb_checkpoints" not in p.parts
    }


def diff_trees(a: Path, b: Path) -> list[str]:
    fa, fb = _relative_files(a), _relative_files(b)
    changed = sorted(fa ^ fb)
    for rel in sorted(fa & fb):
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            changed.append(rel)
    return sorted(changed)


def release(
    cfg: Config, paths: Paths, assignments: list[str] | None = None, check: bool = False
) -> list[ReleaseReport]:
    """Regenerate (or with ``check``, verify) the student versions."""
    names = assignments or paths.assignments()
    if not names:
        raise GraderError(f"no assignments found under {paths.source}")
    reports = []
    stale = []
    for name in names:
        paths.check_assignment(name)
        with tempfile.TemporaryDirectory(prefix="grader-release-") as tmp:
            generated = generate(cfg, paths, name, Path(tmp))
            check_generated(paths, name, generated)
            target = paths.release / name
            report = ReleaseReport(name, sorted(_relative_files(generated)))
            report.changed = diff_trees(generated, target)
            if check:
                if report.changed:
                    stale.append(f"{name}: {', '.join(report.changed)}")
            elif report.changed:
                if target.exists():
                    shutil.rmtree(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(generated, target)
                log.info("released %s (%d files changed)", name, len(report.changed))
            reports.append(report)
    if stale:
        raise StaleReleaseError(
            "assignments/ is not what `grader release` generates:\n  "
            + "\n  ".join(stale)
            + "\nRun `grader release` and commit assignments/."
        )
    return reports
