"""Running the instructor's read-only and test cells in the trusted runner.

A test passes when the instructor's code runs to the end here. Before each test
cell the namespace gets fresh proxies for the submission's functions (grader.
session), ``grading_rng`` (this student's hidden cases, grader.cases) and
``_case = None``; the cell runs under the trusted clock (grader.clock).

What a failed check says depends on where it failed. In the visible part (code
the student has) the message is the exception's own. In the hidden part it is
built from the exception's *type* and the ``_case`` the test named just before
the check, nothing else: an assertion's text can hold the expected values
("returned 30, Keras' Conv1D gives 31") and a student's own exception text can
echo the hidden inputs. The full text is kept for the instructor only, in
``detail``.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable

from .caps import MAX_CASE_CHARS, shorten
from .clock import TrustedClock, TrustedTimeout
from .errors import GradingError
from .notebooks import HIDDEN_MARKERS, NotebookSpec, SpecCell
from .session import (
    Limits,
    Session,
    SubmissionCrashed,
    SubmissionError,
    SubmissionTimeout,
    make_proxy,
)

_MAGIC = re.compile(r"^\s*[%!]")


def _trusted_source(src: str) -> str:
    return "\n".join("" if _MAGIC.match(line) else line for line in src.split("\n"))


def empty_test(c: SpecCell, message: str) -> dict:
    return {
        "grade_id": c.grade_id,
        "name": c.name,
        "points": 0.0,
        "max_points": c.points,
        "passed": False,
        "message": message,
        "seconds": 0.0,
    }


class TestRunner:
    """The test namespace of one submitted notebook, and the cells run in it."""

    def __init__(
        self,
        spec: NotebookSpec,
        session: Session,
        limits: Limits,
        clock: TrustedClock,
        grading_rng: Callable | None = None,
    ):
        self.spec = spec
        self.session = session
        self.limits = limits
        self.clock = clock
        self.grading_rng = grading_rng
        self.ns: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.functions: list[str] = []
        self.values: list[str] = []
        self.defined_in: dict[str, str] = {}  # name -> grade_id of the answer cell
        for c in spec.cells:
            if c.role == "answer":
                self.functions += c.functions
                self.values += c.values
                for name in c.functions + c.values:
                    self.defined_in.setdefault(name, c.grade_id)
        self.overran = False  # the trusted clock stopped a cell: recycle the runner

    def run(self, report: Callable[[dict], None] | None = None) -> list[dict]:
        """Run the setup and test cells in order; ``report`` gets each test's result."""
        results = []
        for c in self.spec.cells:
            if c.role == "setup":
                self.run_setup(c)
            elif c.role == "test":
                result = self.run_test(c)
                results.append(result)
                if report:
                    report(result)
        return results

    def run_setup(self, c: SpecCell) -> None:
        try:
            with self.clock.limit(self.limits.trusted_timeout):
                exec(compile(_trusted_source(c.source), f"<setup {c.grade_id}>", "exec"), self.ns)
        except (Exception, TrustedTimeout) as exc:
            raise GradingError(
                f"the instructor's setup cell '{c.grade_id}' failed in the test runner: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _prepare(self, c: SpecCell) -> None:
        ns = self.ns
        ns["_case"] = None
        if self.grading_rng is not None:
            ns["grading_rng"] = self.grading_rng
        for name in self.functions:
            ns[name] = make_proxy(self.session, name)
        for name in self.values:
            ns.pop(name, None)
            if re.search(rf"\b{re.escape(name)}\b", c.source):
                try:
                    ns[name] = self.session.request({"op": "get", "name": name}, name)
                except SubmissionError:
                    pass  # the test then fails with a NameError

    def run_test(self, c: SpecCell) -> dict:
        r = empty_test(c, "")
        session, limits = self.session, self.limits
        if session.remaining() <= 0:
            r["message"] = (
                f"not run: the notebook's time limit ({limits.notebook_timeout:g} s) was reached"
            )
            return r
        # the submission's functions get cell_timeout in total per test cell; the
        # instructor's own code (references such as Keras) has trusted_timeout
        session.budget = limits.cell_timeout
        t0 = time.monotonic()
        try:
            with self.clock.limit(limits.trusted_timeout):
                self._prepare(c)
                exec(compile(_trusted_source(c.source), f"<test {c.grade_id}>", "exec"), self.ns)
            r["passed"], r["points"], r["message"] = True, c.points, "passed"
        except KeyboardInterrupt:
            raise
        except GradingError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any failure of the test is a fail
            if isinstance(exc, TrustedTimeout):
                self.overran = True
            r["hidden"] = failed_in_hidden_part(c, exc)
            r["detail"] = full_message(exc, limits)
            if r["hidden"]:
                r["message"] = hidden_message(exc, self.ns.get("_case"), limits)
            else:
                r["message"] = r.pop("detail")
            missing = self.undefined_because_cell_failed(exc)
            if missing:
                r["message"] = missing
        r["seconds"] = round(time.monotonic() - t0, 3)
        return r

    def undefined_because_cell_failed(self, exc: BaseException) -> str | None:
        """Why a name of the submission is undefined, when the answer cell defining it
        did not run cleanly: say the cell failed, not just "NameError"."""
        if not (isinstance(exc, SubmissionError) and exc.etype == "NameError"):
            return None
        grade_id = self.defined_in.get(exc.function)
        status = self.session.status.get(f"answer:{grade_id}") if grade_id else None
        if not status or status["status"] == "ok":
            return None
        how = {"timeout": "ran past its time limit", "crashed": "ended its process"}.get(
            status["status"], "failed to run"
        )
        why = (status.get("message") or "").strip().splitlines()
        return (
            f"{exc.function} is not defined: answer cell '{grade_id}', which defines it, {how}"
            + (f" ({shorten(why[0], 300)})" if why else "")
            + "; see the cells that did not run cleanly"
        )


def full_message(exc: BaseException, limits: Limits) -> str:
    """What a failure says where the student may read everything the test did."""
    if isinstance(exc, TrustedTimeout):
        return trusted_timeout_message(limits)
    msg = str(exc).strip()
    if isinstance(exc, (SubmissionError, SubmissionTimeout, SubmissionCrashed)):
        return shorten(msg)
    return shorten(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)


def trusted_timeout_message(limits: Limits) -> str:
    return (
        f"the grader's checks of your answers ran past their time limit "
        f"({limits.trusted_timeout:g} s); this test counts 0"
    )


def hidden_message(exc: BaseException, case, limits: Limits) -> str:
    """A failed hidden check's message: the exception's type and the case, nothing else."""
    on_case = f" on the case: {shorten(case, MAX_CASE_CHARS)}" if case is not None else ""
    if isinstance(exc, SubmissionError):
        return f"a hidden check failed: {exc.function} raised {exc.etype}{on_case}"
    if isinstance(exc, SubmissionTimeout):
        return f"a hidden check failed: {exc}{on_case}"  # the grader's own words
    if isinstance(exc, SubmissionCrashed):
        return (
            f"a hidden check failed: the process running {exc.function or 'your code'} "
            f"ended or answered with invalid data{on_case}"
        )
    if isinstance(exc, TrustedTimeout):
        return f"a hidden check failed: {trusted_timeout_message(limits)}{on_case}"
    return f"a hidden check failed ({type(exc).__name__}){on_case}"


def _hidden_lines(source: str) -> set[int]:
    lines, hidden = set(), False
    for n, line in enumerate(source.split("\n"), start=1):
        if HIDDEN_MARKERS[0] in line:
            hidden = True
        elif HIDDEN_MARKERS[1] in line:
            hidden = False
        elif hidden:
            lines.add(n)
    return lines


def failed_in_hidden_part(c: SpecCell, exc: BaseException) -> bool:
    """Whether the test cell stopped on a line of its hidden part."""
    filename = f"<test {c.grade_id}>"
    lineno = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno is not None and lineno in _hidden_lines(c.source)
