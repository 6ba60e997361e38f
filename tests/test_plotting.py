"""Tests for cnn_course.plotting (chapter 8's curve and confusion-matrix helpers)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnn_course import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class FakeHistory:
    """Stands in for keras.callbacks.History: only `.history` is used."""

    def __init__(self, history):
        self.history = history


def test_confusion_matrix_counts_match_hand_computed():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 2]
    cm = plotting.confusion_matrix(y_true, y_pred, num_classes=3)
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_accepts_keras_column_labels():
    y_true = np.array([[0], [1], [1]])
    cm = plotting.confusion_matrix(y_true, np.array([0, 1, 0]), num_classes=2)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])


def test_confusion_matrix_infers_num_classes_from_labels():
    cm = plotting.confusion_matrix([0, 3], [3, 3])
    assert cm.shape == (4, 4)
    assert cm.sum() == 2


def test_confusion_matrix_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one predicted class per sample"):
        plotting.confusion_matrix([0, 1, 2], [0, 1])


def test_confusion_matrix_rejects_label_out_of_range():
    with pytest.raises(ValueError, match="labels must lie"):
        plotting.confusion_matrix([0, 5], [0, 1], num_classes=3)


def test_per_class_accuracy_is_diagonal_over_row_sum():
    cm = np.array([[3, 1], [0, 2]])
    np.testing.assert_allclose(plotting.per_class_accuracy(cm), [0.75, 1.0])


def test_per_class_accuracy_gives_nan_for_empty_class():
    acc = plotting.per_class_accuracy(np.array([[2, 0], [0, 0]]))
    assert acc[0] == 1.0
    assert np.isnan(acc[1])


def test_plot_history_draws_training_and_validation_lines():
    hist = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6],
            "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4, 0.6, 0.65]}
    fig, axes = plotting.plot_history(FakeHistory(hist), title="demo")
    assert len(axes) == 2
    for ax in axes:
        assert len(ax.lines) == 2
        assert ax.get_xlabel() == "epoch"
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    assert axes[0].get_ylabel() == "loss"


def test_plot_history_without_validation_draws_one_line():
    _, axes = plotting.plot_history({"loss": [1.0, 0.5]}, metrics=["loss"])
    assert len(axes[0].lines) == 1


def test_plot_history_names_missing_metric():
    with pytest.raises(KeyError, match="accuracy"):
        plotting.plot_history({"loss": [1.0]})


def test_plot_history_rejects_non_history():
    with pytest.raises(TypeError, match="History"):
        plotting.plot_history([1, 2, 3])


def test_plot_confusion_matrix_normalises_rows():
    cm = np.array([[3, 1], [0, 4]])
    fig, ax = plotting.plot_confusion_matrix(cm, ["cat", "dog"])
    image = ax.images[0].get_array()
    np.testing.assert_allclose(image, [[0.75, 0.25], [0.0, 1.0]])
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "1.00"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert ax.get_xlabel() == "predicted class"
    assert ax.get_ylabel() == "true class"


def test_plot_confusion_matrix_counts_when_not_normalised():
    _, ax = plotting.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), normalize=False)
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]


def test_plot_confusion_matrix_rejects_wrong_number_of_names():
    with pytest.raises(ValueError, match="class names"):
        plotting.plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b"])
