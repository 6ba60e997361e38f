"""Build the HTML book from the executed notebooks (`make book`).

    python -m cnn_book.build [--build-dir _build]

Stages the book's sources into ``<build>/book/``: the Markdown pages and
configuration from the repository, and every notebook from
``<build>/executed/`` (what `python -m cnn_book.execute` produced). Then
runs ``jupyter-book build -n -W --keep-going`` on the staging folder, so the
HTML lands in ``<build>/html`` and notebooks are never executed a second
time. Only files listed in _toc.yml are staged: solutions/ cannot leak in.

Exit codes: 0 built, 1 the build failed or warned, 2 a notebook was not executed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_DIR = REPO_ROOT / "_build"
BOOK_CONFIG = ("_config.yml", "_toc.yml")
# Files the pages use besides the documents: the helper package's modules, which
# chapters show with {literalinclude}, and the released student notebooks, which
# the assignments page offers with {download} (shipped inside the HTML).
INCLUDED_SOURCES = ("package/cnn_course/*.py", "assignments/*/*.ipynb")


class NotExecutedError(FileNotFoundError):
    """A notebook in the table of contents has no executed copy yet."""


def toc_files(toc: Path) -> list[str]:
    """Every document named in _toc.yml, without extension, in order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text(encoding="utf-8")))
    return found


def stage(build_dir: Path, repo: Path = REPO_ROOT) -> Path:
    """Copy configuration, pages and executed notebooks into ``<build>/book``."""
    staging = build_dir / "book"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in BOOK_CONFIG:
        shutil.copy2(repo / name, staging / name)
    for pattern in INCLUDED_SOURCES:
        for source in repo.glob(pattern):
            target = staging / source.relative_to(repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for doc in toc_files(repo / "_toc.yml"):
        source = repo / f"{doc}.ipynb"
        if source.exists():
            source = build_dir / "executed" / f"{doc}.ipynb"
            if not source.exists():
                raise NotExecutedError(
                    f"{doc}.ipynb has no executed copy in {source.parent}: "
                    f"run `python -m cnn_book.execute` (make execute) first"
                )
        else:
            source = repo / f"{doc}.md"
        target = staging / f"{doc}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return staging


def jupyter_book_command() -> str:
    """The jupyter-book script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "jupyter-book"
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def build(build_dir: Path = DEFAULT_BUILD_DIR, repo: Path = REPO_ROOT) -> int:
    staging = stage(build_dir, repo)
    command = [
        jupyter_book_command(), "build", str(staging),
        "--path-output", str(build_dir), "-n", "-W", "--keep-going",
    ]  # fmt: skip
    # Sphinx puts the HTML in <path-output>/_build/html: move it to <build>/html.
    result = subprocess.run(command, check=False)
    html = build_dir / "_build" / "html"
    if html.is_dir():
        shutil.rmtree(build_dir / "html", ignore_errors=True)
        shutil.move(html, build_dir / "html")
    return 0 if result.returncode == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_book.build", description=__doc__)
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    args = parser.parse_args(argv)
    try:
        code = build(args.build_dir.resolve())
    except NotExecutedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if code == 0:
        print(f"book: {args.build_dir / 'html' / 'index.html'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
