"""Every chapter runs under the quick profile through the runner, cleanly.

Times are recorded in the execution report (_build/test/reports/), not
asserted: the profile's timeout is the only bound (machines are noisy)."""

import nbformat
import pytest

from cnn_book.execute import chapter_notebooks
from cnn_book.report import stderr_outputs

pytestmark = pytest.mark.notebooks
CHAPTERS = [p.name for p in chapter_notebooks()]


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_without_error(executed_chapters, name):
    result = executed_chapters[name]
    assert result.ok, f"{name}: {result.status}: {result.error}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_output_has_no_stderr_noise(executed_chapters, test_build_dir, name):
    nb = nbformat.read(test_build_dir / "executed" / "chapters" / name, as_version=4)
    noise = stderr_outputs(nb)
    assert not noise, f"stderr in cell {noise[0][0]}: {noise[0][1][:300]}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_reports_key_metrics(executed_chapters, name):
    assert executed_chapters[name].key_metrics, "no glued accuracy / parameter count"


def test_report_lists_every_chapter(executed_chapters, test_build_dir):
    table = (test_build_dir / "reports" / "execution-quick.md").read_text()
    for name in CHAPTERS:
        assert f"| {name} | quick | ok |" in table


def test_chapters_write_nothing_into_the_repository(executed_chapters):
    """Tuner trials, saved models and exported images go to the build folder."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "chapters"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    # "??" untracked, "!!" ignored: new files, whether .gitignore hides them or not
    written = [line for line in status
               if line[:2] in ("??", "!!") and ".ipynb_checkpoints" not in line]
    assert not written, f"a chapter wrote into the repository: {written[:5]}"


def test_run_time_files_land_under_the_build_folder(executed_chapters, test_build_dir):
    outputs = test_build_dir / "outputs"
    assert any((outputs / "14_tuners").iterdir()), "chapter 14's tuner folder is empty"
    assert (outputs / "15_project" / "cats_vs_dogs.keras").is_file()


def test_without_data_or_internet_the_run_stops_at_the_first_dataset(tmp_path):
    """`make book` offline with no data setting: a clear message, not a Keras traceback."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CNN_COURSE_DATA"}
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               KERAS_HOME=str(tmp_path / "keras_home"))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "cnn_book.execute", "--profile", "quick",
         "--build-dir", str(tmp_path), *map(str, chapter_notebooks())],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.lstrip().startswith("failed")]
    assert len(failed) == 1, "the run should stop at the first failing notebook"
    message = lines[lines.index(failed[0]) + 1]
    assert "DatasetUnavailableError" in message and "is not available" in message
    assert "CNN_COURSE_DATA is not set" in message and "https://" in message
