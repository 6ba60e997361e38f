"""Choosing hyperparameters: a learning-rate range test and a parameter budget.

Introduced in chapter 14 (hyperparameter tuning) and used again in chapter 15
(the image-classifier project).

- :func:`lr_range_test` trains a compiled model for a few hundred mini-batches
  while the learning rate rises geometrically, recording the loss at each
  step (Smith, 2017, "Cyclical learning rates for training neural networks",
  section 3.3); :func:`suggest_learning_rate` reads a rate off that curve.
- :func:`budgeted` wraps a Keras Tuner model-building function so that a
  trial whose model has too many parameters is rejected before it trains.

Keras Tuner is imported only when a budgeted model is over its budget, so the
module itself needs nothing beyond Keras and NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["LRRangeTest", "budgeted", "lr_range_test", "suggest_learning_rate"]


@dataclass(frozen=True)
class LRRangeTest:
    """What :func:`lr_range_test` measured: one entry per mini-batch trained."""

    learning_rates: np.ndarray
    losses: np.ndarray  # the raw loss of each mini-batch
    smoothed: np.ndarray  # exponential moving average of the losses, bias-corrected
    diverged: bool  # True when the run stopped because the loss blew up


def lr_range_test(
    model,
    x,
    y,
    *,
    start_lr: float = 1e-5,
    end_lr: float = 1.0,
    steps: int = 100,
    batch_size: int = 64,
    smoothing: float = 0.9,
    stop_factor: float = 4.0,
    seed: int = 0,
) -> LRRangeTest:
    """Train ``model`` for ``steps`` mini-batches with a rising learning rate.

    Chapter 14. The model must be compiled with an optimizer whose learning
    rate is a number (not a schedule) and a loss. Step ``i`` uses the rate
    ``start_lr * (end_lr / start_lr) ** (i / (steps - 1))`` and a mini-batch
    drawn at random from ``(x, y)``. The run stops early once the smoothed
    loss exceeds ``stop_factor`` times its lowest value (the rate is then far
    too high). The model's weights are put back afterwards; compile it again
    before training it for real, since the optimizer keeps its state.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if steps < 2 or batch_size < 1:
        raise ValueError(f"need steps >= 2 and batch_size >= 1, got {steps} and {batch_size}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of samples "
                         f"({len(x)} and {len(y)})")  # fmt: skip
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError("compile the model (optimizer and loss) before the range test")
    if not hasattr(optimizer.learning_rate, "assign"):
        raise ValueError(
            "the optimizer's learning rate is a schedule; compile with a number "
            "(for example keras.optimizers.Adam(1e-3)) for the range test"
        )

    rates = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    rng = np.random.default_rng(seed)
    saved = model.get_weights()
    losses, smoothed, average, best = [], [], 0.0, np.inf
    diverged = False
    try:
        for i, rate in enumerate(rates):
            optimizer.learning_rate.assign(float(rate))
            batch = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
            result = model.train_on_batch(x[batch], y[batch])
            loss = float(np.ravel(result)[0])  # the loss comes first when metrics are on
            average = smoothing * average + (1 - smoothing) * loss
            value = average / (1 - smoothing ** (i + 1))
            losses.append(loss)
            smoothed.append(value)
            best = min(best, value)
            if not np.isfinite(value) or value > stop_factor * best:
                diverged = True
                break
    finally:
        model.set_weights(saved)
    n = len(losses)
    return LRRangeTest(rates[:n], np.array(losses), np.array(smoothed), diverged)


def suggest_learning_rate(test: LRRangeTest, divide_by: float = 10.0) -> float:
    """A rate to train with: the one at the lowest smoothed loss, divided by ``divide_by``.

    Chapter 14. At the minimum the rate is already nearly too high (the loss
    turns up right after it), so a rate a few to ten times lower is the usual
    choice. A rule of thumb, not a law: check the curve by eye.
    """
    finite = np.isfinite(test.smoothed)
    if not finite.any():
        raise ValueError("the range test recorded no finite loss: start at a lower rate")
    best = int(np.argmin(np.where(finite, test.smoothed, np.inf)))
    return float(test.learning_rates[best] / divide_by)


def budgeted(build_model: Callable, max_params: int) -> Callable:
    """Wrap a Keras Tuner ``build_model(hp)`` so that models with ``max_params`` or
    more parameters are rejected, not trained.

    Chapter 14. The wrapper builds the model (which costs no training) and
    counts all its parameters with ``count_params()``, BatchNormalization's
    moving statistics included. Over budget it raises Keras Tuner's
    ``FailedTrialError``: the tuner marks the trial FAILED, never fits it, and
    moves on to the next trial. (The tuner's own ``max_model_size`` counts only
    trainable weights.) A rejected trial still counts towards ``max_trials``.
    """
    if max_params < 1:
        raise ValueError(f"max_params must be positive, got {max_params}")

    def build(hp):
        model = build_model(hp)
        n_params = model.count_params()
        if n_params >= max_params:
            from keras_tuner.errors import FailedTrialError

            raise FailedTrialError(
                f"{n_params:,} parameters: over the budget (fewer than {max_params:,})"
            )
        return model

    build.__name__ = getattr(build_model, "__name__", "build_model")
    build.__doc__ = build_model.__doc__
    return build
