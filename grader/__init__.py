"""Instructor tool for the course's nbgrader assignments.

release -> collect -> autograde -> feedback -> export; see grader/README.md.
Kept free of heavy imports: the sandboxed submission worker imports
``grader._student`` and ``grader.wire`` only.
"""

__version__ = "0.1.0"
