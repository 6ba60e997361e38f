"""Shared fixtures: the offline data folder, and the quick-profile execution of
every chapter with the book built from it (done once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real offline data folder: $CNN_COURSE_DATA, else ../shared/data."""
    candidates = [os.environ.get("CNN_COURSE_DATA", ""), str(REPO.parent / "shared" / "data")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist.npz").exists():
            return Path(candidate)
    pytest.skip("no offline data folder (set CNN_COURSE_DATA); .ci/run always sets it")


@pytest.fixture(scope="session")
def test_build_dir() -> Path:
    """Build folder for the test session, kept afterwards for inspection."""
    path = REPO / "_build" / "test"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def executed_chapters(test_build_dir, shared_data):
    """Every chapter executed once under the quick profile, through the runner."""
    from cnn_book.execute import chapter_notebooks, execute_all
    from cnn_book.profiles import load_profile

    os.environ["CNN_COURSE_DATA"] = str(shared_data)
    results = execute_all(
        chapter_notebooks(), load_profile("quick"), test_build_dir, keep_going=True
    )
    return {r.notebook: r for r in results}


@pytest.fixture(scope="session")
def built_book(executed_chapters, test_build_dir) -> Path:
    """The HTML book built from the executed chapters, with warnings as errors."""
    from cnn_book.build import build

    failed = [name for name, r in executed_chapters.items() if not r.ok]
    if failed:
        pytest.fail(f"cannot build the book: chapters failed: {', '.join(failed)}")
    assert build(test_build_dir) == 0, "jupyter-book build -n -W reported errors or warnings"
    return test_build_dir / "html"
