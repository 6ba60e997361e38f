"""A wall-clock limit on the instructor's own code in the test runner.

A test cell's code is trusted, but what it computes can depend on student
data: A3's ``build_model`` builds whatever layers a submission describes (1,500
ReLU layers took 357 s of the runner's CPU). The runner therefore gives each
test cell ``trusted_timeout`` seconds of its own time. The clock is paused
while the submission's worker runs (that time has its own limits), so a slow
submission never eats into the instructor's allowance, nor the other way round.

It is a ``SIGALRM`` timer: the runner grades in its main thread, and Python
runs signal handlers there between bytecodes. A single C call that never
returns cannot be interrupted this way; autograde's deadline on the whole
runner process covers that.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager


class TrustedTimeout(BaseException):  # noqa: N818 - BaseException: test code cannot catch it
    """The instructor's code in a test cell ran past its wall-clock limit."""


class TrustedClock:
    """Counts down the instructor's time in one test cell; paused during the submission's."""

    def __init__(self) -> None:
        self.seconds = 0.0  # the limit being enforced (for messages)
        self._armed = False
        self._paused_left: float | None = None  # seconds left, while paused

    def _ring(self, signum, frame) -> None:
        if self._armed and self._paused_left is None:
            raise TrustedTimeout(f"the grader's own code ran past its {self.seconds:g} s")
        # a late signal while paused: the time left is re-armed on resume

    @contextmanager
    def limit(self, seconds: float):
        """Run the block with at most ``seconds`` of (unpaused) wall-clock time."""
        previous = signal.signal(signal.SIGALRM, self._ring)
        self.seconds, self._armed, self._paused_left = seconds, True, None
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
        try:
            yield
        finally:
            self._armed, self._paused_left = False, None  # first: a late signal is ignored
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    @contextmanager
    def paused(self):
        """Stop counting while the block runs (the submission's time)."""
        if not self._armed or self._paused_left is not None:
            yield
            return
        self._paused_left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        try:
            yield
        except TrustedTimeout:  # raised by the instructor's code in a call-back: stay stopped
            self._paused_left = None
            raise
        finally:
            left, self._paused_left = self._paused_left, None
            if left is not None:
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))

    @contextmanager
    def running(self):
        """Count again inside a paused block (a test's function called back by the
        submission runs the instructor's code)."""
        if not self._armed or self._paused_left is None:
            yield
            return
        left, self._paused_left = self._paused_left, None
        signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
        try:
            yield
        finally:
            self._paused_left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
