"""Per-student hidden cases: the course secret and ``grading_rng``.

With fixed seeds every student gets the same hidden cases, so a table of cases
revealed by one student's failed checks (or resubmissions) works for the whole
class. Hidden tests draw their cases from ``grading_rng(tag)`` instead, a NumPy
generator seeded from a SHA-256 of the course secret, the assignment, the
student id and the tag: the same student gets the same cases when regraded,
two students get different ones, and without the secret nobody can compute
either.

The secret is ``<course>/.grader_secret``: 32 random bytes as hex, mode 0600,
made the first time the grader needs it. It lives in the course folder (never
in the repository, which the grader refuses as a course folder unless git
ignores it). Deleting it changes every student's hidden cases at the next
grading; back it up with the course folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

import numpy as np

from .errors import ConfigError

SECRET_FILE = ".grader_secret"
_SECRET_RE = re.compile(r"^[0-9a-f]{64}$")


def course_secret(course: Path) -> str:
    """The course secret, made (atomically, mode 0600) if the course has none yet."""
    path = Path(course) / SECRET_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".grader_secret-", dir=course)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # fails if another grader made it first: use theirs
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not _SECRET_RE.match(text):
        raise ConfigError(
            f"{path} is not a course secret (64 hexadecimal digits). Restore it from your "
            "backup; deleting it makes a new one, which changes every student's hidden cases"
        )
    return text


def case_seed(secret: str, assignment: str, student: str, tag: int) -> int:
    """The seed of one student's cases for one tag: SHA-256 of all four, as an integer."""
    material = json.dumps([secret, assignment, student, tag]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(material).digest(), "big")


def grading_rng_for(secret: str, assignment: str, student: str):
    """The ``grading_rng(tag)`` that a test cell sees while grading ``student``."""

    def grading_rng(tag: int) -> np.random.Generator:
        """A NumPy generator for this student's hidden cases; ``tag`` tells tests apart."""
        if type(tag) is not int:
            raise TypeError(f"grading_rng takes an int tag (such as 1001), not {tag!r}")
        return np.random.default_rng(case_seed(secret, assignment, student, tag))

    return grading_rng
