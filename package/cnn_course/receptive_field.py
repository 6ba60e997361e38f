"""Receptive fields of stacked convolution and pooling layers.

Introduced in chapter 5 (shapes, parameters, receptive fields).

A layer is described along one spatial axis by its kernel size ``k``, its
stride ``s`` and, optionally, the zeros ``p`` it adds before the first input
(left/top). With ``r`` the receptive field, ``j`` the jump (distance, in input
pixels, between two neighbouring units) and ``start`` the input coordinate of
the centre of the first unit's receptive field, each layer updates

    r_l     = r_{l-1} + (k_l - 1) * j_{l-1}
    j_l     = j_{l-1} * s_l
    start_l = start_{l-1} + ((k_l - 1) / 2 - p_l) * j_{l-1}

starting from the input itself: r_0 = 1, j_0 = 1, start_0 = 0.
:func:`receptive_fields` applies the recurrence; :func:`brute_force_receptive_field`
finds the same sizes without it, by tracing which input pixels each unit
reads, so the two can check each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_course.shapes import ShapeError, same_padding

__all__ = [
    "LayerRF",
    "receptive_fields",
    "layers_from_keras",
    "path_counts",
    "brute_force_receptive_field",
]


@dataclass(frozen=True)
class LayerRF:
    """Receptive field after one layer, along one spatial axis."""

    name: str
    kernel: int
    stride: int
    size: int  # receptive field r, in input pixels
    jump: int  # distance in input pixels between neighbouring units
    start: float  # input coordinate of the centre of unit 0's receptive field


def _normalise(layer: Sequence) -> tuple[str | None, int, int, int]:
    """(name, k, s, p) from (k, s), (k, s, p) or (name, k, s, p)."""
    items = list(layer)
    name = None
    if items and isinstance(items[0], str):
        name, items = items[0], items[1:]
    if len(items) == 2:
        (k, s), p = items, 0
    elif len(items) == 3:
        k, s, p = items
    else:
        raise ShapeError(f"a layer is (kernel, stride) or (kernel, stride, pad), got {layer!r}")
    for label, value in (("kernel", k), ("stride", s)):
        if int(value) != value or value < 1:
            raise ShapeError(f"{label} must be a positive integer, got {value!r}")
    if int(p) != p or p < 0:
        raise ShapeError(f"pad must be a non-negative integer, got {p!r}")
    return name, int(k), int(s), int(p)


def receptive_fields(layers: Iterable[Sequence]) -> list[LayerRF]:
    """Receptive field size, jump and start after each layer, by the recurrence.

    ``layers`` holds, input side first, one ``(kernel, stride)`` or
    ``(kernel, stride, pad)`` tuple per layer; a leading string names it.
    Layers that do not move pixels (ReLU, BatchNorm) are simply left out.

    >>> [rf.size for rf in receptive_fields([(3, 1), (3, 1), (3, 1)])]
    [3, 5, 7]
    """
    out = []
    r, j, start = 1, 1, 0.0
    for i, layer in enumerate(layers, 1):
        name, k, s, p = _normalise(layer)
        r = r + (k - 1) * j
        start = start + ((k - 1) / 2 - p) * j
        j = j * s
        out.append(LayerRF(name or f"layer{i}", k, s, r, j, start))
    return out


def layers_from_keras(model) -> list[tuple[str, int, int, int]]:
    """``(name, kernel, stride, pad_before)`` for each layer of ``model`` that
    moves pixels (Conv2D, DepthwiseConv2D, MaxPooling2D, AveragePooling2D),
    along the first spatial axis (height).

    Dilated kernels count with their effective size d * (k - 1) + 1. For
    'same' padding the zeros before depend on the input height, read from
    the built model.
    """
    import keras

    spatial = (
        keras.layers.Conv2D,
        keras.layers.DepthwiseConv2D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
    )
    out = []
    for layer in model.layers:
        if not isinstance(layer, spatial):
            continue
        if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
            k, s = layer.pool_size[0], layer.strides[0]
        else:
            d = layer.dilation_rate[0]
            k, s = d * (layer.kernel_size[0] - 1) + 1, layer.strides[0]
        p = 0
        if layer.padding == "same":
            n = layer.input.shape[1]
            if n is None:
                raise ShapeError(
                    f"{layer.name}: 'same' padding needs a known input height; "
                    "build the model with keras.Input(shape=(H, W, C))"
                )
            p = same_padding(n, k, s)[0]
        out.append((layer.name, int(k), int(s), int(p)))
    return out


def path_counts(layers: Iterable[Sequence], n: int, unit: int | None = None) -> np.ndarray:
    """For one unit of the last layer (the middle one by default), how many
    paths through the stack lead to each of the ``n`` input pixels.

    Non-zero entries are the receptive field; the counts are the gradient of
    that unit with respect to the input when every kernel holds ones (so the
    'effective receptive field' is peaked in the middle). Found by sending a
    one-hot vector back through the windows each layer reads: no recurrence.
    """
    layers = [_normalise(layer) for layer in layers]
    sizes = [n]
    for _, k, s, p in layers:
        # outputs whose window starts inside the input padded before by p;
        # zeros 'same' may add after only matter at the far border
        n_out = (sizes[-1] + 2 * p - k) // s + 1
        if n_out < 1:
            raise ShapeError(f"an input of {n} pixels is too small for this stack")
        sizes.append(n_out)
    if unit is None:
        unit = sizes[-1] // 2
    counts = np.zeros(sizes[-1], dtype=np.int64)
    counts[unit] = 1
    for (_, k, s, p), n_in in zip(reversed(layers), reversed(sizes[:-1]), strict=True):
        below = np.zeros(n_in, dtype=np.int64)
        first = np.arange(counts.size) * s - p  # first input pixel each unit reads
        for t in range(k):
            x = first + t
            inside = (x >= 0) & (x < n_in)
            np.add.at(below, x[inside], counts[inside])
        counts = below
    return counts


def brute_force_receptive_field(layers: Sequence[Sequence], n: int | None = None) -> list[int]:
    """Receptive field size after each layer, found by tracing which input
    pixels a middle unit reads (no recurrence).

    ``n`` is the input length; by default one large enough that the middle
    unit sees no border.
    """
    layers = list(layers)
    if n is None:
        # receptive field <= sum(k) * total stride: twice that keeps the
        # middle unit clear of both borders
        specs = [_normalise(layer) for layer in layers]
        n = 2 * sum(k for _, k, _, _ in specs) * int(np.prod([s for *_, s, _ in specs])) + 1
        n = 2 * n + sum(p for *_, p in specs)
    sizes = []
    for depth in range(1, len(layers) + 1):
        reach = np.flatnonzero(path_counts(layers[:depth], int(n)))
        sizes.append(int(reach.max() - reach.min() + 1))
    return sizes
