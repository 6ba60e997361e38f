"""The papermill runner: profiles applied, failures located, timeouts enforced."""

import json
from pathlib import Path

import nbformat
import pytest

from cnn_book.execute import execute_all, main
from cnn_book.profile_note import NOTE_TAG
from cnn_book.profiles import Profile

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def run(tmp_path, names, profile, **kwargs):
    notebooks = [FIXTURES / f"{name}.ipynb" for name in names]
    return execute_all(notebooks, profile, tmp_path, log=lambda *_: None, **kwargs)


def test_profile_parameters_reach_the_notebook_and_metrics_are_reported(tmp_path):
    profile = Profile("quick", 300, {"simple": {"epochs": 2, "scale": 0.5}})
    [result] = run(tmp_path, ["simple"], profile)
    assert result.ok, result.error
    assert result.metrics == {"epochs_run": 2, "fake_acc": 0.25, "label": "hello"}
    assert result.key_metrics == {"fake_acc": 0.25}
    executed = nbformat.read(tmp_path / "executed" / "notebooks" / "simple.ipynb", 4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_report_lists_every_notebook_in_json_and_markdown(tmp_path):
    profile = Profile("quick", 300, {})
    run(tmp_path, ["simple", "broken"], profile, keep_going=True)
    rows = json.loads((tmp_path / "reports" / "execution-quick.json").read_text())
    assert [(r["notebook"], r["status"]) for r in rows] == [
        ("simple.ipynb", "ok"),
        ("broken.ipynb", "failed"),
    ]
    table = (tmp_path / "reports" / "execution-quick.md").read_text()
    assert "| simple.ipynb | quick | ok |" in table
    assert "fake_acc = 0.5" in table


def test_failure_names_the_source_cell_and_the_error(tmp_path):
    [result] = run(tmp_path, ["broken"], Profile("quick", 300, {}))
    assert result.status == "failed"
    # Cell 4 of the source notebook, although papermill injected a cell before it.
    assert result.error.startswith("cell 4 ")
    assert "ValueError: the data is missing" in result.error


def test_run_stops_at_the_first_failure_unless_told_to_keep_going(tmp_path):
    results = run(tmp_path, ["broken", "simple"], Profile("quick", 300, {}))
    assert [r.notebook for r in results] == ["broken.ipynb"]


def test_notebook_past_its_timeout_is_killed_and_reported(tmp_path):
    profile = Profile("quick", 8, {"slow": {"seconds": 120}})
    [result] = run(tmp_path, ["slow"], profile)
    assert result.status == "timeout"
    assert result.seconds < 60
    assert "8 s" in result.error


def test_cli_rejects_an_unknown_profile(capsys):
    assert main(["--profile", "nonexistent"]) == 2
    assert "profile 'nonexistent' is not defined" in capsys.readouterr().err


def test_cli_rejects_a_wrong_data_path(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path / "nowhere"))
    assert main(["--profile", "quick"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["chapters/99_missing.ipynb"])
def test_cli_rejects_a_missing_notebook(missing, capsys):
    assert main(["--profile", "quick", missing]) == 2
    assert "no such notebook" in capsys.readouterr().err


def note_cells(path):
    nb = nbformat.read(path, 4)
    return [c for c in nb.cells if NOTE_TAG in c.metadata.get("tags", [])], nb


def test_executed_copy_under_a_quick_profile_opens_with_the_profile_note(tmp_path):
    profile = Profile("quick", 300, {"simple": {"epochs": 2}}, "a CPU check")
    [result] = run(tmp_path, ["simple"], profile)
    assert result.ok, result.error
    notes, executed = note_cells(tmp_path / "executed" / "notebooks" / "simple.ipynb")
    assert [executed.cells.index(note) for note in notes] == [1]  # right after the title
    assert "`quick` profile" in notes[0].source and "a CPU check" in notes[0].source
    assert "| `epochs` | `2` | `10` |" in notes[0].source
    assert note_cells(FIXTURES / "simple.ipynb")[0] == []  # the source stays as it was


def test_executed_copy_under_the_full_profile_has_no_note(tmp_path):
    [result] = run(tmp_path, ["simple"], Profile("full", 300, {}))
    assert result.ok, result.error
    notes, _ = note_cells(tmp_path / "executed" / "notebooks" / "simple.ipynb")
    assert notes == []


def test_failure_location_ignores_the_profile_note(tmp_path):
    [result] = run(tmp_path, ["broken"], Profile("quick", 300, {}))
    assert result.error.startswith("cell 4 ")
    notes, _ = note_cells(tmp_path / "executed" / "notebooks" / "broken.ipynb")
    assert len(notes) == 1


def test_kernels_write_their_outputs_under_the_build_folder(tmp_path, monkeypatch):
    from cnn_book.execute import kernel_environment

    monkeypatch.setenv("CNN_COURSE_OUTPUT", "/somewhere/else")
    env = kernel_environment(tmp_path / "build")
    assert env["CNN_COURSE_OUTPUT"] == str((tmp_path / "build" / "outputs").resolve())


def test_progress_in_a_log_is_plain_lines_with_counts(tmp_path):
    import io

    from grader.progress import Progress

    out = io.StringIO()
    profile = Profile("quick", 300, {})
    bar = Progress(2, "notebooks", stream=out)
    run(tmp_path, ["simple", "broken"], profile, keep_going=True, progress=bar)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("simple.ipynb") and "progress: 1/2 notebooks (50%)" in lines[1]
    assert lines[-1].startswith("progress: 2/2 notebooks (100%)") and "1 failed" in lines[-1]
