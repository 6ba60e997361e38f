"""Reference receptive-field recurrence (what A3 Part C generalises), formerly in
``cnn_course.receptive_field``.

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

from cnn_course.receptive_field import _normalise, path_counts

__all__ = ["LayerRF", "receptive_fields", "brute_force_receptive_field"]


@dataclass(frozen=True)
class LayerRF:
    """Receptive field after one layer, along one spatial axis."""

    name: str
    kernel: int
    stride: int
    size: int  # receptive field r, in input pixels
    jump: int  # distance in input pixels between neighbouring units
    start: float  # input coordinate of the centre of unit 0's receptive field


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
