"""Building blocks of the classic CNN architectures, in the Keras Functional API.

Introduced in chapter 9 (classic architectures): :class:`LocalResponseNormalization`
(AlexNet) and :func:`inception_module` (GoogLeNet). Chapter 10 (ResNet and
beyond) adds :func:`residual_block`, :func:`bottleneck_block`,
:func:`dense_block`, :func:`small_resnet` and :func:`count_weight_layers`.

Every block is a function ``block(x, ...) -> y`` on symbolic Keras tensors, so
blocks compose like layers inside ``keras.Model(inputs, outputs)``. The
chapters check each block's output shape and parameter count against the
closed-form formulas (see :mod:`cnn_course.shapes`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = [
    "LocalResponseNormalization",
    "inception_module",
    "residual_block",
    "bottleneck_block",
    "dense_block",
    "small_resnet",
    "count_weight_layers",
]


def _name(prefix: str | None, suffix: str) -> str | None:
    """Layer name ``prefix_suffix``, or None (Keras picks one) without a prefix."""
    return None if prefix is None else f"{prefix}_{suffix}"


@keras.saving.register_keras_serializable(package="cnn_course")
class LocalResponseNormalization(layers.Layer):
    """AlexNet's local response normalization across channels (chapter 9).

    Krizhevsky, Sutskever & Hinton (2012), Section 3.3:
    ``b[c] = a[c] / (k + alpha * sum(a[c']**2 for |c' - c| <= n // 2)) ** beta``
    with the paper's ``k = 2``, ``n = 5``, ``alpha = 1e-4``, ``beta = 0.75``.
    ``depth_radius`` is ``n // 2``; the arguments follow
    ``tf.nn.local_response_normalization`` (same formula, alpha not divided by n).
    Channels last. No trainable weights.
    """

    def __init__(
        self,
        depth_radius: int = 2,
        bias: float = 2.0,
        alpha: float = 1e-4,
        beta: float = 0.75,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(depth_radius) != depth_radius or depth_radius < 0:
            raise ValueError(f"depth_radius must be an integer >= 0, got {depth_radius!r}")
        self.depth_radius = int(depth_radius)
        self.bias, self.alpha, self.beta = float(bias), float(alpha), float(beta)

    def call(self, x):
        r, channels = self.depth_radius, x.shape[-1]
        padding = [[0, 0]] * (len(x.shape) - 1) + [[r, r]]
        squares = ops.pad(ops.square(x), padding)
        window_sum = squares[..., 0:channels]
        for offset in range(1, 2 * r + 1):
            window_sum = window_sum + squares[..., offset : offset + channels]
        return x / ops.power(self.bias + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias,
                      alpha=self.alpha, beta=self.beta)  # fmt: skip
        return config


def inception_module(
    x,
    f1: int,
    f3_reduce: int,
    f3: int,
    f5_reduce: int,
    f5: int,
    pool_proj: int,
    name: str | None = None,
):
    """GoogLeNet's inception module with 1x1 reductions (chapter 9).

    Szegedy et al. (2015), "Going deeper with convolutions", Figure 2(b). Four
    parallel branches on the same input, concatenated along channels:
    1x1 conv (``f1``); 1x1 (``f3_reduce``) then 3x3 (``f3``); 1x1
    (``f5_reduce``) then 5x5 (``f5``); 3x3 max pool (stride 1) then 1x1
    (``pool_proj``). Every convolution has a bias and a ReLU, 'same' padding,
    so the output keeps the input's height and width and has
    ``f1 + f3 + f5 + pool_proj`` channels.
    """

    def conv(t, filters, size, suffix):
        return layers.Conv2D(filters, size, padding="same", activation="relu",
                             name=_name(name, suffix))(t)  # fmt: skip

    branch1 = conv(x, f1, 1, "1x1")
    branch3 = conv(conv(x, f3_reduce, 1, "3x3_reduce"), f3, 3, "3x3")
    branch5 = conv(conv(x, f5_reduce, 1, "5x5_reduce"), f5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=_name(name, "pool"))(x)
    branch_pool = conv(pooled, pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=_name(name, "output"))([branch1, branch3, branch5, branch_pool])


def _conv_bn(x, filters, size, strides=1, use_bias=False, name=None, relu=True):
    """Conv2D ('same' padding) -> BatchNormalization (-> ReLU)."""
    x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=use_bias,
                      name=_name(name, "conv"))(x)  # fmt: skip
    x = layers.BatchNormalization(name=_name(name, "bn"))(x)
    return layers.ReLU(name=_name(name, "relu"))(x) if relu else x


def _shortcut(x, filters, strides, use_bias, name):
    """Identity when the shapes match, else a 1x1 projection (+ BatchNorm)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return _conv_bn(x, filters, 1, strides, use_bias, _name(name, "proj"), relu=False)


def residual_block(
    x,
    filters: int,
    strides: int = 1,
    residual: bool = True,
    use_bias: bool = False,
    name: str | None = None,
):
    """ResNet's basic block: two 3x3 convolutions and a shortcut (chapter 10).

    He et al. (2016), "Deep residual learning for image recognition", Figure 2:
    ``y = relu(F(x) + shortcut(x))`` with
    ``F = conv3x3 -> BN -> ReLU -> conv3x3 -> BN``. The shortcut is the identity
    when the input already has ``filters`` channels and ``strides == 1``, and a
    1x1 convolution with stride ``strides`` (a projection, option B of the
    paper) otherwise. With ``residual=False`` there is no shortcut at all: the
    same layers as a "plain" block, for the degradation experiment.
    """
    y = _conv_bn(x, filters, 3, strides, use_bias, _name(name, "1"))
    y = _conv_bn(y, filters, 3, 1, use_bias, _name(name, "2"), relu=False)
    if residual:
        y = layers.Add(name=_name(name, "add"))([y, _shortcut(x, filters, strides, use_bias, name)])
    return layers.ReLU(name=_name(name, "out"))(y)


def bottleneck_block(
    x,
    filters: int,
    strides: int = 1,
    expansion: int = 4,
    use_bias: bool = False,
    name: str | None = None,
):
    """ResNet's bottleneck block: 1x1 reduce, 3x3, 1x1 expand (chapter 10).

    He et al. (2016), Figure 5 (right): ``filters`` channels in the 1x1 and
    3x3 convolutions, ``expansion * filters`` at the output, where the
    shortcut is added. The stride sits on the 3x3 convolution (as in
    "ResNet v1.5"; Keras's ResNet50 puts it on the first 1x1, which gives the
    same parameter count). Projection shortcut when the shape changes.
    """
    out_channels = expansion * filters
    y = _conv_bn(x, filters, 1, 1, use_bias, _name(name, "1"))
    y = _conv_bn(y, filters, 3, strides, use_bias, _name(name, "2"))
    y = _conv_bn(y, out_channels, 1, 1, use_bias, _name(name, "3"), relu=False)
    y = layers.Add(name=_name(name, "add"))(
        [y, _shortcut(x, out_channels, strides, use_bias, name)]
    )
    return layers.ReLU(name=_name(name, "out"))(y)


def dense_block(
    x, num_layers: int, growth_rate: int, bottleneck: bool = True, name: str | None = None
):
    """DenseNet's dense block (chapter 10).

    Huang et al. (2017), "Densely connected convolutional networks". Each of
    the ``num_layers`` layers sees the concatenation of the block's input and
    of every earlier layer's output, and adds ``growth_rate`` new channels:
    ``BN -> ReLU -> [conv1x1 (4 * growth_rate) -> BN -> ReLU] -> conv3x3``
    (the bracket is the DenseNet-BC bottleneck, as in Keras's DenseNet121).
    A block fed ``c`` channels returns ``c + num_layers * growth_rate``.
    """
    for i in range(1, num_layers + 1):
        prefix = _name(name, f"layer{i}")
        y = layers.BatchNormalization(name=_name(prefix, "bn1"))(x)
        y = layers.ReLU(name=_name(prefix, "relu1"))(y)
        if bottleneck:
            y = layers.Conv2D(4 * growth_rate, 1, use_bias=False,
                              name=_name(prefix, "conv1"))(y)  # fmt: skip
            y = layers.BatchNormalization(name=_name(prefix, "bn2"))(y)
            y = layers.ReLU(name=_name(prefix, "relu2"))(y)
        y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False,
                          name=_name(prefix, "conv2"))(y)  # fmt: skip
        x = layers.Concatenate(name=_name(prefix, "concat"))([x, y])
    return x


def small_resnet(
    input_shape,
    num_classes: int,
    blocks_per_stage: int,
    widths=(16, 32, 64),
    residual: bool = True,
    stem_strides: int = 1,
    name: str | None = None,
):
    """The CIFAR-style network of He et al. (2016), Section 4.2 (chapter 10).

    A 3x3 stem convolution with ``widths[0]`` channels, then one stage per
    entry of ``widths``, each of ``blocks_per_stage`` basic blocks (the first
    block of every stage after the first halves height and width), global
    average pooling and a softmax layer. It has ``2 * len(widths) *
    blocks_per_stage + 2`` weight layers (convolutions and the dense layer,
    projections not counted): 6n + 2 with the paper's three stages.
    ``residual=False`` builds the "plain" twin: the same layers, no shortcuts.
    ``stem_strides=2`` halves the input's height and width in the stem, which
    makes every later layer four times cheaper.
    """
    inputs = keras.Input(shape=input_shape)
    x = _conv_bn(inputs, widths[0], 3, stem_strides, name="stem")
    for stage, width in enumerate(widths, 1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if (stage > 1 and block == 1) else 1
            x = residual_block(x, width, strides, residual=residual,
                               name=f"stage{stage}_block{block}")  # fmt: skip
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    depth = 2 * len(widths) * blocks_per_stage + 2
    default = f"{'resnet' if residual else 'plain'}{depth}"
    return keras.Model(inputs, outputs, name=name or default)


def count_weight_layers(model) -> int:
    """Number of layers of ``model`` that hold weights (chapter 10).

    Convolutions, dense layers and normalization layers count; activations,
    pooling, padding, reshapes, additions and concatenations do not. This is
    the "depth" column of the Keras Applications table. Nested models count
    as the sum of their own weight layers.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_weight_layers(layer)
        elif layer.weights:
            total += 1
    return total
