"""Find solution code or hidden-test source in student-facing files.

Student-facing files are the released notebooks, the feedback HTML and the
book's HTML. A leak is either an nbgrader marker (``BEGIN SOLUTION``, ``BEGIN
HIDDEN TESTS``...) or one of the *secret lines* of the source notebooks (see
``grader.notebooks.secret_lines``). HTML is compared as text (tags stripped,
entities decoded), so syntax highlighting cannot hide a match.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .notebooks import ALL_MARKERS, read_notebook, secret_lines

SCANNED_SUFFIXES = {".ipynb", ".html", ".htm", ".md", ".txt", ".json", ".js", ".py", ".csv"}


@dataclass(frozen=True)
class Leak:
    path: str
    kind: str  # "marker" or "secret"
    text: str

    def __str__(self) -> str:
        what = "nbgrader marker" if self.kind == "marker" else "solution/hidden-test line"
        return f"{self.path}: {what}: {self.text}"


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "p", "div", "tr", "li", "pre"):
            self.parts.append("\n")


def _strings(obj, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, list):
        for x in obj:
            _strings(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _strings(x, out)


def text_of(path: Path) -> str:
    """The text a reader could see in a file (all of it, for notebooks)."""
    raw = Path(path).read_bytes().decode("utf-8", errors="replace")
    suffix = Path(path).suffix.lower()
    if suffix in (".ipynb", ".json"):
        try:
            parts: list[str] = []
            _strings(json.loads(raw), parts)
            return "\n".join(parts)
        except ValueError:
            return raw
    if suffix in (".html", ".htm"):
        parser = _TextExtractor()
        parser.feed(raw)
        # keep the raw markup too: secrets inside attributes or scripts count
        return "".join(parser.parts) + "\n" + html.unescape(raw)
    return raw


def _collapse(text: str) -> str:
    return " ".join(text.split())


def find_in_text(text: str, secrets: set[str], markers: bool = True) -> list[tuple[str, str]]:
    found = []
    if markers:
        for m in ALL_MARKERS:
            if m in text:
                found.append(("marker", m))
    flat = _collapse(text)
    for s in sorted(secrets):
        if s in flat:
            found.append(("secret", s))
    return found


def scan_files(paths, secrets: set[str], markers: bool = True) -> list[Leak]:
    leaks = []
    for p in paths:
        p = Path(p)
        for kind, text in find_in_text(text_of(p), secrets, markers):
            leaks.append(Leak(str(p), kind, text))
    return leaks


def iter_files(roots) -> list[Path]:
    files = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(
                p
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SCANNED_SUFFIXES
                and ".ipynb_checkpoints" not in p.parts
            )
    return files


def course_secrets(source_dir: Path) -> set[str]:
    """Secret lines of every source notebook under ``source_dir``."""
    secrets: set[str] = set()
    for nb_path in sorted(Path(source_dir).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        secrets |= secret_lines(read_notebook(nb_path))
    return secrets


def redact(text: str, secrets: set[str]) -> tuple[str, bool]:
    """Replace any secret line (or marker) found in ``text``; report whether it did."""
    hits = find_in_text(text, secrets)
    if not hits:
        return text, False
    out = text
    for _, s in hits:
        pattern = r"\s+".join(re.escape(tok) for tok in s.split())
        out = re.sub(pattern, "[withheld]", out)
    if find_in_text(out, secrets):
        return "[message withheld: it quoted the instructor's code]", True
    return out, True
