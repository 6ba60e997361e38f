"""Tools for the receptive fields of chapter 5 (shapes, parameters, receptive fields).

A layer is described along one spatial axis by its kernel size ``k``, its
stride ``s`` and, optionally, the zeros ``p`` it adds before the first input
(left/top). :func:`layers_from_keras` reads these from a Keras model, and
:func:`path_counts` traces which input pixels one unit reads, and through how
many paths (the effective receptive field). The recurrence that gives the
receptive field's size is derived in chapter 5 and written out there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cnn_course.shapes import ShapeError, same_padding

__all__ = ["layers_from_keras", "path_counts"]


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
