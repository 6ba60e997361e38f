"""Tests for the reference conv_numpy (tests/reference) against SciPy and Keras."""

import os

import numpy as np
import pytest
from reference import conv_numpy
from scipy import signal

SHAPES = [
    # (image shape, kernel shape)
    ((5, 5), (3, 3)),
    ((7, 4), (2, 3)),
    ((6, 9), (1, 1)),
    ((4, 4), (4, 4)),
    ((10, 8), (5, 2)),
]


@pytest.mark.parametrize("fn", [conv_numpy.corr2d_loop, conv_numpy.corr2d])
@pytest.mark.parametrize(("x_shape", "k_shape"), SHAPES)
def test_corr2d_matches_scipy_correlate2d(fn, x_shape, k_shape):
    """corr2d_loop and corr2d agree with scipy.signal.correlate2d(mode='valid')"""
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=x_shape), rng.normal(size=k_shape)
    np.testing.assert_allclose(fn(x, k), signal.correlate2d(x, k, mode="valid"), atol=1e-12)


def test_corr2d_does_not_flip_the_kernel():
    """corr2d is cross-correlation: it differs from convolution for an asymmetric kernel"""
    x = np.arange(16.0).reshape(4, 4)
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    conv = signal.convolve2d(x, k, mode="valid")
    assert not np.allclose(conv_numpy.corr2d(x, k), conv)
    np.testing.assert_allclose(conv_numpy.corr2d(x, k[::-1, ::-1]), conv)


@pytest.mark.parametrize("fn", [conv_numpy.corr2d_loop, conv_numpy.corr2d])
def test_corr2d_rejects_kernel_larger_than_image(fn):
    """a kernel that does not fit raises ValueError naming both shapes"""
    with pytest.raises(ValueError, match=r"larger than the image"):
        fn(np.zeros((3, 3)), np.zeros((4, 2)))


def test_corr2d_rejects_channels():
    """a 3-D image is refused with a pointer to conv2d"""
    with pytest.raises(ValueError, match="conv2d"):
        conv_numpy.corr2d(np.zeros((5, 5, 3)), np.zeros((3, 3)))


def _conv2d_scipy(x, kernel, bias):
    """Independent reference: sum of SciPy 2-D correlations over input channels."""
    kh, kw, c_in, c_out = kernel.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1, c_out))
    for o in range(c_out):
        for c in range(c_in):
            out[:, :, o] += signal.correlate2d(x[:, :, c], kernel[:, :, c, o], "valid")
        out[:, :, o] += bias[o]
    return out


@pytest.mark.parametrize(
    ("hw", "kernel_shape"), [((6, 7), (3, 3, 3, 4)), ((5, 5), (1, 1, 2, 3)), ((8, 4), (2, 4, 1, 2))]
)
def test_conv2d_matches_per_channel_scipy(hw, kernel_shape):
    """conv2d = per-filter sum over input channels of correlate2d, plus bias"""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(*hw, kernel_shape[2]))
    kernel = rng.normal(size=kernel_shape)
    bias = rng.normal(size=kernel_shape[3])
    np.testing.assert_allclose(
        conv_numpy.conv2d(x, kernel, bias), _conv2d_scipy(x, kernel, bias), atol=1e-12
    )


def test_conv2d_batched_equals_one_image_at_a_time():
    """a (n, h, w, c) batch gives the same maps as looping over its images"""
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(3, 6, 6, 2))
    kernel = rng.normal(size=(3, 3, 2, 5))
    batched = conv_numpy.conv2d(xs, kernel)
    assert batched.shape == (3, 4, 4, 5)
    for x, out in zip(xs, batched, strict=True):
        np.testing.assert_allclose(out, conv_numpy.conv2d(x, kernel))


def test_conv2d_rejects_channel_mismatch():
    """an image whose channel count differs from the kernel's raises ValueError"""
    with pytest.raises(ValueError, match="3 channels but the kernel expects 1"):
        conv_numpy.conv2d(np.zeros((5, 5, 3)), np.zeros((3, 3, 1, 2)))


def test_conv2d_rejects_bad_bias_shape():
    """a bias that is not (c_out,) raises ValueError"""
    with pytest.raises(ValueError, match="bias must have shape"):
        conv_numpy.conv2d(np.zeros((5, 5, 1)), np.zeros((3, 3, 1, 2)), np.zeros(3))


@pytest.mark.parametrize(
    ("kernel_size", "c_in", "filters", "use_bias", "expected"),
    [
        (3, 3, 32, True, 896),
        (3, 32, 64, True, 18_496),
        ((5, 3), 1, 6, True, 96),
        (1, 64, 16, False, 1_024),
    ],
)
def test_conv2d_params_formula(kernel_size, c_in, filters, use_bias, expected):
    """conv2d_params gives (kh*kw*c_in + bias) * filters"""
    assert conv_numpy.conv2d_params(kernel_size, c_in, filters, use_bias) == expected


def test_conv2d_and_params_match_keras_conv2d():
    """conv2d and conv2d_params agree with keras.layers.Conv2D given the same weights"""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 9, 7, 3)).astype("float32")
    layer = keras.layers.Conv2D(4, (3, 2), padding="valid")
    layer.build(x.shape)
    kernel = rng.normal(size=(3, 2, 3, 4)).astype("float32")
    bias = rng.normal(size=4).astype("float32")
    layer.set_weights([kernel, bias])
    expected = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(conv_numpy.conv2d(x, kernel, bias), expected, atol=1e-4)
    assert conv_numpy.conv2d_params((3, 2), 3, 4) == layer.count_params()
