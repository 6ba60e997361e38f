"""Reference forward and backward passes of CNN layers in plain NumPy (what A1
Parts D-E and A2 ask for), formerly in ``cnn_course.backprop_numpy``. Chapter 6
derives the backward passes on single-channel examples.

Layout follows Keras: images are channels-last ``(N, H, W, C)`` and a convolution
kernel is ``(kh, kw, C_in, C_out)``, so weights can be copied into
``keras.layers.Conv2D`` unchanged.

Every ``*_backward`` function takes the upstream gradient ``dy = dL/dY`` and
returns the gradient with respect to the layer's inputs (and parameters).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "ShapeError",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "conv_output_size",
    "dense_backward",
    "dense_forward",
    "flatten_backward",
    "flatten_forward",
    "max_rel_error",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "numerical_gradient",
    "relu_backward",
    "relu_forward",
]


class ShapeError(ValueError):
    """An array or a hyper-parameter has a shape the layer cannot use."""


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length ``floor((size + 2*padding - kernel) / stride) + 1`` of a conv/pool.

    Raises ShapeError when the (padded) input is smaller than the kernel or when
    ``stride < 1`` or ``padding < 0``.
    """
    if stride < 1:
        raise ShapeError(f"stride must be >= 1, got {stride}")
    if padding < 0:
        raise ShapeError(f"padding must be >= 0, got {padding}")
    if size + 2 * padding < kernel:
        raise ShapeError(
            f"window {kernel} is larger than the padded input {size} + 2*{padding}; "
            "use a smaller kernel or more padding"
        )
    return (size + 2 * padding - kernel) // stride + 1


def _check_images(x: np.ndarray, name: str = "x") -> None:
    if x.ndim != 4:
        raise ShapeError(
            f"{name} must be a batch of channels-last images (N, H, W, C), got shape {x.shape}"
        )


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


# --------------------------------------------------------------------------- conv


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Cross-correlation as in ``keras.layers.Conv2D``: ``(N,H,W,Ci) -> (N,Ho,Wo,Co)``.

    ``w`` has shape ``(kh, kw, Ci, Co)``, ``b`` has shape ``(Co,)``; ``padding``
    zeros are added on every side of the input.
    """
    _check_images(x)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ShapeError(
            f"kernel must have shape (kh, kw, C_in={x.shape[3]}, C_out), got {w.shape}"
        )
    if b.shape != (w.shape[3],):
        raise ShapeError(f"bias must have shape ({w.shape[3]},), got {b.shape}")
    kh, kw = w.shape[:2]
    ho = conv_output_size(x.shape[1], kh, stride, padding)
    wo = conv_output_size(x.shape[2], kw, stride, padding)
    xp = _pad(x, padding)
    y = np.zeros((x.shape[0], ho, wo, w.shape[3]), dtype=np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            # every output pixel sees input pixel (s*r + i, s*c + j) through w[i, j]
            patch = xp[:, i : i + stride * ho : stride, j : j + stride * wo : stride, :]
            y += patch @ w[i, j]
    return y + b


def conv2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of a loss through :func:`conv2d_forward`.

    Each kernel tap ``w[i, j]`` connected input patch ``xp[i::s, j::s]`` to the
    whole output, so its gradient is the correlation of that patch with ``dy``,
    and the input patch receives ``dy`` sent back through ``w[i, j]``:
    summed over taps, ``dx`` is the *full convolution* of ``dy`` (dilated by the
    stride) with the kernel, ``dw`` the correlation of ``x`` with ``dy``.
    """
    _check_images(x)
    kh, kw = w.shape[:2]
    ho, wo = dy.shape[1:3]
    if (ho, wo) != (
        conv_output_size(x.shape[1], kh, stride, padding),
        conv_output_size(x.shape[2], kw, stride, padding),
    ):
        raise ShapeError(f"dy has spatial shape {(ho, wo)}, which this conv cannot produce")
    xp = _pad(x, padding)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, w))
    dw = np.zeros_like(w, dtype=np.result_type(dy, x))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * ho, stride)
            cols = slice(j, j + stride * wo, stride)
            # dL/dw[i,j,c,k] = sum over n, r, q of xp[n, s*r+i, s*q+j, c] * dy[n, r, q, k]
            dw[i, j] = np.einsum("nrqc,nrqk->ck", xp[:, rows, cols, :], dy)
            # dL/dxp[n, s*r+i, s*q+j, c] += sum over k of dy[n, r, q, k] * w[i, j, c, k]
            dxp[:, rows, cols, :] += dy @ w[i, j].T
    db = dy.sum(axis=(0, 1, 2))
    h, wd = x.shape[1:3]
    dx = dxp[:, padding : padding + h, padding : padding + wd, :]
    return dx, dw, db


# ------------------------------------------------------------------------ pooling


def _windows(x: np.ndarray, pool_size: int, stride: int) -> np.ndarray:
    """View of shape ``(N, Ho, Wo, C, p, p)`` holding every pooling window."""
    _check_images(x)
    ho = conv_output_size(x.shape[1], pool_size, stride)
    wo = conv_output_size(x.shape[2], pool_size, stride)
    win = np.lib.stride_tricks.sliding_window_view(x, (pool_size, pool_size), axis=(1, 2))
    return win[:, : stride * (ho - 1) + 1 : stride, : stride * (wo - 1) + 1 : stride]


def maxpool2d_forward(x: np.ndarray, pool_size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling, ``padding='valid'``, as ``keras.layers.MaxPooling2D``."""
    stride = pool_size if stride is None else stride
    return _windows(x, pool_size, stride).max(axis=(-2, -1))


def maxpool2d_backward(
    dy: np.ndarray, x: np.ndarray, pool_size: int = 2, stride: int | None = None
) -> np.ndarray:
    """Route each upstream gradient to the position of its window's maximum.

    Only the argmax of a window influenced the output, so it alone receives
    ``dy``; every other input gets 0 from that window. Ties go to the first
    maximum in row-major order. Overlapping windows (``stride < pool_size``)
    add up their contributions.
    """
    stride = pool_size if stride is None else stride
    win = _windows(x, pool_size, stride)
    n, ho, wo, c = win.shape[:4]
    if dy.shape != (n, ho, wo, c):
        raise ShapeError(f"dy must have shape {(n, ho, wo, c)}, got {dy.shape}")
    flat = win.reshape(n, ho, wo, c, pool_size * pool_size).argmax(axis=-1)
    di, dj = np.divmod(flat, pool_size)
    nn, rr, qq, cc = np.indices((n, ho, wo, c))
    dx = np.zeros_like(x, dtype=dy.dtype)
    # np.add.at accumulates when two windows share the same argmax
    np.add.at(dx, (nn, rr * stride + di, qq * stride + dj, cc), dy)
    return dx


def avgpool2d_forward(x: np.ndarray, pool_size: int = 2, stride: int | None = None) -> np.ndarray:
    """Average pooling, ``padding='valid'``, as ``keras.layers.AveragePooling2D``."""
    stride = pool_size if stride is None else stride
    return _windows(x, pool_size, stride).mean(axis=(-2, -1))


def avgpool2d_backward(
    dy: np.ndarray, x: np.ndarray, pool_size: int = 2, stride: int | None = None
) -> np.ndarray:
    """Spread each upstream gradient equally, ``dy / pool_size**2``, over its window."""
    stride = pool_size if stride is None else stride
    win = _windows(x, pool_size, stride)
    n, ho, wo, c = win.shape[:4]
    if dy.shape != (n, ho, wo, c):
        raise ShapeError(f"dy must have shape {(n, ho, wo, c)}, got {dy.shape}")
    dx = np.zeros_like(x, dtype=dy.dtype)
    share = dy / pool_size**2
    for i in range(pool_size):
        for j in range(pool_size):
            dx[:, i : i + stride * ho : stride, j : j + stride * wo : stride, :] += share
    return dx


# ------------------------------------------------------------- flatten, dense, relu


def flatten_forward(x: np.ndarray) -> np.ndarray:
    """``(N, ...) -> (N, D)`` in row-major (C) order, as ``keras.layers.Flatten``."""
    return x.reshape(x.shape[0], -1)


def flatten_backward(dy: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Flatten only moves numbers: its gradient is ``dy`` reshaped back."""
    return dy.reshape(x_shape)


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x @ w + b`` with ``w`` of shape ``(D_in, D_out)`` as in ``keras.layers.Dense``."""
    return x @ w + b


def dense_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of :func:`dense_forward`."""
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` elementwise."""
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pass ``dy`` where the input was positive, 0 elsewhere."""
    return dy * (x > 0)


# -------------------------------------------------------------------- checking


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Centred-difference estimate of ``df/dx``: ``(f(x+eps) - f(x-eps)) / (2 eps)``.

    ``f`` maps the array ``x`` to a scalar; ``x`` is perturbed in place one entry
    at a time and restored. The error of the estimate is of order ``eps**2``;
    use float64 arrays.
    """
    if x.dtype != np.float64:
        raise TypeError(f"use a float64 array for gradient checks, got {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + eps
        f_plus = f(x)
        x[idx] = old - eps
        f_minus = f(x)
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def max_rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference, relative to the largest magnitude in ``a`` or ``b``.

    ``max|a - b| / max(max|a|, max|b|)``; 0.0 when both arrays are all zero.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ShapeError(f"cannot compare shapes {a.shape} and {b.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(a - b).max() / scale)
