"""Reference output sizes and parameter counts (what A1 Part A and A3 Parts A-B
generalise), formerly in ``cnn_course.shapes``."""

from __future__ import annotations

import math

from cnn_course.shapes import ShapeError

PADDINGS = ("valid", "same")


def _check_positive(**kwargs: int) -> None:
    for name, value in kwargs.items():
        if int(value) != value or value < 1:
            raise ShapeError(f"{name} must be a positive integer, got {value!r}")


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Textbook output size: floor((n + 2p - f) / s) + 1."""
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
    """The size Keras gives for ``padding`` 'valid' or 'same' (ceil(n / s))."""
    _check_positive(n=n, f=f, s=s)
    if padding == "valid":
        return conv_output_size(n, f, 0, s)
    if padding == "same":
        return math.ceil(n / s)
    raise ShapeError(f"padding must be one of {PADDINGS}, got {padding!r}")


def dense_params(n_in: int, n_out: int, use_bias: bool = True) -> int:
    """Weights of a Dense layer: n_in * n_out (+ n_out biases)."""
    return n_in * n_out + (n_out if use_bias else 0)


def batchnorm_params(channels: int) -> tuple[int, int]:
    """(trainable, non-trainable) of BatchNormalization over ``channels``."""
    return 2 * channels, 2 * channels
