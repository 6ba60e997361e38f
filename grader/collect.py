"""``grader collect``: import submissions into the course folder.

The source is a folder or an LMS-style zip holding one notebook per student, in
one of two layouts:

- *flat*: the student id in the file name (``s001_a1_convolution_from_scratch.ipynb``,
  ``s001.ipynb``). By default the id is the leading run of letters, digits, ``.``
  and ``-`` of the file name (up to the first ``_``); ``--pattern`` takes a
  regular expression with a ``student`` group for other LMS naming schemes.
- *a folder per student*, nbgrader-style: ``s001/a1_convolution_from_scratch.ipynb``
  or ``s001/<assignment>/<notebook>.ipynb``. The folder decides the id: the
  student chose the file's name but not the folder it lies in, so a file whose
  name gives another id (``s001/s002_a1.ipynb``) is refused and reported.

A folder named like the assignment is skipped over in both layouts. Each
notebook is copied to ``<course>/submitted/<student>/<assignment>/<notebook>.ipynb``
with a ``timestamp.txt``, as nbgrader lays them out. Files that cannot be
matched (not a notebook, no id, an id not in the roster, a name and folder that
disagree, an older duplicate) are reported, not imported. Zip members are read
into memory with size limits, never extracted by name, so a crafted zip cannot
write outside the course folder. Ids must match ``config.ID_RE`` as a whole
(``\\Z``: a trailing newline is refused).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .config import ID_RE, Paths, venv_on_path
from .errors import CollectError

DEFAULT_PATTERN = r"\A(?P<student>[A-Za-z0-9][A-Za-z0-9.\-]*)(?:_.*)?\.ipynb\Z"
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ZIP_MEMBERS = 10_000


@dataclass
class Entry:
    name: str  # path inside the source (posix)
    size: int
    mtime: dt.datetime
    read: Callable[[], bytes]


@dataclass
class CollectReport:
    assignment: str
    imported: dict[str, str] = field(default_factory=dict)  # student -> source name
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    roster: int | None = None  # students on the roster, all now in the gradebook


def _dir_entries(folder: Path) -> Iterator[Entry]:
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        rel = p.relative_to(folder).as_posix()
        st = p.stat()
        yield Entry(rel, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC), p.read_bytes)


def _zip_entries(zpath: Path) -> Iterator[Entry]:
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CollectError(f"cannot read {zpath} as a zip file: {exc}") from None
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise CollectError(
            f"{zpath} has {len(infos)} members; refusing more than {MAX_ZIP_MEMBERS}"
        )
    for info in infos:
        if info.is_dir():
            continue

        def read(info=info) -> bytes:
            with zf.open(info) as fh:
                data = fh.read(MAX_NOTEBOOK_BYTES + 1)
            if len(data) > MAX_NOTEBOOK_BYTES:
                raise ValueError("larger than the limit once decompressed")
            return data

        try:
            mtime = dt.datetime(*info.date_time, tzinfo=dt.UTC)
        except ValueError:
            mtime = dt.datetime.now(dt.UTC)
        yield Entry(info.filename.replace("\\", "/"), info.file_size, mtime, read)


def _roster(path: Path | None) -> set[str] | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise CollectError(f"roster {path} does not exist")
    ids = set()
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return ids
    header = [h.strip().lower() for h in rows[0]]
    col = next((header.index(h) for h in ("student_id", "id", "student") if h in header), None)
    body = rows[1:] if col is not None else rows
    for row in body:
        if row:
            ids.add(row[col or 0].strip())
    bad = sorted(i for i in ids if not ID_RE.match(i))
    if bad:
        raise CollectError(
            f"roster {path} has {len(bad)} ids that are not valid student ids "
            f"(letters, digits, '_', '.', '-'): {', '.join(repr(b) for b in bad[:10])}"
        )
    return ids


def _id_in_name(rx: re.Pattern, base: str) -> str | None:
    m = rx.search(base)
    return m.group("student") if m and m.group("student") else None


def _student_id(
    parts: tuple[str, ...], notebooks: list[str], rx: re.Pattern, assignment: str
) -> tuple[str | None, str | None]:
    """(student id, None), or (None, why the file is refused), from its path."""
    folders = [p for p in parts[:-1] if p != assignment]
    base = parts[-1]
    stem = base[: -len(".ipynb")]
    if len(folders) > 1:
        return None, (
            "in nested folders: put each notebook in its student's folder "
            "(<student>/<notebook>.ipynb) or name it by the student (flat)"
        )
    if folders:  # a folder per student: the folder decides, whatever the file's name says
        sid = folders[0]
        if not ID_RE.match(sid):
            return None, f"its folder {sid!r} is not a valid student id"
        # "a1_convolution_from_scratch (1).ipynb" names the notebook, not a student
        if not stem.startswith((assignment, *notebooks)):
            named = _id_in_name(rx, base)
            if named is not None and named != sid:
                return None, (
                    f"its name says student {named!r} but it is in the folder of {sid!r}; "
                    "refused: a file in one student's folder cannot be another's "
                    f"submission (if {sid!r} holds the whole class, collect from inside it)"
                )
        return sid, None
    named = None if stem in notebooks else _id_in_name(rx, base)
    if named is None:
        return None, "no student id in the file name"
    if not ID_RE.match(named):
        return None, f"student id {named!r} has unsafe characters"
    return named, None


def collect(
    paths: Paths,
    assignment: str,
    source: Path,
    notebooks: list[str],
    pattern: str | None = None,
    roster: Path | None = None,
) -> CollectReport:
    """Import submissions of ``assignment`` from a folder or zip into the course."""
    source = Path(source)
    if not source.exists():
        raise CollectError(f"{source} does not exist")
    try:
        rx = re.compile(pattern or DEFAULT_PATTERN)
    except re.error as exc:
        raise CollectError(f"--pattern is not a valid regular expression: {exc}") from None
    if "student" not in rx.groupindex:
        raise CollectError("--pattern needs a named group (?P<student>...)")
    allowed = _roster(roster)
    entries = _zip_entries(source) if source.is_file() else _dir_entries(source)
    report = CollectReport(assignment)
    chosen: dict[tuple[str, str], Entry] = {}
    for e in entries:
        parts = PurePosixPath(e.name).parts
        base = parts[-1] if parts else e.name
        if ".." in parts or e.name.startswith("/"):
            report.unmatched.append((e.name, "unsafe path (absolute or ..) in the archive"))
            continue
        if any(p.startswith(("__MACOSX", ".")) for p in parts):
            continue  # archive metadata, hidden files
        if not base.endswith(".ipynb"):
            report.unmatched.append((e.name, "not a notebook (.ipynb)"))
            continue
        if e.size > MAX_NOTEBOOK_BYTES:
            report.unmatched.append((e.name, "larger than 20 MB"))
            continue
        sid, problem = _student_id(parts, notebooks, rx, assignment)
        if problem:
            report.unmatched.append((e.name, problem))
            continue
        if allowed is not None and sid not in allowed:
            report.unmatched.append((e.name, f"student id {sid!r} is not in the roster"))
            continue
        if len(notebooks) == 1:
            nb = notebooks[0]
        else:
            hits = [n for n in notebooks if n in base[: -len(".ipynb")]]
            if len(hits) != 1:
                report.unmatched.append(
                    (e.name, f"cannot tell which of {', '.join(notebooks)} it is")
                )
                continue
            nb = hits[0]
        key = (sid, nb)
        if key in chosen:
            old = chosen[key]
            newer, older = (e, old) if e.mtime >= old.mtime else (old, e)
            chosen[key] = newer
            report.unmatched.append((older.name, f"older duplicate for {sid}; kept {newer.name!r}"))
            continue
        chosen[key] = e

    course = paths.require_course()
    for (sid, nb), e in sorted(chosen.items()):
        try:
            data = e.read()
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            report.unmatched.append((e.name, f"cannot be read: {exc}"))
            continue
        folder = course / "submitted" / sid / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{nb}.ipynb").write_bytes(data)
        stamp = e.mtime.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        (folder / "timestamp.txt").write_text(stamp + "\n")
        report.imported[sid] = e.name
    if allowed:
        register_roster(paths, sorted(allowed))
        report.roster = len(allowed)
    return report


def register_roster(paths: Paths, students: list[str]) -> None:
    """Every roster student into nbgrader's gradebook, so that `grader export` lists
    those who did not submit (status ``missing``, 0 points)."""
    import warnings

    from nbgrader.api import Gradebook

    venv_on_path()
    with warnings.catch_warnings(), Gradebook(paths.db_url, "default_course") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy 2 warns about nbgrader's sessions
        for sid in students:
            gb.update_or_create_student(sid)
