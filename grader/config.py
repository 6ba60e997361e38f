"""Where things live, and the nbgrader configuration the grader passes explicitly.

The repository holds the instructor's source notebooks (``solutions/``) and the
generated student versions (``assignments/``). Student data (submissions,
autograded notebooks, feedback, ``gradebook.db``) lives in a course folder the
instructor chooses (``--course DIR`` or ``$GRADER_COURSE``), outside version
control. ``grader/nbgrader_config.py`` is loaded explicitly, so commands behave
the same from any working directory.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path

from traitlets import Dict, Float, Int, List, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

from .errors import ConfigError

GRADER_DIR = Path(__file__).resolve().parent
REPO_ROOT = GRADER_DIR.parent
NBGRADER_CONFIG = GRADER_DIR / "nbgrader_config.py"
COURSE_ENV = "GRADER_COURSE"

# \A and \Z, never ^ and $: "$" also matches before a final newline, and an id
# ending in one would split a CSV row
ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")


class GraderSettings(Configurable):
    """The grader's own settings (``c.GraderSettings.*`` in nbgrader_config.py)."""

    cell_timeout = Float(30.0, help="Seconds allowed per cell and per test cell.").tag(config=True)
    notebook_timeout = Float(
        120.0, help="Seconds allowed for one notebook, sandbox start-up included."
    ).tag(config=True)
    trusted_timeout = Float(
        120.0,
        help="Seconds of the instructor's own code per test cell in the test runner "
        "(reference computations, models built from student data).",
    ).tag(config=True)
    memory_mb = Int(
        2048,
        help="Memory of a submission's process in MB: the limit of its memory cgroup, which "
        "counts everything it holds, where the machine has one; also its address-space limit "
        "(RLIMIT_AS) unless address_space_mb is set.",
    ).tag(config=True)
    address_space_mb = Int(
        0,
        help="Address-space limit (RLIMIT_AS) of a submission's process in MB; 0: memory_mb. "
        "TensorFlow reserves far more address space than it uses: raise this, not memory_mb, "
        "for Keras assignments.",
    ).tag(config=True)
    runner_memory_mb = Int(
        4096,
        help="Memory of each trusted test runner in MB (it builds models from student data).",
    ).tag(config=True)
    workers = Int(2, help="Submissions graded at the same time.").tag(config=True)
    sandbox_packages = List(
        Unicode(),
        help="What a submission can import besides the standard library: distribution names "
        "('keras') or top-level package names ('tensorflow'), each with everything it depends "
        "on. IPython and NumPy (the worker's own needs) are always there; nothing else "
        "installed is visible in the bubblewrap sandbox.",
    ).tag(config=True)
    hidden_packages = List(
        Unicode(),
        help="Top-level packages a submission never sees, even as a dependency of an allowed "
        "one (the tests still use them).",
    ).tag(config=True)
    warm_imports = List(Unicode(), help="Modules each grading worker imports once, up front.").tag(
        config=True
    )
    assignments = Dict(
        help="Per-assignment overrides of the settings above: {assignment: {setting: value}}.",
    ).tag(config=True)
    lms_columns = Dict(
        help="Column titles in canvas.csv and moodle.csv: {assignment: title as the LMS "
        "shows it}, e.g. {'a1_convolution_from_scratch': 'Assignment 1 (12345)'}.",
    ).tag(config=True)
    sandbox = Unicode(
        "auto",
        help="'auto' (bubblewrap if it works, else a loud fallback), "
        "'bubblewrap' (refuse without it) or 'rlimits' (no bubblewrap).",
    ).tag(config=True)


# The per-assignment settings of an assignment whose students use Keras (TensorFlow
# backend) in the sandbox: grader/nbgrader_config.py gives them to A4-A6. TensorFlow
# reserves about 2 GB of address space it does not use, so the address-space limit
# sits 1 GB above the memory cgroup's: an ordinary allocation that is too big fails
# with MemoryError, and the cgroup still counts everything (grader/README.md, "Keras in
# the sandbox", has the figures).
KERAS_SANDBOX = {
    "sandbox_packages": ["numpy", "keras", "tensorflow"],
    "memory_mb": 3072,
    "address_space_mb": 4096,
    "notebook_timeout": 180,
}


def check_id(kind: str, value: str) -> str:
    """Student and assignment ids become folder names: keep them tame."""
    if not ID_RE.match(value or ""):
        raise ConfigError(
            f"{kind} {value!r} is not a valid id: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (at most 64 characters)"
        )
    return value


def load_config(extra: Path | None = None) -> Config:
    """Load grader/nbgrader_config.py (and optionally one more file on top)."""
    cfg = PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(GRADER_DIR)).load_config()
    if extra is not None:
        extra = Path(extra)
        if not extra.is_file():
            raise ConfigError(f"config file {extra} does not exist")
        cfg.merge(PyFileConfigLoader(extra.name, path=str(extra.parent)).load_config())
    return cfg


@dataclass
class Paths:
    """Resolved folders for one invocation."""

    repo: Path
    source: Path  # solutions/
    release: Path  # assignments/
    course: Path | None  # student data, outside version control

    def require_course(self) -> Path:
        if self.course is None:
            raise ConfigError(
                f"no course folder: pass --course DIR or set ${COURSE_ENV} "
                "(a folder outside the repository for submissions and the gradebook)"
            )
        return self.course

    def require_existing_course(self) -> Path:
        """The course folder, which must exist: a mistyped --course is an error, never
        a new empty course (only `grader collect` creates one)."""
        course = self.require_course()
        if not course.is_dir():
            raise ConfigError(
                f"course folder {course} does not exist: check --course (or "
                f"${COURSE_ENV}); `grader collect` creates it when it imports submissions"
            )
        return course

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.require_course() / 'gradebook.db'}"

    def step_dir(self, step: str, student: str, assignment: str) -> Path:
        return self.require_course() / step / student / assignment

    def assignments(self) -> list[str]:
        """Assignment ids: the folders of solutions/ holding notebooks."""
        if not self.source.is_dir():
            return []
        return sorted(
            p.name for p in self.source.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))
        )

    def check_assignment(self, assignment: str) -> str:
        check_id("assignment", assignment)
        if not (self.source / assignment).is_dir():
            known = ", ".join(self.assignments()) or "none"
            raise ConfigError(
                f"unknown assignment {assignment!r}: no folder {self.source / assignment} "
                f"(known: {known})"
            )
        return assignment


def resolve_paths(
    cfg: Config, course: str | os.PathLike | None = None, repo: Path | None = None
) -> Paths:
    repo = Path(repo or REPO_ROOT).resolve()
    cd = cfg.CourseDirectory
    source = Path(cd.get("source_directory", "solutions"))
    release = Path(cd.get("release_directory", "assignments"))
    course = course or os.environ.get(COURSE_ENV) or None
    course_path = Path(course).expanduser().resolve() if course else None
    if course_path is not None:
        inside = course_path == repo or repo in course_path.parents
        if inside and not _ignored_by_git(course_path, repo):
            raise ConfigError(
                f"course folder {course_path} is inside the repository and not ignored by "
                "git: student data must stay out of version control (use a folder outside "
                "the repository, or one matched by .gitignore such as course/)"
            )
    return Paths(
        repo=repo,
        source=source if source.is_absolute() else repo / source,
        release=release if release.is_absolute() else repo / release,
        course=course_path,
    )


def _ignored_by_git(path: Path, repo: Path) -> bool:
    import subprocess

    try:
        res = subprocess.run(
            ["git", "-C", str(repo), "check-ignore", "-q", str(path)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def venv_on_path() -> None:
    """nbgrader's Gradebook runs the ``alembic`` command: make this environment's
    scripts findable even when the grader runs as ``.venv/bin/python -m grader``."""
    import sys

    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *[p for p in parts if p]])


OVERRIDABLE = (
    "workers",
    "cell_timeout",
    "notebook_timeout",
    "trusted_timeout",
    "memory_mb",
    "address_space_mb",
    "runner_memory_mb",
    "sandbox_packages",
    "hidden_packages",
    "warm_imports",
)


def settings(cfg: Config, assignment: str | None = None) -> GraderSettings:
    """The grader's settings, with ``assignment``'s overrides applied."""
    st = GraderSettings(config=cfg)
    if assignment is not None:
        overrides = st.assignments.get(assignment, {})
        unknown = set(overrides) - set(OVERRIDABLE)
        if unknown:
            raise ConfigError(
                f"GraderSettings.assignments[{assignment!r}] has unknown settings "
                f"{sorted(unknown)}; allowed: {', '.join(OVERRIDABLE)}"
            )
        for key, value in overrides.items():
            setattr(st, key, value)
    return st


def nbgrader_config(cfg: Config, paths: Paths, *, root: Path, db_url: str | None) -> Config:
    """A copy of ``cfg`` with absolute nbgrader folders, for nbgrader's converters."""
    out = copy.deepcopy(cfg)  # Config.merge shares sections: never alter the caller's
    out.CourseDirectory.root = str(root)
    out.CourseDirectory.source_directory = str(paths.source)
    out.CourseDirectory.release_directory = str(paths.release)
    if db_url is not None:
        out.CourseDirectory.db_url = db_url
    return out
