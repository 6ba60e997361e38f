"""Find solution code or hidden-test source in student-facing files.

Student-facing files are the released notebooks, the feedback HTML and the
book's HTML. A leak is an nbgrader marker (``BEGIN SOLUTION``, ``BEGIN HIDDEN
TESTS``...) or code from a solution or hidden-test block of a source notebook
(see ``grader.notebooks.secret_blocks``). Two strengths:

- *strict* (release, feedback): any single distinctive line of any block is a leak;
- *block* (the book, ``grader check-leaks``): a file leaks a block when it holds at
  least ``min_lines`` of that block's distinctive lines (all of them for shorter
  blocks, and never fewer than two), so a chapter that happens to share one line
  with a solution, such as the loop of a 2-D cross-correlation, is not flagged,
  but a copied block is.

HTML is compared as text (tags stripped, entities decoded), so syntax
highlighting cannot hide a match.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .notebooks import ALL_MARKERS, SecretBlock, read_notebook, secret_blocks

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


def find_blocks_in_text(
    text: str, blocks: list[SecretBlock], min_lines: int = 3
) -> list[tuple[SecretBlock, list[str]]]:
    flat = _collapse(text)
    found = []
    for b in blocks:
        hits = [line for line in b.lines if line in flat]
        need = max(2, min(min_lines, len(b.lines))) if min_lines > 1 else 1
        if len(hits) >= need:
            found.append((b, hits))
    return found


def scan_files(
    paths,
    secrets: set[str] | None = None,
    markers: bool = True,
    blocks: list[SecretBlock] | None = None,
    min_lines: int = 3,
) -> list[Leak]:
    """Leaks in ``paths``: any line of ``secrets`` (strict), and/or ``blocks``."""
    leaks = []
    for p in paths:
        p = Path(p)
        text = text_of(p)
        for kind, hit in find_in_text(text, secrets or set(), markers):
            leaks.append(Leak(str(p), kind, hit))
        for b, hits in find_blocks_in_text(text, blocks or [], min_lines):
            leaks.append(
                Leak(
                    str(p),
                    "secret",
                    f"{len(hits)} lines of the {b.kind} in {b.where}, e.g. {hits[0]}",
                )
            )
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


def course_blocks(source_dir: Path) -> list[SecretBlock]:
    """Secret blocks of every source notebook under ``source_dir``."""
    blocks: list[SecretBlock] = []
    for nb_path in sorted(Path(source_dir).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        blocks += secret_blocks(read_notebook(nb_path), str(nb_path.relative_to(source_dir)))
    return blocks


def course_secrets(source_dir: Path) -> set[str]:
    """Every distinctive secret line under ``source_dir`` (for strict checks)."""
    return {line for b in course_blocks(source_dir) for line in b.lines}


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
