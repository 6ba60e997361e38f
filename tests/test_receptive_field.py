"""Tests for cnn_course.receptive_field (chapter 5) and the reference recurrence
that left it (tests/reference/receptive_field.py)."""

import os

import numpy as np
import pytest
from reference.receptive_field import brute_force_receptive_field, receptive_fields

from cnn_course.receptive_field import layers_from_keras, path_counts
from cnn_course.shapes import ShapeError, same_padding

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Hand-checked: (layers, receptive field after each layer, final jump).
HAND_CHECKED = [
    pytest.param([(3, 1)], [3], 1, id="one_3x3"),
    pytest.param([(3, 1)] * 3, [3, 5, 7], 1, id="three_3x3_equal_one_7x7"),
    pytest.param([(5, 1), (5, 1)], [5, 9], 1, id="two_5x5"),
    pytest.param([(2, 2), (2, 2), (2, 2)], [2, 4, 8], 8, id="pool_pyramid"),
    pytest.param([(3, 1), (2, 2), (3, 1), (2, 2)], [3, 4, 8, 10], 4, id="conv_pool_conv_pool"),
    # AlexNet (Krizhevsky et al., 2012): 195, as tabulated by Araujo et al.,
    # 2019, "Computing Receptive Fields of Convolutional Neural Networks".
    pytest.param(
        [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)],
        [11, 19, 51, 67, 99, 131, 163, 195],
        32,
        id="alexnet",
    ),
]


@pytest.mark.parametrize("layers, sizes, jump", HAND_CHECKED)
def test_recurrence_matches_hand_checked_table(layers, sizes, jump):
    rfs = receptive_fields(layers)
    assert [rf.size for rf in rfs] == sizes
    assert rfs[-1].jump == jump


@pytest.mark.parametrize("layers, sizes, jump", HAND_CHECKED)
def test_brute_force_matches_hand_checked_table(layers, sizes, jump):
    assert brute_force_receptive_field(layers) == sizes


@pytest.mark.parametrize("seed", range(20))
def test_recurrence_matches_brute_force_on_random_stacks(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 6))
    layers = []
    for _ in range(depth):
        k = int(rng.integers(1, 6))
        layers.append((k, int(rng.integers(1, 3)), int(rng.integers(0, k))))
    assert [rf.size for rf in receptive_fields(layers)] == brute_force_receptive_field(layers)


def test_jump_is_product_of_strides():
    layers = [(3, 2), (3, 1), (2, 2), (3, 3)]
    assert [rf.jump for rf in receptive_fields(layers)] == [2, 2, 4, 12]


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1, 1), (3, 1, 1)],
        [(3, 1, 1), (2, 2, 0), (3, 1, 1), (2, 2, 0)],
        [(5, 2, 2), (3, 2, 1), (3, 1, 0)],
    ],
)
def test_start_is_centre_of_traced_field(layers):
    n, unit = 64, 3
    reach = np.flatnonzero(path_counts(layers, n, unit))
    last = receptive_fields(layers)[-1]
    assert (reach.min() + reach.max()) / 2 == last.start + unit * last.jump


def test_path_counts_of_three_3x3_are_a_peaked_triangle():
    assert path_counts([(3, 1)] * 3, 9).tolist() == [0, 1, 3, 6, 7, 6, 3, 1, 0]


def test_layer_names_are_kept():
    rfs = receptive_fields([("conv1", 3, 1), ("pool1", 2, 2)])
    assert [rf.name for rf in rfs] == ["conv1", "pool1"]


@pytest.mark.parametrize("bad", [(0, 1), (3, 0), (3, 1, -1), (3,), (3, 1, 1, 1)])
def test_bad_layer_raises_shape_error(bad):
    with pytest.raises(ShapeError):
        receptive_fields([bad])


def test_too_small_input_raises_shape_error():
    with pytest.raises(ShapeError):
        path_counts([(5, 1), (5, 1)], 6)


def _keras_stack():
    keras = pytest.importorskip("keras")
    return keras, keras.Sequential(
        [
            keras.Input(shape=(21, 21, 1)),
            keras.layers.Conv2D(
                1, 3, padding="same", use_bias=False, kernel_initializer="ones", name="c1"
            ),
            keras.layers.AveragePooling2D(2, name="p1"),
            keras.layers.Conv2D(1, 3, use_bias=False, kernel_initializer="ones", name="c2"),
            keras.layers.Conv2D(
                1,
                3,
                strides=2,
                padding="same",
                use_bias=False,
                dilation_rate=1,
                kernel_initializer="ones",
                name="c3",
            ),
        ]
    )


def test_layers_from_keras_reads_kernel_stride_and_same_padding():
    _, model = _keras_stack()
    assert layers_from_keras(model) == [
        ("c1", 3, 1, same_padding(21, 3, 1)[0]),
        ("p1", 2, 2, 0),
        ("c2", 3, 1, 0),
        ("c3", 3, 2, same_padding(8, 3, 2)[0]),
    ]


def test_keras_one_hot_propagation_matches_recurrence():
    """Feed every one-hot image through a linear Keras stack of all-ones
    kernels: the pixels that reach a middle output unit are its receptive
    field, and their weights are the traced path counts."""
    keras, model = _keras_stack()
    n = 21
    eye = np.eye(n * n, dtype="float32").reshape(n * n, n, n, 1)
    out = keras.ops.convert_to_numpy(model(eye))  # (n*n, h, w, 1)
    h = out.shape[1]
    weights = out[:, h // 2, h // 2, 0].reshape(n, n)
    layers = layers_from_keras(model)
    rows = np.flatnonzero(weights.any(axis=1))
    assert rows.max() - rows.min() + 1 == receptive_fields(layers)[-1].size
    counts = path_counts(layers, n, h // 2)
    expected = np.outer(counts, counts) / 4.0  # the 2x2 average divides by 4
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
