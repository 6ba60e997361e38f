"""Execute the chapter notebooks with papermill under a profile (`make execute`).

    python -m cnn_book.execute --profile quick                # every chapter
    python -m cnn_book.execute --profile quick chapters/02_convolution.ipynb

Executed notebooks go to ``<build>/executed/chapters/``; the report, one row
per notebook (status, seconds, glued key metrics), to
``<build>/reports/execution-<profile>.{json,md}``. The book is then built from
the executed notebooks (`cnn_book.build`), so nothing is executed twice. An
executed copy made under a profile other than `full` opens with a note saying
so (`cnn_book.profile_note`).

A progress bar (counts, time spent and left, the notebook running now) is
redrawn in place on a terminal, and falls back to plain lines in a log (CI).
Each notebook runs in its own papermill process, so a notebook that outlives
its profile's timeout is killed together with its kernel. By default the run
stops at the first failure and names the notebook and the cell.

Exit codes: 0 all ran, 1 a notebook failed or timed out, 2 bad usage or setup.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from cnn_book.profile_note import add_profile_note
from cnn_book.profiles import Profile, ProfileError, load_profile
from cnn_book.report import NotebookResult, failed_cell, glued_values, write_report
from cnn_course.data import DATA_SETTING, OUTPUT_SETTING, DataSettingError, data_dir
from grader.progress import Progress

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = REPO_ROOT / "chapters"
DEFAULT_BUILD_DIR = REPO_ROOT / "_build"


def chapter_notebooks(chapters_dir: Path = CHAPTERS_DIR) -> list[Path]:
    """Every chapter notebook, in file-name (= reading) order."""
    return sorted(chapters_dir.glob("[0-9][0-9]_*.ipynb"))


def kernel_environment(build_dir: Path) -> dict[str, str]:
    """Environment for the notebook kernels.

    Quiets TensorFlow's C++ logging, and keeps what C extensions write to the
    process's stderr (TensorFlow's absl log, which ignores TF_CPP_MIN_LOG_LEVEL
    before it is initialised) out of the notebooks: an IPython profile in the
    build folder turns off ipykernel's fd capture. Python-level warnings still
    reach the notebook, where the tests catch them. When the data folder holds a Keras cache
    (`keras_home/`) and KERAS_HOME is not set, a writable copy is made in the
    build folder: Keras writes into KERAS_HOME and the data folder stays read-only.
    What chapters write while they run (tuner trials, saved models) goes to
    ``<build>/outputs`` (``cnn_course.data.output_dir``), never into chapters/.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env[OUTPUT_SETTING] = str(build_dir.resolve() / "outputs")
    ipython_dir = build_dir / "ipython"
    config = ipython_dir / "profile_default" / "ipython_kernel_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("c.IPKernelApp.capture_fd_output = False\n", encoding="utf-8")
    env["IPYTHONDIR"] = str(ipython_dir)
    folder = data_dir()
    if folder is not None and "KERAS_HOME" not in env and (folder / "keras_home").is_dir():
        keras_home = build_dir / "keras_home"
        if not keras_home.is_dir():
            shutil.copytree(folder / "keras_home", keras_home)
        env["KERAS_HOME"] = str(keras_home)
    return env


def execute_notebook(
    notebook: Path, profile: Profile, output: Path, env: dict[str, str]
) -> NotebookResult:
    """Run one notebook with the profile's parameters; never raises for notebook errors."""
    output.parent.mkdir(parents=True, exist_ok=True)
    name = notebook.name
    parameters = profile.parameters_for(notebook)
    command = [
        sys.executable, "-m", "papermill", str(notebook), str(output),
        "--cwd", str(notebook.parent),
        "--kernel", "python3",
        "--no-progress-bar",
        "--execution-timeout", str(profile.timeout_seconds),
        "--parameters_yaml", yaml.safe_dump(parameters),
    ]  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            process.wait(timeout=profile.timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # papermill and its kernel
            process.wait()
            return NotebookResult(
                name, profile.name, "timeout", time.perf_counter() - start,
                error=f"did not finish within {profile.timeout_seconds} s "
                f"(profile {profile.name!r}, profiles.yml)",
            )  # fmt: skip
        seconds = time.perf_counter() - start
        log.seek(0)
        log_text = log.read()

    if not output.exists():
        tail = "\n".join(log_text.strip().splitlines()[-5:])
        return NotebookResult(name, profile.name, "failed", seconds, error=tail or "no output")
    executed = nbformat.read(output, as_version=4)
    metrics = glued_values(executed)
    error = failed_cell(executed) if process.returncode != 0 else None
    if add_profile_note(executed, profile, parameters):
        nbformat.write(executed, output)
    if process.returncode != 0:
        error = error or log_text.strip().splitlines()[-1]
        return NotebookResult(name, profile.name, "failed", seconds, metrics, error=error)
    return NotebookResult(name, profile.name, "ok", seconds, metrics)


def execute_all(
    notebooks: list[Path],
    profile: Profile,
    build_dir: Path = DEFAULT_BUILD_DIR,
    keep_going: bool = False,
    log=print,
    progress: Progress | None = None,
) -> list[NotebookResult]:
    """Execute notebooks in order and write the report; stop at the first failure
    unless ``keep_going``. With ``progress`` (grader.progress), a live bar on a
    terminal, plain lines in a log; without, one line per notebook through ``log``."""
    env = kernel_environment(build_dir)
    results = []
    bar = progress or Progress(len(notebooks), "notebooks", stream=io.StringIO(), tty=False)
    for notebook in notebooks:
        notebook = Path(notebook).resolve()
        output = build_dir / "executed" / notebook.parent.name / notebook.name
        bar.set_current(notebook.name)
        result = execute_notebook(notebook, profile, output, env)
        results.append(result)
        line = (f"{result.status:>7}  {result.seconds:6.1f} s  {notebook.name}"
                + ("" if result.ok else f"\n         {result.error}"))  # fmt: skip
        if progress:
            bar.log(line)
        else:
            log(line)
        bar.advance(failed=not result.ok)
        if not result.ok and not keep_going:
            break
    bar.close()
    reports = build_dir / "reports"
    write_report(
        results,
        reports / f"execution-{profile.name}.json",
        reports / f"execution-{profile.name}.md",
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_book.execute", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--profile", default="quick", help="profile in profiles.yml")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    parser.add_argument("--keep-going", action="store_true", help="run all despite failures")
    args = parser.parse_args(argv)

    try:
        profile = load_profile(args.profile)
        data_dir()  # a wrong data path is reported before anything runs
    except (ProfileError, DataSettingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    notebooks = args.notebooks or chapter_notebooks()
    missing = [str(n) for n in notebooks if not Path(n).is_file()]
    if missing or not notebooks:
        print(f"error: no such notebook: {', '.join(missing) or 'chapters/ is empty'}",
              file=sys.stderr)  # fmt: skip
        return 2
    if data_dir() is None:
        print(f"note: {DATA_SETTING} is not set: datasets will be downloaded by Keras")

    progress = Progress(len(notebooks), "notebooks", stream=sys.stdout)
    results = execute_all(notebooks, profile, args.build_dir, args.keep_going, progress=progress)
    report = args.build_dir / "reports" / f"execution-{profile.name}.md"
    print(f"report: {report}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
