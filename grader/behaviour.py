"""Behavioural leak check: can any function a student can read earn a point?

The text-based check (grader.leaks) finds copied *lines*. This one looks at
*behaviour*: every function of the helper package (``cnn_course``, what students
install) and every top-level function the chapters define (code cells, and the
exercise solutions in Markdown), is bound in turn to each function name an
assignment asks for, and the assignment's test cells, hidden tests included, run
against it. If a candidate makes a test cell pass, the check fails, naming the
candidate, the assignment's function and the test.

Binding. A renamed copy must be caught too, so a candidate is tried for every
answer name whose signature it fits, not only for its own name: the test's call
is bound to the answer's signature (defaults applied), and the values go to the
candidate positionally, the required parameters in order, the optional ones in
every order (``conv_output_size(n, k, padding, stride)`` also tries
``(n, k, stride, padding)``). A candidate with fewer parameters gets a prefix
(a copy that ignores stride and padding is still tried). The other answers stay
the released stubs, which raise ``NotImplementedError``.

Bounds. Everything runs in a child process (one per assignment) with an
address-space limit, a wall-clock limit per test cell (SIGALRM) and one for the
whole child, in a temporary working directory with its own home and caches, so a
candidate called with arguments it was never meant for (a 7×4096×4096 layer, a
download) cannot take the machine. The candidates are the course's own code, not
student code; the child is not a sandbox.

Fidelity. The same harness grades the solution (it must earn every point) and
the stubs (none), and reports both, so a broken harness cannot pass silently.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import json
import os
import pkgutil
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .cases import grading_rng_for
from .errors import ConfigError, GraderError
from .notebooks import build_spec, cell_role, read_notebook
from .testcells import _trusted_source

CELL_SECONDS = 20.0  # per test cell and binding (the test's own references included)
LOAD_SECONDS = 60.0  # per chapter statement executed to give a candidate its globals
CHILD_SECONDS = 1200.0  # per assignment
MEMORY_MB = 3072  # address space a child may add after its imports
MAX_PERMUTED = 4  # optional parameters tried in every order up to this many
CHECK_SECRET = "5" * 64  # the course secret of the check's hidden cases
_FENCE = re.compile(r"^([ \t]*)```(?:python|ipython3?)[ \t]*\n(.*?)^\1```", re.M | re.S)


class BehaviourCheckError(GraderError):
    """The behavioural check itself could not run (not a leak)."""


@dataclass(frozen=True)
class BehaviourLeak:
    """A candidate that earned a test cell's points."""

    assignment: str
    test: str  # grade_id of the test cell
    points: float
    answer: str  # the assignment's function the candidate was bound to
    candidate: str  # where the candidate lives, e.g. cnn_course.shapes.conv_output_size
    call: str  # the answer's values as the candidate received them: "n, k, stride, padding"

    def __str__(self) -> str:
        return (
            f"{self.assignment}: {self.test} ({self.points:g} points) passes with "
            f"{self.answer} = {self.candidate}, given ({self.call})"
        )


@dataclass
class AssignmentRun:
    assignment: str
    max_points: float
    solution_points: float  # what the solution earns in this harness (must be max)
    stub_points: float  # what the unanswered stubs earn (must be 0)
    candidates: int
    bindings: int
    seconds: float
    leaks: list[BehaviourLeak] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # every candidate, by where it lives
    notes: list[str] = field(default_factory=list)


@dataclass
class BehaviourReport:
    runs: list[AssignmentRun]

    @property
    def leaks(self) -> list[BehaviourLeak]:
        return [leak for r in self.runs for leak in r.leaks]

    def points_by_candidate(self) -> dict[str, dict[str, float]]:
        """{assignment: {candidate: points earned}} (each test cell counted once)."""
        out: dict[str, dict[str, float]] = {}
        for r in self.runs:
            per: dict[str, dict[str, float]] = {}
            for leak in r.leaks:
                per.setdefault(leak.candidate, {})[leak.test] = leak.points
            out[r.assignment] = {c: sum(t.values()) for c, t in sorted(per.items())}
        return out

    def summary(self) -> str:
        lines = []
        for r in self.runs:
            earned = {leak.test: leak.points for leak in r.leaks}
            lines.append(
                f"{r.assignment}: {len(r.leaks)} leaks worth {sum(earned.values()):g} of "
                f"{r.max_points:g} points; {r.candidates} candidates, {r.bindings} bindings "
                f"in {r.seconds:.0f} s (this harness gives the solution "
                f"{r.solution_points:g}/{r.max_points:g}, the stubs {r.stub_points:g})"
            )
        return "\n".join(lines)


# =========================================================================== parent side
def check_behaviour(
    paths,
    assignments: list[str] | None = None,
    packages: list[str] | None = None,
    chapters: list[Path] | None = None,
    python_path: list[Path] | None = None,
    child_seconds: float = CHILD_SECONDS,
    memory_mb: int = MEMORY_MB,
) -> BehaviourReport:
    """Run every assignment's test cells against every candidate function.

    ``packages`` are importable package names (default: ``cnn_course``), ``chapters``
    notebooks (default: ``chapters/*.ipynb`` of the repository), ``python_path``
    folders put first on the child's ``sys.path`` (to check a package that is not
    installed). Raises BehaviourCheckError if the harness cannot be trusted (the
    solution does not earn every point, or the stubs earn some).
    """
    assignments = assignments or paths.assignments()
    packages = ["cnn_course"] if packages is None else list(packages)
    if chapters is None:
        chapters = sorted((paths.repo / "chapters").glob("*.ipynb"))
    jobs = []
    for assignment in assignments:
        paths.check_assignment(assignment)
        jobs.append({
            "assignment": assignment,
            "specs": [s.to_dict() for s in _specs(paths, assignment)],
            "solutions": _solution_answers(paths, assignment),
        })
    job = {
        "assignments": jobs,
        "packages": packages,
        "chapters": [str(Path(c).resolve()) for c in chapters],
        "python_path": [str(Path(p).resolve()) for p in python_path or []],
        "memory_mb": memory_mb,
    }
    runs = _run_child(job, child_seconds * max(len(jobs), 1))
    for run in runs:
        if run.solution_points != run.max_points or run.stub_points != 0:
            raise BehaviourCheckError(
                f"{run.assignment}: the behavioural check's harness gives the solution "
                f"{run.solution_points:g}/{run.max_points:g} and the unanswered stubs "
                f"{run.stub_points:g}; it cannot judge candidates until both are right "
                f"(notes: {'; '.join(run.notes[:5]) or 'none'})"
            )
    return BehaviourReport(runs)


def _specs(paths, assignment: str):
    specs = []
    for nb_path in sorted((paths.source / assignment).glob("*.ipynb")):
        release = paths.release / assignment / nb_path.name
        if not release.is_file():
            raise ConfigError(f"{release} is missing: run `grader release {assignment}` first")
        specs.append(
            build_spec(assignment, nb_path.stem, read_notebook(nb_path), read_notebook(release))
        )
    return specs


def _solution_answers(paths, assignment: str) -> dict[str, str]:
    """grade_id -> the solution's answer code (markers removed), for the baseline."""
    out = {}
    for nb_path in sorted((paths.source / assignment).glob("*.ipynb")):
        for cell in read_notebook(nb_path).cells:
            if cell_role(cell) == "answer":
                lines = [ln for ln in cell.source.split("\n") if "SOLUTION" not in ln]
                out[cell.metadata["nbgrader"]["grade_id"]] = "\n".join(lines)
    return out


def _run_child(job: dict, seconds: float) -> list[AssignmentRun]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["MPLBACKEND"] = "Agg"
    with tempfile.TemporaryDirectory(prefix="grader-behaviour-") as tmp:
        for sub in ("home", "cache", "keras"):
            Path(tmp, sub).mkdir()
        # the package's own cache of decoded datasets is kept: rebuilding it is slow
        env.setdefault("CNN_COURSE_CACHE", str(Path.home() / ".cache" / "cnn_course"))
        env.update(HOME=f"{tmp}/home", XDG_CACHE_HOME=f"{tmp}/cache")
        env.setdefault("KERAS_HOME", f"{tmp}/keras")
        log = Path(tmp, "child.log")
        repo = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
        with open(log, "wb") as err:
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "grader.behaviour"],
                    input=json.dumps(job).encode(),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    cwd=tmp,
                    env=env,
                    timeout=seconds,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise BehaviourCheckError(
                    f"the behavioural check did not finish in {seconds:g} s"
                    f"\n{_tail(log)}"
                ) from None
        lines = proc.stdout.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BehaviourCheckError(
                f"the behavioural check's process failed "
                f"(exit status {proc.returncode})\n{_tail(log)}"
            )
    runs = []
    for d in json.loads(lines[-1]):
        d["leaks"] = [BehaviourLeak(**x) for x in d["leaks"]]
        runs.append(AssignmentRun(**d))
    return runs


def _tail(log: Path, chars: int = 3000) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text[-chars:]


# =========================================================================== child side
class CellTimeout(BaseException):  # noqa: N818 - BaseException: a test cannot swallow it
    """A test cell ran past CELL_SECONDS."""


class _Alarm:
    """Raise CellTimeout in this (main) thread after ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _fire(self, signum, frame):
        raise CellTimeout(f"ran past {self.seconds:g} s")

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False


@dataclass
class Candidate:
    label: str  # cnn_course.shapes.conv_output_size, or chapters/02_x.ipynb: corr2d
    function: object


def _fits(sig_answer: inspect.Signature, fn) -> bool:
    """Whether ``fn`` can be called with the answer's values, positionally."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in params):
        return False
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = sum(p.default is p.empty for p in positional)
    answer = list(sig_answer.parameters.values())
    answer_required = sum(p.default is p.empty for p in answer)
    capacity = float("inf") if varargs else len(positional)
    return answer_required <= capacity and required <= len(answer)


def _orders(sig_answer: inspect.Signature, fn) -> list[list[int]]:
    """Index lists into the answer's parameters, one per way of calling ``fn``."""
    answer = list(sig_answer.parameters.values())
    required = [i for i, p in enumerate(answer) if p.default is p.empty]
    optional = [i for i, p in enumerate(answer) if p.default is not p.empty]
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        capacity = len(answer)
    else:
        capacity = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    n_fn_required = sum(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in params
    )
    perms = (
        itertools.permutations(optional) if len(optional) <= MAX_PERMUTED else [tuple(optional)]
    )
    seen, out = set(), []
    for perm in perms:
        order = (required + list(perm))[:capacity]
        if len(order) < n_fn_required:
            continue
        if tuple(order) not in seen:
            seen.add(tuple(order))
            out.append(order)
    return out


def _adapter(fn, sig_answer: inspect.Signature, order: list[int]):
    names = list(sig_answer.parameters)

    def bound(*args, **kwargs):
        ba = sig_answer.bind(*args, **kwargs)
        ba.apply_defaults()
        values = [ba.arguments[n] for n in names]
        return fn(*[values[i] for i in order])

    return bound


# --------------------------------------------------------------------------- candidates
def package_candidates(package: str, notes: list[str]) -> list[Candidate]:
    """Every function defined at the top of every module of ``package``."""
    import importlib

    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            notes.append(f"could not import {info.name}: {type(exc).__name__}: {exc}")
    out = []
    for module in modules:
        for name, obj in sorted(vars(module).items()):
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                out.append(Candidate(f"{module.__name__}.{name}", obj))
    return out


def _code_blocks(nb) -> list[tuple[str, str]]:
    """(label, source) of every code cell and every fenced Python block in Markdown."""
    blocks = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            blocks.append((f"cell {i}", _trusted_source(cell.source)))
        elif cell.cell_type == "markdown":
            for m in _FENCE.finditer(cell.source):
                blocks.append((f"cell {i} (Markdown)", textwrap.dedent(m.group(2))))
    return blocks


def _targets(node) -> set[str]:
    names = set()
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for t in targets:
        for sub in ast.walk(t):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
    return names


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def chapter_candidates(
    path: Path, answers: list[inspect.Signature], notes: list[str]
) -> list[Candidate]:
    """Every top-level function of a chapter, with the globals it needs.

    Imports and definitions run first; then only the assignments that some
    candidate fitting an answer's signature reads (directly or through another
    such assignment), each under a time limit. Cells that train or plot do not
    run unless a candidate needs their result.
    """
    label = f"chapters/{Path(path).name}"
    statements = []
    for where, src in _code_blocks(read_notebook(path)):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            notes.append(f"{label}, {where}: not parsed (syntax error)")
            continue
        statements += [(where, node) for node in tree.body]
    ns: dict = {"__name__": "__chapter__", "__builtins__": builtins}
    defined: list[str] = []

    def run(where, node, seconds=LOAD_SECONDS):
        try:
            with _Alarm(seconds):
                exec(compile(ast.Module([node], []), f"<{label} {where}>", "exec"), ns)  # noqa: S102
            return True
        except BaseException as exc:  # noqa: BLE001 - a chapter statement that fails is skipped
            if isinstance(exc, KeyboardInterrupt):
                raise
            notes.append(f"{label}, {where}: skipped ({type(exc).__name__})")
            return False

    for where, node in statements:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            if run(where, node) and isinstance(node, ast.FunctionDef):
                defined.append(node.name)
    fitting = [
        n for n in dict.fromkeys(defined)
        if inspect.isfunction(ns.get(n)) and any(_fits(s, ns[n]) for s in answers)
    ]
    needed = set().union(*(_global_names(ns[n].__code__) for n in fitting)) if fitting else set()
    assigns = [(w, n) for w, n in statements if isinstance(n, (ast.Assign, ast.AnnAssign))]
    chosen: set[int] = set()
    while True:
        grown = False
        for i, (_, node) in enumerate(assigns):
            if i not in chosen and _targets(node) & needed:
                chosen.add(i)
                needed |= {s.id for s in ast.walk(node) if isinstance(s, ast.Name)}
                grown = True
        if not grown:
            break
    for i, (where, node) in enumerate(assigns):
        if i in chosen:
            run(where, node)
    # definitions again: a later cell may redefine a function (the last one counts)
    return [Candidate(f"{label}: {n}", ns[n]) for n in fitting]


# --------------------------------------------------------------------------- harness
class Harness:
    """The test cells of one assignment notebook, run in-process against bindings."""

    def __init__(self, spec: dict, secret: str = CHECK_SECRET):
        from .notebooks import NotebookSpec

        self.spec = NotebookSpec.from_dict(spec)
        self.ns: dict = {"__name__": "__main__", "__builtins__": builtins}
        # one student's hidden cases, under a course secret (grader.cases)
        self.ns["grading_rng"] = grading_rng_for(secret, self.spec.assignment, "check")
        self.answer_cells = [c for c in self.spec.cells if c.role == "answer"]
        self.tests = [c for c in self.spec.cells if c.role == "test"]
        self.code = {
            c.grade_id: compile(_trusted_source(c.source), f"<test {c.grade_id}>", "exec")
            for c in self.tests
        }
        for c in self.spec.cells:
            if c.role in ("setup", "answer"):
                exec(compile(_trusted_source(c.source), f"<{c.grade_id}>", "exec"), self.ns)  # noqa: S102
        self.stubs = {n: self.ns[n] for c in self.answer_cells for n in c.functions}
        self.signatures = {n: inspect.signature(f) for n, f in self.stubs.items()}
        self.uses = self._uses()

    def _uses(self) -> dict[str, set[str]]:
        """test grade_id -> answer names it can reach (through setup/answer functions)."""
        defs: dict[str, str] = {}
        for c in self.spec.cells:
            if c.role in ("setup", "answer"):
                tree = ast.parse(_trusted_source(c.source))
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef):
                        defs[node.name] = ast.unparse(node)
        words = re.compile(r"[A-Za-z_]\w*")
        out = {}
        for c in self.tests:
            reach, todo = set(), set(words.findall(c.source))
            while todo:
                name = todo.pop()
                if name in reach:
                    continue
                reach.add(name)
                if name in defs:
                    todo |= set(words.findall(defs[name]))
            out[c.grade_id] = reach & set(self.stubs)
        return out

    def run_tests(self, only: str | None = None, notes: list[str] | None = None) -> list[str]:
        """grade_ids of the test cells that pass with the current bindings."""
        passed = []
        for c in self.tests:
            if only is not None and only not in self.uses[c.grade_id]:
                continue
            self.ns["_case"] = None
            try:
                with _Alarm(CELL_SECONDS):
                    exec(self.code[c.grade_id], self.ns)  # noqa: S102
                passed.append(c.grade_id)
            except KeyboardInterrupt:
                raise
            except CellTimeout:
                if notes is not None:
                    notes.append(f"{c.grade_id} ran past {CELL_SECONDS:g} s with {only}")
            except BaseException:  # noqa: BLE001 - any failure is a failed test
                pass
            finally:
                _close_figures()
        return passed

    def points(self, grade_ids) -> float:
        return sum(c.points for c in self.tests if c.grade_id in grade_ids)

    def restore(self) -> None:
        self.ns.update(self.stubs)


def _close_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def _limit_memory(extra_mb: int) -> None:
    import resource

    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize"))
    limit = vm + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def load_candidates(job: dict, signatures: list, notes: list[str]) -> list[Candidate]:
    for p in reversed(job["python_path"]):
        sys.path.insert(0, p)
    candidates: list[Candidate] = []
    for package in job["packages"]:
        candidates += package_candidates(package, notes)
    for chapter in job["chapters"]:
        candidates += chapter_candidates(Path(chapter), signatures, notes)
    return candidates


def run_assignment(job: dict, harnesses: list[Harness], candidates, notes) -> AssignmentRun:
    """Score the solution and the stubs, then every binding of every candidate."""
    t0 = time.monotonic()
    notes = list(notes)
    max_points = sum(h.points(h.code) for h in harnesses)
    stub_points = sum(h.points(h.run_tests(notes=notes)) for h in harnesses)
    solution_points = 0.0
    for h in harnesses:
        for c in h.answer_cells:
            source = job["solutions"][c.grade_id]
            exec(compile(source, f"<solution {c.grade_id}>", "exec"), h.ns)  # noqa: S102
        solution_points += h.points(h.run_tests(notes=notes))
        h.restore()

    leaks, bindings = [], 0
    for h in harnesses:
        for answer, sig in h.signatures.items():
            for cand in candidates:
                if not _fits(sig, cand.function):
                    continue
                for order in _orders(sig, cand.function):
                    bindings += 1
                    h.ns[answer] = _adapter(cand.function, sig, order)
                    passed = h.run_tests(only=answer, notes=notes)
                    h.restore()
                    call = ", ".join(list(sig.parameters)[i] for i in order)
                    for test in passed:
                        leaks.append(
                            BehaviourLeak(
                                job["assignment"], test, h.points([test]), answer, cand.label,
                                call,
                            )
                        )
    return AssignmentRun(
        assignment=job["assignment"],
        max_points=max_points,
        solution_points=solution_points,
        stub_points=stub_points,
        candidates=len(candidates),
        bindings=bindings,
        seconds=round(time.monotonic() - t0, 1),
        leaks=leaks,
        notes=notes,
        labels=[c.label for c in candidates],
    )


def run_job(job: dict) -> list[AssignmentRun]:
    import keras  # noqa: F401 - loaded before the memory limit: the tests need it
    import numpy  # noqa: F401
    import tensorflow  # noqa: F401

    _limit_memory(job["memory_mb"])
    notes: list[str] = []
    harnesses = {a["assignment"]: [Harness(s) for s in a["specs"]] for a in job["assignments"]}
    signatures = [s for hs in harnesses.values() for h in hs for s in h.signatures.values()]
    t0 = time.monotonic()
    candidates = load_candidates(job, signatures, notes)
    notes.append(f"{len(candidates)} candidates loaded in {time.monotonic() - t0:.0f} s")
    return [
        run_assignment(a, harnesses[a["assignment"]], candidates, notes)
        for a in job["assignments"]
    ]


def _child_main() -> None:
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what candidates and tests print goes to the log
    sys.stdout = sys.stderr
    job = json.loads(sys.stdin.read())
    runs = run_job(job)
    proto.write(json.dumps([asdict(r) for r in runs]) + "\n")
    proto.flush()


if __name__ == "__main__":
    _child_main()
