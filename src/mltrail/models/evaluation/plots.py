"""The evaluation plots (confusion matrix, ROC, precision-recall, lift, calibration) as matplotlib Figures.

Figures are built with `matplotlib.figure.Figure`, never through pyplot's global state, so evaluating
does not open windows, switch backends or leak figures in the user's process.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail.models.evaluation.classifier_metrics import Curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# MLflow's settings for every evaluation plot.
PLOT_STYLE: dict[str, Any] = {"figure.dpi": 175, "figure.figsize": [6.0, 4.0], "figure.autolayout": True, "font.size": 8}


@contextmanager
def plot_style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(PLOT_STYLE):  # type: ignore[arg-type]  # keys are valid rcParams
        yield


def save_png(figure: Figure, path: str) -> None:
    figure.savefig(path, format="png", bbox_inches="tight")


def confusion_matrix_figure(matrix: np.ndarray, labels: np.ndarray) -> Figure:
    """A heatmap of the row-normalised confusion matrix."""
    import matplotlib
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    with matplotlib.rc_context({"font.size": min(8, math.ceil(50.0 / len(labels))), "axes.labelsize": 8}):
        figure = Figure(figsize=(6.0, 4.0), dpi=175)
        ax = figure.subplots()
        display = ConfusionMatrixDisplay(confusion_matrix=matrix, display_labels=labels).plot(cmap="Blues", ax=ax)
        display.ax_.set_title("Normalized confusion matrix")
    return figure


def curve_figure(curve: Curve, binary: bool) -> Figure:
    """A ROC or precision-recall curve, with the chance line dashed."""
    from matplotlib.figure import Figure

    figure = Figure()
    ax = figure.subplots()
    for label, x, y in curve.series:
        ax.plot(x, y, label=label, drawstyle="steps-post", linewidth=1)
    ax.set(xlabel=curve.xlabel, ylabel=curve.ylabel, title=curve.title)
    chance = ([0, 1], [0, 1]) if curve.kind == "roc" else ([0, 1], [1, 0])
    ax.plot(*chance, color="gray", alpha=0.3, linestyle="dashed")
    if binary:
        ax.legend(loc="best")
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
        figure.subplots_adjust(right=0.6, bottom=0.25)
    return figure


def _cumulative_gain(y_true: np.ndarray, score: np.ndarray, positive: Any) -> tuple[np.ndarray, np.ndarray]:
    """Share of the sample taken (highest scores first) and share of positives found by then."""
    hits = (np.asarray(y_true) == positive)[np.argsort(score)[::-1]]
    gains = np.cumsum(hits) / float(np.sum(hits))
    shares = np.arange(1, len(hits) + 1) / float(len(hits))
    return shares, gains


def lift_curve_figure(y_true: np.ndarray, y_proba: np.ndarray, pos_label: Any) -> Figure:
    """Lift of each class's probability over random selection (binary classifiers)."""
    from matplotlib.figure import Figure

    classes = np.unique(y_true)
    if len(classes) != 2:
        raise ValueError(f"Cannot calculate Lift Curve for data with {len(classes)} category/ies")
    figure = Figure()
    ax = figure.subplots()
    ax.set_title("Lift Curve", fontsize="large")
    for index, cls in enumerate(classes):
        shares, gains = _cumulative_gain(y_true, y_proba[:, index], cls)
        suffix = " (positive)" if pos_label == cls else ""
        ax.plot(shares, gains / shares, lw=3, label=f"Class {cls}{suffix}")
    ax.plot([0, 1], [1, 1], "k--", lw=2, label="Baseline")
    ax.set_xlabel("Percentage of sample", fontsize="medium")
    ax.set_ylabel("Lift", fontsize="medium")
    ax.grid(True)
    ax.legend(loc="best", fontsize="medium")
    return figure


def calibration_figure(y_true: np.ndarray, y_proba: np.ndarray, labels: np.ndarray, pos_index: int,
                       pos_label: Any, config: dict[str, Any]) -> Figure:
    """Observed frequency against predicted probability, for the positive class or for each class."""
    from matplotlib.figure import Figure
    from sklearn.calibration import CalibrationDisplay, calibration_curve

    name = config.get("calibration_classifier_name")
    bins = config.get("calibration_n_bins", 10)
    if name is not None and not isinstance(name, str):
        raise TypeError("calibration_classifier_name should be of type string")
    if not isinstance(bins, int):
        raise TypeError("calibration_n_bins should be of type int")
    figure = Figure()
    ax = figure.subplots()
    if y_proba.shape[1] == 2:
        CalibrationDisplay.from_predictions(y_true, y_proba[:, pos_index], pos_label=pos_label, name=name,
                                            n_bins=bins, ax=ax)
        return figure
    for index, cls in enumerate(labels):
        observed, predicted = calibration_curve(np.asarray(y_true) == cls, y_proba[:, index], n_bins=bins)
        ax.plot(predicted, observed, marker="o", markersize=3, label=f"Class {cls}")
    ax.plot([0, 1], [0, 1], linestyle="dotted", label="Perfect Calibration", color="black")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=max(1, len(labels) // 3))
    ax.set_title(f"{name or 'Classifier'} Calibration", fontsize=12)
    ax.set_xlabel("Mean Predicted Probability", fontsize=10)
    ax.set_ylabel("Fraction of True Positives", fontsize=10)
    return figure
