"""Output sizes and parameter counts of convolutional layers, by formula.

Introduced in chapter 3 (padding and stride) and used again in chapter 5
(shapes, parameters, receptive fields). Every function here is a closed-form
formula; the chapters check each one against what Keras actually builds.
The Conv2D parameter count lives with the convolution itself, in
``cnn_course.conv_numpy.conv2d_params`` (chapter 2).
"""

from __future__ import annotations

import math

__all__ = [
    "ShapeError",
    "conv_output_size",
    "keras_output_size",
    "same_padding",
    "dense_params",
    "batchnorm_params",
    "layer_rows",
    "markdown_table",
]

PADDINGS = ("valid", "same")


class ShapeError(ValueError):
    """A layer's arguments cannot produce a non-empty output."""


def _check_positive(**kwargs: int) -> None:
    for name, value in kwargs.items():
        if int(value) != value or value < 1:
            raise ShapeError(f"{name} must be a positive integer, got {value!r}")


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Textbook output size: floor((n + 2p - f) / s) + 1.

    ``n`` input size, ``f`` kernel size, ``p`` zeros added on EACH side,
    ``s`` stride. When ``(n + 2p - f) / s`` is not an integer the last
    positions of the input that the kernel cannot reach are dropped.
    """
    _check_positive(n=n, f=f, s=s)
    if p < 0:
        raise ShapeError(f"padding p must be >= 0, got {p}")
    span = n + 2 * p - f
    if span < 0:
        raise ShapeError(
            f"kernel f={f} is larger than the padded input n + 2p = {n + 2 * p}; "
            "use a smaller kernel or more padding"
        )
    return span // s + 1


def keras_output_size(n: int, f: int, s: int = 1, padding: str = "valid") -> int:
    """The size Keras (and TensorFlow) gives for ``padding`` 'valid' or 'same'.

    'valid' is the formula with p = 0; 'same' is ceil(n / s), whatever f is.
    """
    _check_positive(n=n, f=f, s=s)
    if padding == "valid":
        return conv_output_size(n, f, 0, s)
    if padding == "same":
        return math.ceil(n / s)
    raise ShapeError(f"padding must be one of {PADDINGS}, got {padding!r}")


def same_padding(n: int, f: int, s: int = 1) -> tuple[int, int]:
    """Zeros (before, after) that TensorFlow's 'same' padding adds on one axis.

    The total is whatever makes ceil(n / s) outputs fit; when it is odd the
    extra zero goes AFTER (bottom/right), so 'same' can be asymmetric.
    """
    out = keras_output_size(n, f, s, "same")
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def dense_params(n_in: int, n_out: int, use_bias: bool = True) -> int:
    """Weights of a Dense layer: n_in * n_out (+ n_out biases)."""
    return n_in * n_out + (n_out if use_bias else 0)


def batchnorm_params(channels: int) -> tuple[int, int]:
    """(trainable, non-trainable) of BatchNormalization over ``channels``.

    gamma and beta are trained; the moving mean and variance are not.
    """
    return 2 * channels, 2 * channels


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
