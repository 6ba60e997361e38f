"""cnn_course.tuning: the learning-rate range test and the parameter budget for
Keras Tuner (chapters 14 and 15)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_course import tuning


@pytest.fixture
def regression():
    """A linear problem a one-unit model solves: y = x @ w."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 8)).astype("float32")
    y = (x @ rng.standard_normal((8, 1))).astype("float32")
    return x, y


def linear_model(optimizer=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse")
    return model


def test_range_test_rates_rise_geometrically_and_loss_blows_up_at_the_top(regression):
    x, y = regression
    result = tuning.lr_range_test(linear_model(), x, y, start_lr=1e-4, end_lr=10.0,
                                  steps=60, batch_size=32)  # fmt: skip
    ratios = result.learning_rates[1:] / result.learning_rates[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1
    assert result.learning_rates[0] == pytest.approx(1e-4)
    assert result.diverged and len(result.losses) < 60  # SGD on mse diverges well below 10
    assert len(result.losses) == len(result.smoothed) == len(result.learning_rates)


def test_range_test_puts_the_weights_back(regression):
    x, y = regression
    model = linear_model()
    before = [w.copy() for w in model.get_weights()]
    tuning.lr_range_test(model, x, y, steps=20)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_suggested_rate_trains_the_model(regression):
    x, y = regression
    result = tuning.lr_range_test(linear_model(), x, y, start_lr=1e-4, end_lr=10.0,
                                  steps=60, batch_size=32)  # fmt: skip
    rate = tuning.suggest_learning_rate(result)
    assert result.learning_rates[0] <= rate * 10 <= result.learning_rates[-1]
    model = linear_model(keras.optimizers.SGD(rate))
    start = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.1 * start


def test_suggestion_is_the_lowest_smoothed_loss_divided(regression):
    fake = tuning.LRRangeTest(np.array([1e-3, 1e-2, 1e-1, 1.0]), np.array([3, 2, 1, 9.0]),
                              np.array([3, 2, 1, 9.0]), True)  # fmt: skip
    assert tuning.suggest_learning_rate(fake) == pytest.approx(1e-2)
    assert tuning.suggest_learning_rate(fake, divide_by=1) == pytest.approx(1e-1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr < end_lr"),
        ({"steps": 1}, "steps >= 2"),
        ({"smoothing": 1.0}, "smoothing"),
    ],
)
def test_range_test_rejects_bad_arguments(regression, kwargs, message):
    x, y = regression
    with pytest.raises(ValueError, match=message):
        tuning.lr_range_test(linear_model(), x, y, **kwargs)


def test_range_test_needs_a_compiled_model_with_a_plain_rate(regression):
    x, y = regression
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile the model"):
        tuning.lr_range_test(model, x, y)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    with pytest.raises(ValueError, match="schedule"):
        tuning.lr_range_test(linear_model(keras.optimizers.SGD(schedule)), x, y)


# --- the parameter budget ------------------------------------------------------


def width_model(hp):
    """A dense model whose size the search picks: 8 * units + units + units + 1."""
    units = hp.Choice("units", [2, 4, 64, 128])
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])  # fmt: skip
    model.compile(optimizer="adam", loss="mse")
    return model


class CountingTuner:
    """Builds a RandomSearch whose models record every call to fit."""

    def __init__(self, build, directory):
        import keras_tuner

        self.fitted_units = []
        counting = self

        class Model(keras_tuner.HyperModel):
            def build(self, hp):
                return build(hp)

            def fit(self, hp, model, *args, **kwargs):
                counting.fitted_units.append(hp.get("units"))
                return super().fit(hp, model, *args, **kwargs)

        self.tuner = keras_tuner.RandomSearch(
            Model(), objective="val_loss", max_trials=12, seed=3,
            max_consecutive_failed_trials=12, directory=directory,
            project_name="budget", overwrite=True,
        )  # fmt: skip


def test_over_budget_trials_fail_without_training_and_the_rest_train(regression, tmp_path):
    pytest.importorskip("keras_tuner")
    x, y = regression
    budget = 300  # units 2 and 4 fit (29 and 41 parameters); 64 and 128 do not
    counting = CountingTuner(tuning.budgeted(width_model, budget), tmp_path)
    counting.tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    trials = counting.tuner.oracle.trials.values()
    failed = [t for t in trials if t.status == "FAILED"]
    completed = [t for t in trials if t.status == "COMPLETED"]
    assert failed and completed
    assert all(t.hyperparameters.get("units") >= 64 for t in failed)
    assert all("over the budget" in t.message for t in failed)
    assert all(not t.metrics.exists("val_loss") for t in failed)
    assert all(t.hyperparameters.get("units") <= 4 for t in completed)
    assert set(counting.fitted_units) <= {2, 4}, "an over-budget model was trained"
    best = counting.tuner.get_best_models(1)[0]
    assert best.count_params() < budget


def test_budget_counts_every_parameter_not_only_trainable_ones():
    pytest.importorskip("keras_tuner")
    from keras_tuner import HyperParameters
    from keras_tuner.errors import FailedTrialError

    def with_batch_norm(hp):
        # 8*4+4 = 36 trainable, + 4 gamma, 4 beta trainable, + 8 moving statistics
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(4),
                                 keras.layers.BatchNormalization()])  # fmt: skip

    model = with_batch_norm(None)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable < model.count_params()
    tuning.budgeted(with_batch_norm, model.count_params() + 1)(HyperParameters())
    with pytest.raises(FailedTrialError, match="over the budget"):
        tuning.budgeted(with_batch_norm, trainable + 1)(HyperParameters())
