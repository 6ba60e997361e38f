"""Tests for the reference backprop_numpy (tests/reference; chapter 6 derives it).

Forward passes are checked against SciPy, backward passes against centred
differences and, where TensorFlow is installed, against tf.GradientTape.
"""

import numpy as np
import pytest
from reference import backprop_numpy as bp
from scipy import signal

CONV_CASES = [
    # (n, h, w, c_in, c_out, k, stride, padding)
    (1, 5, 5, 1, 1, 3, 1, 0),
    (2, 6, 7, 2, 3, 3, 2, 1),
    (1, 8, 6, 3, 2, 2, 3, 2),
    (2, 7, 7, 1, 2, 4, 2, 0),  # (7 - 4) % 2 != 0: the last input row is never used
]


def _loss_through(forward, g):
    """Scalar loss L = sum(forward(.) * g), whose gradient w.r.t. the output is g."""
    return lambda arr: float(np.sum(forward(arr) * g))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_matches_scipy_correlate(case):
    n, h, w, ci, co, k, s, p = case
    rng = np.random.default_rng(1)
    x, wt, b = rng.normal(size=(n, h, w, ci)), rng.normal(size=(k, k, ci, co)), rng.normal(size=co)
    y = bp.conv2d_forward(x, wt, b, stride=s, padding=p)
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    for img in range(n):
        for o in range(co):
            ref = sum(
                signal.correlate2d(xp[img, :, :, c], wt[:, :, c, o], "valid") for c in range(ci)
            )
            np.testing.assert_allclose(y[img, :, :, o], ref[::s, ::s] + b[o], atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward_matches_centred_differences(case):
    n, h, w, ci, co, k, s, p = case
    rng = np.random.default_rng(2)
    x, wt, b = rng.normal(size=(n, h, w, ci)), rng.normal(size=(k, k, ci, co)), rng.normal(size=co)
    g = rng.normal(size=bp.conv2d_forward(x, wt, b, s, p).shape)
    dx, dw, db = bp.conv2d_backward(g, x, wt, s, p)
    num_dx = bp.numerical_gradient(_loss_through(lambda a: bp.conv2d_forward(a, wt, b, s, p), g), x)
    num_dw = bp.numerical_gradient(_loss_through(lambda a: bp.conv2d_forward(x, a, b, s, p), g), wt)
    num_db = bp.numerical_gradient(_loss_through(lambda a: bp.conv2d_forward(x, wt, a, s, p), g), b)
    assert bp.max_rel_error(dx, num_dx) < 1e-8
    assert bp.max_rel_error(dw, num_dw) < 1e-8
    assert bp.max_rel_error(db, num_db) < 1e-8


def test_conv2d_input_gradient_is_full_convolution_with_kernel():
    """Single channel, stride 1: dX = dY (*) W, a full convolution (kernel flipped)."""
    rng = np.random.default_rng(3)
    x, wt = rng.normal(size=(1, 6, 5, 1)), rng.normal(size=(3, 2, 1, 1))
    g = rng.normal(size=(1, 4, 4, 1))
    dx, dw, _ = bp.conv2d_backward(g, x, wt)
    np.testing.assert_allclose(dx[0, :, :, 0], signal.convolve2d(g[0, :, :, 0], wt[:, :, 0, 0]))
    np.testing.assert_allclose(
        dw[:, :, 0, 0], signal.correlate2d(x[0, :, :, 0], g[0, :, :, 0], "valid")
    )


@pytest.mark.parametrize(
    ("forward", "backward"),
    [
        (bp.maxpool2d_forward, bp.maxpool2d_backward),
        (bp.avgpool2d_forward, bp.avgpool2d_backward),
    ],
)
@pytest.mark.parametrize(("pool", "stride"), [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_pooling_backward_matches_centred_differences(forward, backward, pool, stride):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 7, 8, 2))
    g = rng.normal(size=forward(x, pool, stride).shape)
    num = bp.numerical_gradient(_loss_through(lambda a: forward(a, pool, stride), g), x)
    assert bp.max_rel_error(backward(g, x, pool, stride), num) < 1e-8


def test_maxpool_backward_routes_to_argmax_only():
    x = np.array([[1.0, 3.0], [2.0, 0.0]]).reshape(1, 2, 2, 1)
    dx = bp.maxpool2d_backward(np.full((1, 1, 1, 1), 5.0), x)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 5.0], [0.0, 0.0]])


def test_maxpool_backward_ties_go_to_first_maximum():
    x = np.ones((1, 2, 2, 1))
    dx = bp.maxpool2d_backward(np.ones((1, 1, 1, 1)), x)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_maxpool_backward_accumulates_overlapping_windows():
    x = np.array([[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]).reshape(1, 3, 3, 1)
    dx = bp.maxpool2d_backward(np.ones((1, 2, 2, 1)), x, pool_size=2, stride=1)
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0


def test_avgpool_backward_spreads_equally():
    dx = bp.avgpool2d_backward(np.full((1, 1, 1, 1), 8.0), np.zeros((1, 2, 2, 1)))
    np.testing.assert_array_equal(dx, np.full((1, 2, 2, 1), 2.0))


def test_flatten_backward_restores_shape_and_order():
    x = np.arange(24.0).reshape(2, 2, 3, 2)
    y = bp.flatten_forward(x)
    assert y.shape == (2, 12)
    np.testing.assert_array_equal(bp.flatten_backward(y, x.shape), x)


def test_dense_and_relu_backward_match_centred_differences():
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    g = rng.normal(size=(3, 2))

    def net(a):
        return bp.dense_forward(bp.relu_forward(a), w, b)

    dx_relu, _, _ = bp.dense_backward(g, bp.relu_forward(x), w)
    dx = bp.relu_backward(dx_relu, x)
    assert bp.max_rel_error(dx, bp.numerical_gradient(_loss_through(net, g), x)) < 1e-8


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(bp.ShapeError, match="C_in=3"):
        bp.conv2d_forward(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 2, 4)), np.zeros(4))


def test_conv_output_size_rejects_kernel_larger_than_input():
    with pytest.raises(bp.ShapeError, match="larger than the padded input"):
        bp.conv_output_size(3, 5)


def test_numerical_gradient_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        bp.numerical_gradient(np.sum, np.zeros(3, dtype=np.float32))


def test_max_rel_error_is_zero_for_two_zero_arrays():
    assert bp.max_rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_backward_passes_match_tensorflow_autodiff():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 9, 8, 3))
    wt, b = rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    conv = keras.layers.Conv2D(4, 3, strides=2, dtype="float64")
    pad = keras.layers.ZeroPadding2D(1, dtype="float64")
    conv.build((None, 11, 10, 3))
    conv.set_weights([wt, b])
    g = rng.normal(size=bp.conv2d_forward(x, wt, b, 2, 1).shape)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(conv(pad(xt)) * g)
    dxt, dwt, dbt = tape.gradient(loss, [xt, conv.kernel.value, conv.bias.value])
    for ours, theirs in zip(bp.conv2d_backward(g, x, wt, 2, 1), (dxt, dwt, dbt), strict=True):
        assert bp.max_rel_error(ours, theirs.numpy()) < 1e-12

    pool = keras.layers.MaxPooling2D(3, strides=2, dtype="float64")
    g = rng.normal(size=bp.maxpool2d_forward(x, 3, 2).shape)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(pool(xt) * g)
    theirs = tape.gradient(loss, xt).numpy()
    assert bp.max_rel_error(bp.maxpool2d_backward(g, x, 3, 2), theirs) < 1e-12
