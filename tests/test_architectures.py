"""Tests for cnn_course.architectures: shapes and parameter counts by formula."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from reference.conv_numpy import conv2d_params  # noqa: E402

from cnn_course import architectures as arch  # noqa: E402


def _model(block, input_shape, **kwargs):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, block(inputs, **kwargs))


def _bn(channels):
    """gamma, beta, moving mean, moving variance."""
    return 4 * channels


# --- local response normalization -------------------------------------------------


def test_lrn_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 11)).astype("float32") * 10
    layer = arch.LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    expected = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75
    )
    np.testing.assert_allclose(np.asarray(layer(x)), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_lrn_with_zero_alpha_only_rescales_by_bias():
    x = np.ones((1, 2, 2, 4), dtype="float32")
    layer = arch.LocalResponseNormalization(alpha=0.0, bias=4.0, beta=0.5)
    np.testing.assert_allclose(np.asarray(layer(x)), x / 2.0, rtol=1e-6)


def test_lrn_has_no_weights_and_keeps_shape():
    model = _model(arch.LocalResponseNormalization(), (7, 7, 16))
    assert model.count_params() == 0
    assert model.output_shape == (None, 7, 7, 16)


def test_lrn_rejects_negative_radius():
    with pytest.raises(ValueError, match="depth_radius"):
        arch.LocalResponseNormalization(depth_radius=-1)


def test_lrn_config_round_trip():
    layer = arch.LocalResponseNormalization(depth_radius=3, alpha=2e-4, name="lrn")
    clone = arch.LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth_radius, clone.alpha, clone.name) == (3, 2e-4, "lrn")


# --- inception ---------------------------------------------------------------------


def test_inception_3a_output_has_256_channels():
    model = _model(arch.inception_module, (28, 28, 192), f1=64, f3_reduce=96, f3=128,
                   f5_reduce=16, f5=32, pool_proj=32)  # fmt: skip
    assert model.output_shape == (None, 28, 28, 256)


def test_inception_params_equal_sum_of_branch_formulas():
    c = 192
    model = _model(arch.inception_module, (28, 28, c), f1=64, f3_reduce=96, f3=128,
                   f5_reduce=16, f5=32, pool_proj=32, name="inc")  # fmt: skip
    expected = (conv2d_params(1, c, 64) + conv2d_params(1, c, 96) + conv2d_params(3, 96, 128)
                + conv2d_params(1, c, 16) + conv2d_params(5, 16, 32)
                + conv2d_params(1, c, 32))  # fmt: skip
    assert model.count_params() == expected
    assert model.get_layer("inc_output").output.shape[-1] == 256


# --- residual blocks -----------------------------------------------------------------


def test_residual_block_identity_shortcut_adds_no_weights():
    c = 16
    model = _model(arch.residual_block, (8, 8, c), filters=c)
    assert model.output_shape == (None, 8, 8, c)
    assert model.count_params() == 2 * conv2d_params(3, c, c, use_bias=False) + 2 * _bn(c)


def test_residual_block_projection_when_stride_or_width_changes():
    model = _model(arch.residual_block, (8, 8, 16), filters=32, strides=2)
    assert model.output_shape == (None, 4, 4, 32)
    main = conv2d_params(3, 16, 32, False) + conv2d_params(3, 32, 32, False) + 2 * _bn(32)
    projection = conv2d_params(1, 16, 32, False) + _bn(32)
    assert model.count_params() == main + projection


def test_plain_block_has_same_weights_as_residual_block_without_projection():
    plain = _model(arch.residual_block, (8, 8, 16), filters=16, residual=False)
    resid = _model(arch.residual_block, (8, 8, 16), filters=16, residual=True)
    assert plain.count_params() == resid.count_params()
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)


def test_bottleneck_block_params_and_shape():
    model = _model(arch.bottleneck_block, (14, 14, 256), filters=64)
    assert model.output_shape == (None, 14, 14, 256)
    expected = (conv2d_params(1, 256, 64, False) + conv2d_params(3, 64, 64, False)
                + conv2d_params(1, 64, 256, False) + _bn(64) * 2 + _bn(256))  # fmt: skip
    assert model.count_params() == expected


def test_bottleneck_block_with_stride_projects_and_downsamples():
    model = _model(arch.bottleneck_block, (14, 14, 256), filters=128, strides=2)
    assert model.output_shape == (None, 7, 7, 512)


# --- dense blocks ----------------------------------------------------------------------


@pytest.mark.parametrize("c0, num_layers, k", [(64, 6, 32), (24, 4, 12), (3, 1, 5)])
def test_dense_block_channels_grow_by_k_per_layer(c0, num_layers, k):
    model = _model(arch.dense_block, (8, 8, c0), num_layers=num_layers, growth_rate=k)
    assert model.output_shape == (None, 8, 8, c0 + num_layers * k)


def test_dense_block_without_bottleneck_params():
    c0, k = 10, 4
    model = _model(arch.dense_block, (8, 8, c0), num_layers=2, growth_rate=k,
                   bottleneck=False)  # fmt: skip
    expected = (_bn(c0) + conv2d_params(3, c0, k, False)
                + _bn(c0 + k) + conv2d_params(3, c0 + k, k, False))  # fmt: skip
    assert model.count_params() == expected


# --- whole networks ---------------------------------------------------------------------


@pytest.mark.parametrize("blocks, depth", [(1, 8), (3, 20)])
def test_small_resnet_depth_is_6n_plus_2(blocks, depth):
    model = arch.small_resnet((16, 16, 1), 10, blocks, widths=(4, 8, 16))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
             and "_proj_" not in layer.name]  # fmt: skip
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) + len(dense) == depth
    assert model.name == f"resnet{depth}"
    assert model.output_shape == (None, 10)


def test_small_resnet_plain_twin_has_no_additions():
    model = arch.small_resnet((16, 16, 1), 10, 2, widths=(4, 8, 16), residual=False)
    assert model.name == "plain14"
    assert not any(isinstance(layer, keras.layers.Add) for layer in model.layers)


def test_small_resnet_stem_stride_halves_resolution():
    model = arch.small_resnet((28, 28, 1), 10, 1, widths=(4, 8, 16), stem_strides=2)
    assert model.get_layer("stem_relu").output.shape[1:3] == (14, 14)


def test_count_weight_layers_skips_layers_without_weights():
    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2)(x)
    assert arch.count_weight_layers(keras.Model(inputs, outputs)) == 3


def test_count_weight_layers_descends_into_nested_models():
    inner_in = keras.Input(shape=(4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3)(keras.layers.Dense(4)(inner_in)))
    outer_in = keras.Input(shape=(4,))
    outer = keras.Model(outer_in, keras.layers.Dense(1)(inner(outer_in)))
    assert arch.count_weight_layers(outer) == 3
