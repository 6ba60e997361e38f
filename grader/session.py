"""One submission's sandboxed worker, seen from the trusted runner.

The session starts the worker (grader.sandbox, grader._student), has it run the
submission's cells, restarts it after a cell that hangs or crashes (leaving that
cell out), and then serves the tests: each function the answer cells define is a
*proxy* in the test namespace, and calling it sends the arguments to the worker
and returns what the student's function returned, as plain data (grader.wire).

A test may pass one of its own functions to the submission
(``numerical_gradient(lambda v: f(v, a), x)``): it crosses as a reference, and
each time the submission calls it the worker asks the runner, which calls the
function here, in the runner, and sends back its value. The submission sees the
values only, never the code, so it cannot read which function it was given.
"""

from __future__ import annotations

import builtins
import logging
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass

from . import wire
from .caps import MAX_OUTPUT_CHARS, shorten
from .clock import TrustedClock
from .errors import GradingError
from .sandbox import Sandbox, Worker

log = logging.getLogger("grader.runner")

MAX_RESULT_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------- exceptions
class SubmissionError(Exception):
    """The submission's function raised an exception (re-raised in the tests)."""

    function = ""  # which function of the submission
    etype = ""  # the type of what it raised, by name


class SubmissionTimeout(BaseException):  # noqa: N818 - BaseException so tests can't swallow it
    """The submission did not answer in time (its worker was killed)."""


class SubmissionCrashed(BaseException):  # noqa: N818
    """The submission's worker died or broke the protocol while answering."""

    def __init__(self, message: str, function: str = ""):
        super().__init__(message)
        self.function = function


_BUILTIN_ERRORS = {
    name: getattr(builtins, name)
    for name in (
        "ValueError",
        "TypeError",
        "IndexError",
        "KeyError",
        "ZeroDivisionError",
        "NotImplementedError",
        "ArithmeticError",
        "RuntimeError",
        "AttributeError",
        "LookupError",
        "NameError",
        "AssertionError",
        "MemoryError",
        "RecursionError",
        "OverflowError",
    )
}
_ERROR_CLASSES: dict[str, type] = {}


def student_exception(function: str, etype, message: str) -> SubmissionError:
    """An exception a test can catch as the builtin type the student raised."""
    base = _BUILTIN_ERRORS.get(etype) if isinstance(etype, str) else None
    if base is None:
        exc = SubmissionError(message)
    else:
        cls = _ERROR_CLASSES.get(etype)
        if cls is None:
            cls = type(f"Submission{etype}", (SubmissionError, base), {})
            _ERROR_CLASSES[etype] = cls
        exc = cls(message)
    exc.function = function
    # a class the submission made could carry data in its name: name builtins only
    cls = getattr(builtins, etype, None) if isinstance(etype, str) else None
    known = isinstance(cls, type) and issubclass(cls, BaseException)
    exc.etype = etype if known else "an exception of its own class"
    return exc


# --------------------------------------------------------------------------- limits
@dataclass
class Limits:
    cell_timeout: float = 30.0  # the submission's time per cell, and per test cell
    notebook_timeout: float = 120.0  # the submission's time per notebook
    startup_timeout: float = 60.0
    trusted_timeout: float = 120.0  # the instructor's own time per test cell (grader.clock)


# --------------------------------------------------------------------------- session
class Session:
    """One submission's worker: runs its cells, restarts it after a crash or hang.

    A cell that hangs, crashes the process or exhausts memory is recorded and
    left out when the worker restarts, so the rest of the notebook still counts.
    Everything here is the submission's time: the trusted clock is paused.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        cells: list[dict],
        limits: Limits,
        clock: TrustedClock | None = None,
    ):
        self.sandbox = sandbox
        self.cells = cells  # [{"id", "source"}]
        self.limits = limits
        self.clock = clock
        # the notebook's time limit counts the submission's time only (start-up,
        # its cells, its function calls), not the tests' own reference computations
        self.used = 0.0
        self.deadline = 0.0  # absolute end of the notebook budget while timing
        self.skip: set[str] = set()
        self.status: dict[str, dict] = {}
        self.worker: Worker | None = None
        self.budget = limits.cell_timeout  # submission time left in the current test cell
        self.infra_failures = 0
        self.restarts = 0
        # functions a test passed to the submission, by reference, while a call runs
        self._functions: dict[int, object] = {}
        self._next_ref = 0
        self._call_deadline: float | None = None  # of the outermost call in progress

    def _paused(self):
        return self.clock.paused() if self.clock else nullcontext()

    # -- lifecycle
    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def _record(self, cid: str, status: str, message: str | None = None, output: str = "") -> None:
        if cid not in self.status:
            self.status[cid] = {"status": status, "message": message, "output": output}

    def remaining(self) -> float:
        return self.limits.notebook_timeout - self.used

    def start(self) -> None:
        """Start the worker and run every cell not skipped; return when it is ready."""
        with self._paused():
            t0 = time.monotonic()
            self.deadline = t0 + self.remaining()
            try:
                self._start()
            finally:
                self.used += time.monotonic() - t0

    def _start(self) -> None:
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                raise SubmissionTimeout("the notebook's time limit was reached")
            worker = self.sandbox.spawn()
            current: str | None = None
            last: str | None = None
            cell_deadline = min(now + self.limits.startup_timeout, self.deadline)
            hello = False
            try:
                msg = wire.recv(worker.from_child, cell_deadline, MAX_RESULT_BYTES)
                if msg.get("ev") != "hello":
                    raise wire.WireError("unexpected first message")
                hello = True
                job = {"cells": [c for c in self.cells if c["id"] not in self.skip]}
                wire.send(worker.to_child, job, cell_deadline)
                while True:
                    msg = wire.recv(worker.from_child, cell_deadline, MAX_RESULT_BYTES)
                    ev = msg.get("ev") if isinstance(msg, dict) else None
                    if ev == "start":
                        current = last = str(msg.get("cell"))
                        cell_deadline = min(
                            time.monotonic() + self.limits.cell_timeout, self.deadline
                        )
                    elif ev == "done" and current is not None:
                        ok = msg.get("ok") is True
                        self._record(
                            current,
                            "ok" if ok else "error",
                            None if ok else shorten(self.explain(str(msg.get("error") or "error"))),
                            shorten(msg.get("output") or "", MAX_OUTPUT_CHARS),
                        )
                        current = None
                    elif ev == "ready":
                        self.worker = worker
                        return
                    else:
                        raise wire.WireError(f"unexpected message {str(msg)[:100]}")
            except wire.WireTimeout:
                worker.kill()
                if current is None and not hello:
                    self._infra(worker, "did not start in time")
                    continue
                culprit = current or last
                if culprit is None:
                    raise SubmissionTimeout("the notebook's time limit was reached") from None
                hit_nb = time.monotonic() >= self.deadline - 0.01
                limit = (
                    f"the notebook's time limit ({self.limits.notebook_timeout:g} s)"
                    if hit_nb
                    else f"the cell time limit ({self.limits.cell_timeout:g} s)"
                )
                self._record(culprit, "timeout", f"stopped: it ran past {limit}")
                self.skip.add(culprit)
            except (wire.PeerGone, wire.WireError) as exc:
                desc = worker.exit_description()
                worker.kill()
                if not hello:
                    self._infra(worker, f"{desc} ({exc})")
                    continue
                culprit = current or last
                if culprit is None:
                    raise SubmissionCrashed(f"the submission's process ended: {desc}") from None
                reason = (
                    f"the process running it ended ({desc}): os._exit, sys.exit in a "
                    "thread, a crash, or the memory limit"
                    if isinstance(exc, wire.PeerGone)
                    else f"it broke the grader's protocol ({exc})"
                )
                self._record(culprit, "crashed", reason)
                self.skip.add(culprit)
            self.restarts += 1

    def explain(self, text: str) -> str:
        """A message the submission's process sent, with what it could not know: that
        a module it failed to import is hidden from submissions on purpose."""
        return explain_hidden_import(text, self.sandbox.cfg.hidden_packages)

    def _infra(self, worker: Worker, what: str) -> None:
        self.infra_failures += 1
        if self.infra_failures >= 3:
            raise GradingError(f"the sandbox could not start a worker: {what}")
        log.warning("sandbox worker failed before running any cell (%s); retrying", what)

    # -- requests
    def request(self, req: dict, label: str):
        """Send one request (call a function, read a variable) and return the value.

        While it runs, the submission may call back the functions passed in it;
        those calls count as the submission's time, and their own code runs on
        the trusted clock."""
        if self.worker is None:
            self.start()
        outermost = self._call_deadline is None
        t0 = time.monotonic()
        if outermost:
            self.deadline = t0 + self.remaining()
            self._call_deadline = min(t0 + max(self.budget, 0.0), self.deadline)
        deadline = self._call_deadline
        worker = self.worker
        try:
            with self._paused():
                msg = self._exchange(worker, req, label, deadline)
        except wire.WireTimeout:
            self.budget = 0.0
            self.close()
            limit = (
                f"the notebook's time limit ({self.limits.notebook_timeout:g} s)"
                if deadline >= self.deadline
                else f"this test's time limit for your code ({self.limits.cell_timeout:g} s)"
            )
            raise SubmissionTimeout(
                f"{label} did not finish before {limit}; the grader stopped it"
            ) from None
        except (wire.PeerGone, wire.WireError) as exc:
            desc = worker.exit_description()
            self.close()
            if isinstance(exc, wire.PeerGone):
                raise SubmissionCrashed(
                    f"the submission's process ended while running {label} ({desc})", label
                ) from None
            raise SubmissionCrashed(f"{label} answered with invalid data ({exc})", label) from None
        except BaseException:
            self.close()  # the worker is mid-call (a trusted function failed or overran)
            raise
        finally:
            if outermost:
                elapsed = time.monotonic() - t0
                self.budget -= elapsed
                self.used += elapsed
                self._call_deadline = None
                self._functions.clear()
        if not isinstance(msg, dict) or msg.get("ev") != "result":
            self.close()
            raise SubmissionCrashed(f"{label} answered with invalid data", label)
        if msg.get("ok") is True:
            return msg.get("value")
        message = self.explain(str(msg.get("message") or "an error"))
        tb = str(msg.get("traceback") or "").strip()
        text = f"{label} raised {message}"
        if tb:
            text += f"\n{shorten(tb, 1000)}"
        raise student_exception(label, msg.get("etype"), text)

    def _exchange(self, worker: Worker, req: dict, label: str, deadline: float):
        """Send the request, serve the submission's calls back, return its answer."""
        wire.send(worker.to_child, req, deadline, where=label, register=self._register)
        while True:
            msg = wire.recv(worker.from_child, deadline, MAX_RESULT_BYTES)
            if not (isinstance(msg, dict) and msg.get("ev") == "callback"):
                return msg
            reply = self._call_back(msg)
            wire.send(worker.to_child, reply, deadline, register=self._register)

    def _register(self, function) -> int:
        ref, self._next_ref = self._next_ref, self._next_ref + 1
        self._functions[ref] = function
        return ref

    def _call_back(self, msg: dict) -> dict:
        """Call the test's function the submission asked for; only plain data goes back,
        and of a failure only the type (its text could quote the test's values)."""
        function = self._functions.get(msg.get("id"))
        if function is None:
            return {"op": "return", "ok": False, "etype": "LookupError"}
        args, kwargs = msg.get("args"), msg.get("kwargs")
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
            return {"op": "return", "ok": False, "etype": "TypeError"}
        with self.clock.running() if self.clock else nullcontext():
            try:
                value = function(*args, **kwargs)
                wire.encode(value)  # plain data only; raises Unencodable otherwise
            except (SubmissionTimeout, SubmissionCrashed):
                raise
            except Exception as exc:  # noqa: BLE001 - the arguments were the submission's
                return {"op": "return", "ok": False, "etype": type(exc).__name__}
        return {"op": "return", "ok": True, "value": value}


_NO_MODULE = re.compile(r"No module named '([A-Za-z_][\w.]*)'")


def explain_hidden_import(text: str, hidden: list[str]) -> str:
    """``No module named 'scipy.signal'`` says nothing of why: add that the grader
    hides the package from submissions of this assignment."""
    m = _NO_MODULE.search(text)
    if not m or m.group(1).split(".")[0] not in hidden:
        return text
    top = m.group(1).split(".")[0]
    return text.replace(
        m.group(0),
        f"{m.group(0)}: {top} is not allowed in this assignment (the grader hides it "
        "from submissions; use NumPy)",
        1,
    )


def make_proxy(session: Session, name: str):
    def proxy(*args, **kwargs):
        return session.request({"op": "call", "name": name, "args": args, "kwargs": kwargs}, name)

    proxy.__name__ = proxy.__qualname__ = name
    proxy.__doc__ = f"Calls the submission's {name} in its sandbox."
    return proxy
