"""Tests for cnn_course.shapes (chapters 3 and 5) and the reference formulas that
left it (tests/reference/shapes.py), against Keras itself."""

import os

import numpy as np
import pytest
from reference.shapes import batchnorm_params, conv_output_size, dense_params, keras_output_size

from cnn_course.shapes import ShapeError, layer_rows, markdown_table, same_padding

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

GRID = [(n, f, s) for n in (5, 6, 7, 28) for f in (1, 2, 3, 5) for s in (1, 2, 3) if f <= n]


@pytest.mark.parametrize("n, f, s", GRID)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_keras_output_size_matches_keras_conv2d(n, f, s, padding):
    layer = keras.layers.Conv2D(1, f, strides=s, padding=padding)
    assert layer.compute_output_shape((1, n, n, 1))[1] == keras_output_size(n, f, s, padding)


@pytest.mark.parametrize("n, f, s", GRID)
def test_textbook_formula_with_p0_is_valid(n, f, s):
    assert conv_output_size(n, f, 0, s) == keras_output_size(n, f, s, "valid")


@pytest.mark.parametrize("n, f", [(7, 3), (6, 3), (28, 5)])
def test_textbook_same_padding_keeps_size_at_stride_1(n, f):
    assert conv_output_size(n, f, (f - 1) // 2, 1) == n


def test_floor_drops_unreachable_pixels():
    assert conv_output_size(7, 3, 0, 3) == 2  # (7 - 3) / 3 = 1.33 -> 1, + 1


@pytest.mark.parametrize("n, f, s", [(7, 3, 2), (6, 3, 2), (6, 2, 1), (5, 4, 1)])
def test_same_padding_equals_explicit_zero_padding(n, f, s):
    """'same' must equal ZeroPadding2D((before, after)) followed by 'valid'."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, n, n, 1)).astype("float32")
    same = keras.layers.Conv2D(1, f, strides=s, padding="same", use_bias=False)
    valid = keras.layers.Conv2D(1, f, strides=s, padding="valid", use_bias=False)
    same.build((1, n, n, 1))
    valid.build((1, n + 2 * f, n + 2 * f, 1))
    valid.set_weights(same.get_weights())
    pad = same_padding(n, f, s)
    padded = keras.layers.ZeroPadding2D((pad, pad))(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(same(x)), keras.ops.convert_to_numpy(valid(padded)), atol=1e-6
    )


def test_same_padding_is_asymmetric_for_even_total():
    assert same_padding(6, 3, 2) == (0, 1)
    assert same_padding(7, 3, 2) == (1, 1)


@pytest.mark.parametrize("args", [(0, 3, 1), (5, 0, 1), (5, 3, 0), (5.5, 3, 1)])
def test_same_padding_rejects_impossible_sizes(args):
    with pytest.raises(ShapeError):
        same_padding(*args)


def test_dense_params_match_keras():
    layer = keras.layers.Dense(10)
    layer.build((None, 64))
    assert layer.count_params() == dense_params(64, 10) == 650


def test_batchnorm_params_match_keras():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4, 4, 16))
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
    assert (trainable, frozen) == batchnorm_params(16)


@pytest.mark.parametrize("args", [(3, 5, 0, 1), (0, 3, 0, 1), (5, 3, -1, 1), (5, 3, 0, 0)])
def test_impossible_sizes_raise_shape_error(args):
    with pytest.raises(ShapeError):
        conv_output_size(*args)


def test_unknown_padding_raises_shape_error():
    with pytest.raises(ShapeError):
        keras_output_size(5, 3, 1, "full")


def test_layer_rows_trace_a_small_model():
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(10, name="out"),
        ]
    )
    assert layer_rows(model) == [
        ("conv", "Conv2D", (26, 26, 8), 80),
        ("pool", "MaxPooling2D", (13, 13, 8), 0),
        ("flat", "Flatten", (1352,), 0),
        ("out", "Dense", (10,), 13530),
    ]


def test_markdown_table_formats_counts_and_shapes():
    text = markdown_table(["layer", "shape", "params"], [("conv", (26, 26, 8), 18496)])
    assert text.splitlines() == [
        "| layer | shape | params |",
        "| --- | --- | --- |",
        "| conv | 26×26×8 | 18,496 |",
    ]
