"""Reference NumPy convolution (what A1 Parts C-D generalise), formerly in
``cnn_course.conv_numpy``. Chapter 2 builds the single-image versions step by step.

Deep-learning libraries call the operation "convolution", but what they compute
(and what these functions compute) is *cross-correlation*: the kernel is not
flipped. Shapes follow Keras: images are ``(height, width, channels)`` or
``(batch, height, width, channels)``, kernels ``(kh, kw, in_channels, filters)``.
Only ``"valid"`` padding and stride 1 are covered (padding and stride arrive in
chapter 3).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["corr2d_loop", "corr2d", "conv2d", "conv2d_params"]


def _check_2d(x: np.ndarray, k: np.ndarray) -> None:
    if x.ndim != 2 or k.ndim != 2:
        raise ValueError(
            f"expected a 2-D image and a 2-D kernel, got shapes {x.shape} and "
            f"{k.shape}; use conv2d() for images with channels"
        )
    if k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(
            f"kernel {k.shape} is larger than the image {x.shape}: with 'valid' "
            "padding the kernel must fit inside the image"
        )


def corr2d_loop(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Cross-correlate a 2-D image with a 2-D kernel, one output pixel at a time.

    Chapter 2, section "Implementing it: one output at a time". Slow and
    obvious on purpose: it is the definition written as two loops.
    ``out[i, j] = sum(x[i:i+kh, j:j+kw] * k)``, output ``(h-kh+1, w-kw+1)``.
    """
    x = np.asarray(x, dtype=float)
    k = np.asarray(k, dtype=float)
    _check_2d(x, k)
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Cross-correlate a 2-D image with a 2-D kernel, vectorised.

    Chapter 2, section "Vectorising". Same result as :func:`corr2d_loop`:
    ``sliding_window_view`` gives every ``kh x kw`` window as a view (no copy),
    and one ``einsum`` multiplies each window by the kernel and sums.
    """
    x = np.asarray(x, dtype=float)
    k = np.asarray(k, dtype=float)
    _check_2d(x, k)
    windows = sliding_window_view(x, k.shape)  # (oh, ow, kh, kw)
    return np.einsum("ijab,ab->ij", windows, k)


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """A Keras-style ``Conv2D`` forward pass ("valid" padding, stride 1) in NumPy.

    Chapter 2, section "Many channels in, many filters out".

    Parameters
    ----------
    x : array ``(h, w, c_in)`` or ``(n, h, w, c_in)``
    kernel : array ``(kh, kw, c_in, c_out)``, the layout of ``Conv2D.kernel``
    bias : array ``(c_out,)`` or None

    Returns
    -------
    array ``(h-kh+1, w-kw+1, c_out)`` (or with the batch axis first):
    each output channel is the sum over input channels of 2-D
    cross-correlations, plus that filter's bias.
    """
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    batched = x.ndim == 4
    if not batched:
        x = x[None]
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(
            f"expected x of shape (h, w, c) or (n, h, w, c) and a kernel of shape "
            f"(kh, kw, c_in, c_out), got {x.shape} and {kernel.shape}"
        )
    kh, kw, c_in, c_out = kernel.shape
    if x.shape[-1] != c_in:
        raise ValueError(
            f"the image has {x.shape[-1]} channels but the kernel expects {c_in} "
            f"(kernel shape {kernel.shape})"
        )
    if kh > x.shape[1] or kw > x.shape[2]:
        raise ValueError(f"kernel {kernel.shape[:2]} is larger than the image {x.shape[1:3]}")
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (n, oh, ow, c_in, kh, kw)
    out = np.einsum("nijcab,abco->nijo", windows, kernel)
    if bias is not None:
        bias = np.asarray(bias, dtype=float)
        if bias.shape != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},), got {bias.shape}")
        out = out + bias
    return out if batched else out[0]


def conv2d_params(
    kernel_size: int | tuple[int, int], in_channels: int, filters: int, use_bias: bool = True
) -> int:
    """Number of trainable parameters of a ``Conv2D`` layer.

    Chapter 2, section "Many channels in, many filters out":
    ``(kh * kw * in_channels + 1) * filters`` with a bias, without the ``+ 1``
    otherwise. The image size does not appear: the weights are shared across
    positions.
    """
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
    return (kh * kw * in_channels + int(use_bias)) * filters
