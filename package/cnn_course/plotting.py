"""Plotting helpers for training curves and confusion matrices.

Introduced in chapter 8 ("Training better CNNs"): `plot_history` draws the
learning curves used to diagnose over- and underfitting, `confusion_matrix`,
`per_class_accuracy` and `plot_confusion_matrix` break a classifier's test
accuracy down by class. Only NumPy and Matplotlib are needed, so importing this
module never pulls in TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

__all__ = [
    "confusion_matrix",
    "per_class_accuracy",
    "plot_confusion_matrix",
    "plot_history",
]


def _history_dict(history) -> Mapping[str, Sequence[float]]:
    """Return the metric dict of a Keras `History` or of a plain mapping."""
    if isinstance(history, Mapping):
        return history
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        return history.history
    raise TypeError(
        "history must be a keras.callbacks.History (what model.fit returns) "
        f"or a dict of metric name -> list of values, not {type(history).__name__}"
    )


def plot_history(history, metrics=("loss", "accuracy"), title=None, axes=None):
    """Plot training (and validation, when present) curves, one panel per metric.

    Chapter 8. `history` is what `model.fit` returns (or its `.history` dict).
    For each name in `metrics` the panel shows `name` and, if recorded,
    `val_name` against the epoch number (starting at 1). Returns `(fig, axes)`.
    """
    hist = _history_dict(history)
    missing = [m for m in metrics if m not in hist]
    if missing:
        raise KeyError(
            f"metrics {missing} are not in the history; it holds {sorted(hist)}. "
            "Compile the model with those metrics or pass metrics=... explicitly."
        )
    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5))
    else:
        fig = np.atleast_1d(axes)[0].figure
    axes = np.atleast_1d(axes)
    if len(axes) != len(metrics):
        raise ValueError(f"got {len(axes)} axes for {len(metrics)} metrics")
    for ax, name in zip(axes, metrics, strict=True):
        values = np.asarray(hist[name], dtype=float)
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, "o-", ms=3, label="training")
        if f"val_{name}" in hist:
            val = np.asarray(hist[f"val_{name}"], dtype=float)
            ax.plot(np.arange(1, len(val) + 1), val, "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(name.replace("_", " "))
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, axes


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Count matrix `cm[i, j]` = number of samples of true class i predicted as j.

    Chapter 8. Labels may be shaped (N,) or (N, 1) (Keras's CIFAR-10 layout).
    `num_classes` defaults to one more than the largest label seen.
    """
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_pred = np.asarray(y_pred).reshape(-1).astype(int)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.size} labels but y_pred has {y_pred.size}; "
            "pass one predicted class per sample (e.g. argmax of the outputs)"
        )
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0
                        or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_accuracy(cm):
    """Fraction of each true class predicted correctly (recall): diag / row sum.

    Chapter 8. A class with no samples gets NaN rather than a division error.
    """
    cm = np.asarray(cm, dtype=float)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / totals, np.nan)


def plot_confusion_matrix(cm, class_names=None, normalize=True, title=None, ax=None):
    """Draw a confusion matrix as a heat map with the value in each cell.

    Chapter 8. With `normalize=True` each row is divided by its total, so the
    diagonal reads as per-class accuracy. Returns `(fig, ax)`.
    """
    cm = np.asarray(cm)
    n = cm.shape[0]
    if cm.ndim != 2 or cm.shape[1] != n:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for {n} classes")
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        fmt, vmax = "{:.2f}", 1.0
    else:
        shown, fmt, vmax = cm, "{:d}", None
    if ax is None:
        size = max(4.0, 0.55 * n + 1.5)
        fig, ax = plt.subplots(figsize=(size, size * 0.9))
    else:
        fig = ax.figure
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of true class" if normalize else "count")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize
                           else "Confusion matrix"))
    threshold = (shown.max() if shown.size else 0) / 2
    for i in range(n):
        for j in range(n):
            value = shown[i, j].item()
            ax.text(j, i, fmt.format(value),
                    ha="center", va="center", fontsize=7,
                    color="white" if value > threshold else "black")
    fig.tight_layout()
    return fig, ax
