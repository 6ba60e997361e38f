"""Shape tables for the chapters: where Keras's 'same' padding puts its zeros,
the layer-by-layer trace of a model, and Markdown tables of both.

The output-size formula itself is derived and checked in chapter 3 (padding and
stride), and the parameter counts in chapter 5; the chapters write them out
where they use them, so this module holds no formula an assignment asks for.
"""

from __future__ import annotations

__all__ = ["ShapeError", "same_padding", "layer_rows", "markdown_table"]


class ShapeError(ValueError):
    """A layer's arguments cannot produce a non-empty output."""


def same_padding(n: int, f: int, s: int = 1) -> tuple[int, int]:
    """Zeros (before, after) that TensorFlow's 'same' padding adds on one axis.

    'same' gives ceil(n / s) outputs; the zeros are whatever makes that many
    windows fit, and when their number is odd the extra zero goes AFTER
    (bottom/right), so 'same' can be asymmetric (chapter 3).
    """
    for name, value in (("n", n), ("f", f), ("s", s)):
        if int(value) != value or value < 1:
            raise ShapeError(f"{name} must be a positive integer, got {value!r}")
    out = -(-n // s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def layer_rows(model) -> list[tuple[str, str, tuple, int]]:
    """(name, layer class, output shape without batch axis, parameters) for
    each layer of a built Keras ``model``: the shape trace of chapter 5."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape[1:])
        rows.append((layer.name, type(layer).__name__, shape, layer.count_params()))
    return rows


def markdown_table(headers: list[str], rows: list[tuple]) -> str:
    """A Markdown table (for ``IPython.display.Markdown``); integers get
    thousands separators, tuples print as 28×28×1 shapes."""

    def cell(value) -> str:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, tuple):
            return "×".join(str(v) for v in value)
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
