"""Errors the instructor can cause or fix, each with its own CLI exit code."""

from __future__ import annotations


class GraderError(Exception):
    """Base class: something the instructor can fix; the message says what."""

    exit_code = 1


class ConfigError(GraderError):
    """A missing course folder, unknown assignment or bad option."""

    exit_code = 2


class LeakError(GraderError):
    """A student-facing file holds solution code, hidden tests or their markers."""

    exit_code = 3


class StaleReleaseError(GraderError):
    """assignments/ differs from what ``grader release`` regenerates."""

    exit_code = 4


class SpecError(GraderError):
    """A source notebook breaks the assignment rules (metadata, markers, points)."""

    exit_code = 5


class SandboxUnavailable(GraderError):
    """bubblewrap was required (``--sandbox bubblewrap``) but cannot run here."""

    exit_code = 6


class CollectError(GraderError):
    """Submissions could not be imported (missing folder, unreadable zip)."""

    exit_code = 7


class GradingError(GraderError):
    """Grading infrastructure failed (not the submission's fault)."""

    exit_code = 8


class StudentsSkipped(GraderError):
    """Some students' records could not be processed; the others were."""

    exit_code = 9


class SchedulerUnreachable(GraderError):
    """``--scheduler`` names a Dask scheduler that cannot be reached."""

    exit_code = 10


class Interrupted(GraderError):
    """Ctrl-C or SIGTERM: the students graded so far are saved whole, the rest are not."""

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.exit_code = 128 + signum
