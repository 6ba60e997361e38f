"""Caps on what one submission can make the grader run and record.

Without them a 4.3 MB notebook of 30,000 failing cells made a 172 MB
``results.json`` and a 47 MB feedback page, and 150,000 copies of a test cell
made a 15.8 MB page of notes. Whatever goes past a cap is dropped, and a note
says what was dropped.
"""

from __future__ import annotations

MAX_OWN_CELLS = 300  # the student's own code cells run per notebook
MAX_NOTES = 40  # notes per notebook
MAX_NOTE_CHARS = 400
MAX_MESSAGE_CHARS = 1500  # one test's or one cell's message
MAX_OUTPUT_CHARS = 4000  # what one cell printed
MAX_CELL_TEXT_CHARS = 100_000  # messages and printed output of all cells of a notebook
MAX_CASE_CHARS = 300  # a hidden check's description of its case
MAX_ID_CHARS = 60  # a grade_id quoted from a submission


def shorten(text, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " [...]"


def quote_id(value) -> str:
    """A grade_id from a submission's metadata, quoted and short enough for a note."""
    text = str(value)
    if len(text) > MAX_ID_CHARS:
        return repr(text[:MAX_ID_CHARS]) + "..."
    return repr(text)


class Notes:
    """A notebook's notes. Those about single cells of the submission (as many as
    it has cells) are kept up to MAX_NOTES, the rest counted in one last note;
    the others are bounded by the assignment (one per cell of the spec)."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.per_cell = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        self.kept.append(shorten(text, MAX_NOTE_CHARS))

    def add_per_cell(self, text: str) -> None:
        self.per_cell += 1
        if self.per_cell <= MAX_NOTES:
            self.add(text)
        else:
            self.dropped += 1

    def as_list(self) -> list[str]:
        if not self.dropped:
            return list(self.kept)
        return self.kept + [
            f"{self.dropped:,} more notes about single cells were dropped "
            f"(at most {MAX_NOTES} are kept per notebook)"
        ]


class TextBudget:
    """Hands out at most ``limit`` characters in all; counts what it refused."""

    def __init__(self, limit: int = MAX_CELL_TEXT_CHARS) -> None:
        self.left = limit
        self.limit = limit
        self.dropped = 0

    def take(self, text: str | None) -> str | None:
        if not text:
            return text
        if len(text) <= self.left:
            self.left -= len(text)
            return text
        kept = text[: self.left]
        self.dropped += len(text) - len(kept)
        self.left = 0
        return kept + " [... dropped]" if kept else "[dropped]"

    def note(self) -> str | None:
        if not self.dropped:
            return None
        return (
            f"the messages and printed output of your cells were cut after "
            f"{self.limit:,} characters in all ({self.dropped:,} more characters dropped)"
        )
