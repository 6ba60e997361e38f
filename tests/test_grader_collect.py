"""grader collect: submissions from a folder or an LMS-style zip, unmatched files reported."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from grader import cli, config
from grader.collect import collect
from grader.errors import CollectError, ConfigError

A1 = "a1_convolution_from_scratch"
NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def paths(tmp_path):
    cfg = config.load_config()
    return config.resolve_paths(cfg, course=tmp_path / "course")


def submitted(paths) -> dict[str, str]:
    root = paths.course / "submitted"
    return {p.parent.parent.name: p.read_text() for p in sorted(root.glob(f"*/{A1}/{A1}.ipynb"))}


def make_zip(path: Path, members: dict[str, str], dates: dict[str, tuple] | None = None):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(dates or {}).get(name, (2026, 1, 1, 0, 0, 0)))
            zf.writestr(info, data)
    return path


def test_zip_with_lms_names(paths, tmp_path):
    z = make_zip(
        tmp_path / "class.zip",
        {
            f"s001_{A1}.ipynb": NB,
            "s002.ipynb": NB,
            "jane-doe_late_a1.ipynb": NB,
            "notes.pdf": "x",
            f"{A1}.ipynb": NB,
            "bad id!.ipynb": NB,
            "__MACOSX/._s001.ipynb": "junk",
            ".hidden.ipynb": NB,
        },
    )
    r = collect(paths, A1, z, [A1])
    assert sorted(r.imported) == ["jane-doe", "s001", "s002"]
    assert sorted(submitted(paths)) == ["jane-doe", "s001", "s002"]
    reasons = dict(r.unmatched)
    assert reasons["notes.pdf"] == "not a notebook (.ipynb)"
    assert reasons[f"{A1}.ipynb"] == "no student id in the file name"
    assert reasons["bad id!.ipynb"] == "no student id in the file name"
    assert len(r.unmatched) == 3
    stamp = paths.course / "submitted" / "s001" / A1 / "timestamp.txt"
    assert stamp.read_text().strip() == "2026-01-01 00:00:00.000000 UTC"


def test_newest_duplicate_wins_and_the_older_is_reported(paths, tmp_path):
    z = make_zip(
        tmp_path / "dup.zip",
        {"s001_first.ipynb": '{"old": 1}', "s001_second.ipynb": '{"new": 2}'},
        dates={
            "s001_first.ipynb": (2026, 1, 1, 0, 0, 0),
            "s001_second.ipynb": (2026, 1, 2, 0, 0, 0),
        },
    )
    r = collect(paths, A1, z, [A1])
    assert submitted(paths) == {"s001": '{"new": 2}'}
    assert r.unmatched == [
        ("s001_first.ipynb", "older duplicate for s001; kept 's001_second.ipynb'")
    ]


def test_member_names_cannot_escape_the_course_folder(paths, tmp_path):
    z = make_zip(tmp_path / "evil.zip", {"../../evil_x.ipynb": NB, "/abs/s9_x.ipynb": NB})
    r = collect(paths, A1, z, [A1])
    assert r.imported == {}
    assert r.unmatched == [
        ("../../evil_x.ipynb", "unsafe path (absolute or ..) in the archive"),
        ("/abs/s9_x.ipynb", "unsafe path (absolute or ..) in the archive"),
    ]
    assert not (tmp_path / "evil_x.ipynb").exists()
    assert all(p.is_relative_to(paths.course) for p in paths.course.rglob("*"))


def test_roster_and_custom_pattern(paths, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\n12345,Ann\n67890,Bo\n")
    z = make_zip(
        tmp_path / "canvas.zip",
        {"ann_12345_999_a1.ipynb": NB, "bo_67890_998_a1.ipynb": NB, "cy_11111_997_a1.ipynb": NB},
    )
    r = collect(paths, A1, z, [A1], pattern=r"^[^_]+_(?P<student>\d+)_", roster=roster)
    assert sorted(r.imported) == ["12345", "67890"]
    assert r.unmatched == [("cy_11111_997_a1.ipynb", "student id '11111' is not in the roster")]


def test_folder_in_nbgrader_layout(paths, tmp_path):
    src = tmp_path / "export"
    for sid in ("s1", "s2"):
        (src / sid / A1).mkdir(parents=True)
        (src / sid / A1 / f"{A1}.ipynb").write_text(NB)
    (src / "s3").mkdir()
    (src / "s3" / f"{A1}.ipynb").write_text(NB)
    r = collect(paths, A1, src, [A1])
    assert sorted(r.imported) == ["s1", "s2", "s3"]


def test_unreadable_zip_is_an_error(paths, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    with pytest.raises(CollectError, match="zip"):
        collect(paths, A1, bad, [A1])


def test_cli_collect_reports_unmatched(tmp_path, capsys):
    z = make_zip(tmp_path / "c.zip", {"s1_a1.ipynb": NB, "x.txt": "x"})
    rc = cli.main(["collect", A1, str(z), "--course", str(tmp_path / "course")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "imported 1 submissions" in out and "'x.txt': not a notebook" in out


def test_in_folder_layouts_the_folder_decides_and_a_disagreeing_name_is_refused(paths, tmp_path):
    """s001 puts a newer file named for s002 in their own folder: it must neither
    replace s002's work nor count as s001's."""
    z = make_zip(
        tmp_path / "folders.zip",
        {
            f"s001/{A1}.ipynb": '{"by": "s001"}',
            "s001/s002_a1.ipynb": '{"by": "s001, as s002"}',
            f"s002/{A1}.ipynb": '{"by": "s002"}',
            f"s003/{A1} (1).ipynb": '{"by": "s003"}',  # a browser's copy: names no student
            f"s004/{A1}/s004_{A1}.ipynb": '{"by": "s004"}',
        },
        dates={"s001/s002_a1.ipynb": (2026, 2, 1, 0, 0, 0)},
    )
    r = collect(paths, A1, z, [A1])
    assert submitted(paths) == {
        "s001": '{"by": "s001"}',
        "s002": '{"by": "s002"}',
        "s003": '{"by": "s003"}',
        "s004": '{"by": "s004"}',
    }
    [(name, reason)] = r.unmatched
    assert name == "s001/s002_a1.ipynb"
    assert "its name says student 's002' but it is in the folder of 's001'; refused" in reason


def test_nested_folders_are_refused(paths, tmp_path):
    z = make_zip(tmp_path / "nested.zip", {f"s001/s002/{A1}.ipynb": NB})
    r = collect(paths, A1, z, [A1])
    assert r.imported == {}
    assert "in nested folders" in r.unmatched[0][1]


@pytest.mark.parametrize(
    "member",
    ["s001\n_a1.ipynb", f"s001\n/{A1}.ipynb"],
    ids=["in the file name", "as the folder"],
)
def test_an_id_ending_in_a_newline_is_refused(paths, tmp_path, member):
    """`$` matches before a final newline: such an id would split CSV rows."""
    z = make_zip(tmp_path / "nl.zip", {member: NB})
    r = collect(paths, A1, z, [A1], pattern=r"^(?P<student>[^_]+)_")
    assert r.imported == {}
    assert "'s001\\n'" in r.unmatched[0][1]
    assert not (paths.course / "submitted").exists()
    with pytest.raises(ConfigError, match="not a valid id"):
        config.check_id("student", "s001\n")


def test_cli_prints_member_names_escaped(tmp_path, capsys):
    """A member name cannot paint a fake "all OK" line into the instructor's terminal."""
    fake = "x.txt\n\x1b[2K\x1b[32mimported 25 submissions, all OK\x1b[0m"
    z = make_zip(tmp_path / "c.zip", {"s1_a1.ipynb": NB, fake: "x"})
    assert cli.main(["collect", A1, str(z), "--course", str(tmp_path / "course")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and out.count("\n") == 3
    assert f"  {fake!r}: not a notebook (.ipynb)" in out


def test_a_zip_that_imports_nothing_exits_7(paths, tmp_path, capsys):
    z = make_zip(tmp_path / "wrong.zip", {"notes.pdf": "x", "no id.ipynb": NB})
    rc = cli.main(["collect", A1, str(z), "--course", str(paths.course)])
    assert rc == CollectError.exit_code == 7
    captured = capsys.readouterr()
    assert "'notes.pdf': not a notebook (.ipynb)" in captured.out
    assert "no submission of a1_convolution_from_scratch could be imported" in captured.err


def test_a_roster_with_an_invalid_id_is_refused(paths, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id\ns1\nbad id!\n")
    z = make_zip(tmp_path / "class.zip", {"s1.ipynb": NB})
    with pytest.raises(CollectError, match="not valid student ids.*'bad id!'"):
        collect(paths, A1, z, [A1], roster=roster)
