"""`glue` for the chapters, wherever they run: `from cnn_course.glue import glue`.

The book build has myst-nb, whose `glue` stores a value for the prose to show.
Colab and a plain Jupyter do not: there the stand-in below shows what
`glue(..., display=True)` would show and skips the rest, so a chapter runs
top to bottom without myst-nb (the prose's references only matter in the book).
"""

from __future__ import annotations

from typing import Any

try:
    from myst_nb import glue
except ImportError:

    def glue(name: str, variable: Any, display: bool = True) -> None:
        """Stand-in for myst_nb.glue: display the value if asked, store nothing."""
        if display:
            from IPython.display import display as show

            show(variable)


__all__ = ["glue"]
