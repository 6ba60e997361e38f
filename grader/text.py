"""Text from submissions made safe to print and to write.

A submission controls much of the text the grader handles: exception messages,
printed output, cell sources, nbgrader metadata, file names inside a zip. Such
text can hold characters that break a file or fool a reader:

- a lone surrogate (``"\\ud800"``, easy to make with ``chr(0xD800)`` or a JSON
  escape) cannot be encoded as UTF-8, so writing it to a file or a terminal fails;
- NUL and other control characters, ANSI escape sequences (``"\\x1b[2J"`` clears
  the terminal, ``"\\x1b[32m"`` paints what follows green), carriage returns and
  bidirectional overrides can rewrite what the instructor's terminal or a page
  shows.

One rule makes them harmless: every character that Python's ``repr`` would
escape (``not str.isprintable()``) is replaced by that escape, written out in
plain ASCII (``\\x00``, ``\\x1b``, ``\\ud800``, ``\\u202e``), so it is visible and
inert. Multi-line text keeps its newlines and tabs (``\\r\\n`` becomes ``\\n``);
a single line (a name in a report) escapes them too. Every message, note,
output and file name the grader prints or writes passes through here.
"""

from __future__ import annotations

import re

# runs of characters that may need escaping: anything but printable ASCII
_SUSPECT = re.compile(r"[^\x20-\x7e]+")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escaper(keep: str):
    def fix(match: re.Match) -> str:
        return "".join(c if c.isprintable() or c in keep else _escape(c) for c in match.group())

    return fix


_MULTILINE = _escaper("\n\t")
_SINGLE_LINE = _escaper("")


def shorten(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit:,} more characters not shown]"


def safe_text(text: object, limit: int | None = None) -> str:
    """Multi-line text with every unprintable character escaped (newlines and
    tabs kept), then cut to ``limit`` characters."""
    text = str(text).replace("\r\n", "\n")
    return shorten(_SUSPECT.sub(_MULTILINE, text), limit)


def safe_line(text: object, limit: int | None = None) -> str:
    """One line of text with every unprintable character escaped, newlines too."""
    return shorten(_SUSPECT.sub(_SINGLE_LINE, str(text)), limit)


def safe_data(obj):
    """A JSON-like structure with :func:`safe_text` applied to every string,
    dictionary keys included (a record read back from JSON can hold anything)."""
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_text(k) if isinstance(k, str) else k: safe_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [safe_data(x) for x in obj]
    return obj
