"""Sphinx extension: MathJax served from the built book, so formulas render offline.

Sphinx loads MathJax from a CDN by default; without internet every formula
stays raw LaTeX. This extension points `mathjax_path` at a copy inside the
HTML (`_static/mathjax/`), taken from the `django-static-mathjax` package on
PyPI (MathJax 3.2.2, Apache License 2.0, which is copied beside it). It uses
the single-file SVG build with every TeX extension (`tex-svg-full.js`): it
loads nothing else at run time, no web fonts either, so it works from a web
server and from `file://` alike.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

MATHJAX_PACKAGE = "mathjax"  # the import name of the django-static-mathjax distribution
MATHJAX_FILES = ("es5/tex-svg-full.js", "LICENSE")
TARGET = "mathjax"  # inside the book's _static/


class MathJaxMissingError(RuntimeError):
    """The packaged MathJax copy is not installed."""


def mathjax_dir() -> Path:
    """The MathJax distribution folder of the installed package."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    folder = Path(spec.origin).parent / "static" / "mathjax" if spec and spec.origin else None
    if folder is None or not all((folder / name).is_file() for name in MATHJAX_FILES):
        raise MathJaxMissingError(
            "the book serves MathJax from the `django-static-mathjax` package, which is "
            "not installed (or lacks es5/tex-svg-full.js): run `make install`"
        )
    return folder


def _use_local_mathjax(app: Sphinx, config) -> None:
    mathjax_dir()  # fail before the build, not after it
    config.mathjax_path = f"{TARGET}/{Path(MATHJAX_FILES[0]).name}"


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    for name in MATHJAX_FILES:
        copy_asset_file(str(mathjax_dir() / name), str(target))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
