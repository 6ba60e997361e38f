"""The grader CLI: thin, with distinct exit codes and clear messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader import cli, config
from grader.config import REPO_ROOT
from grader.errors import ConfigError, LeakError

A1 = "a1_convolution_from_scratch"


def test_python_dash_m_grader_help_runs_from_anywhere(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "grader", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0
    for command in ("release", "collect", "autograde", "feedback", "export"):
        assert command in res.stdout


def test_missing_course_folder_is_a_config_error(monkeypatch, capsys):
    monkeypatch.delenv(config.COURSE_ENV, raising=False)
    assert cli.main(["feedback", A1]) == ConfigError.exit_code
    assert "no course folder: pass --course DIR" in capsys.readouterr().err


def test_unknown_assignment_lists_the_known_ones(tmp_path, capsys):
    assert cli.main(["autograde", "a9_nope", "--course", str(tmp_path)]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert "unknown assignment 'a9_nope'" in err and A1 in err


def test_course_folder_inside_the_repository_must_be_ignored_by_git(capsys):
    rc = cli.main(["feedback", A1, "--course", str(REPO_ROOT / "grader")])
    assert rc == ConfigError.exit_code
    assert "student data must stay out of version control" in capsys.readouterr().err


def test_check_leaks_finds_a_copied_hidden_test(tmp_path, capsys):
    src = (REPO_ROOT / "solutions" / A1 / f"{A1}.ipynb").read_text()
    (tmp_path / "page.html").write_text(f"<html><pre>{src}</pre></html>")
    (tmp_path / "fine.html").write_text("<p>Chapter 2: cross-correlation</p>")
    assert cli.main(["check-leaks", str(tmp_path)]) == LeakError.exit_code
    err = capsys.readouterr().err
    assert "page.html" in err and "fine.html" not in err


def test_check_leaks_passes_on_the_student_versions(capsys):
    assert cli.main(["check-leaks", str(REPO_ROOT / "assignments")]) == 0


@pytest.mark.parametrize("command", ["feedback", "export"])
def test_commands_explain_what_to_run_first(tmp_path, capsys, command):
    args = [command, A1] if command == "feedback" else [command]
    assert cli.main([*args, "--course", str(tmp_path)]) == ConfigError.exit_code
    assert "grader autograde" in capsys.readouterr().err


def test_a_mistyped_course_folder_is_an_error_and_is_not_created(tmp_path, capsys):
    typo = tmp_path / "cnn-cuorse"
    for args in (["autograde", A1], ["feedback", A1], ["export"]):
        assert cli.main([*args, "--course", str(typo)]) == ConfigError.exit_code
        assert "does not exist: check --course" in capsys.readouterr().err
    assert not typo.exists()


def test_autograde_without_submissions_exits_2_and_leaves_the_course_alone(tmp_path, capsys):
    assert cli.main(["autograde", A1, "--course", str(tmp_path)]) == ConfigError.exit_code
    assert f"no submissions of {A1}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no gradebook made for nothing


def test_workers_can_be_set_per_assignment():
    cfg = config.load_config()
    cfg.GraderSettings.assignments = {A1: {"workers": 1, "notebook_timeout": 60}}
    st = config.settings(cfg, A1)
    assert (st.workers, st.notebook_timeout) == (1, 60)
    assert config.settings(cfg).workers == 2
