"""Classifier metrics with MLflow's names, computed by scikit-learn (imported when called)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def common_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None, labels: np.ndarray,
                   average: str, pos_label: Any, sample_weights: Any) -> dict[str, Any]:
    """example_count, accuracy, recall, precision, f1 (and log_loss with probabilities)."""
    from sklearn import metrics as sk

    scoring = {"average": average, "pos_label": pos_label, "sample_weight": sample_weights}
    out: dict[str, Any] = {
        "example_count": len(y_true),
        "accuracy_score": sk.accuracy_score(y_true, y_pred, sample_weight=sample_weights),
        "recall_score": sk.recall_score(y_true, y_pred, **scoring),
        "precision_score": sk.precision_score(y_true, y_pred, **scoring),
        "f1_score": sk.f1_score(y_true, y_pred, **scoring),
    }
    if y_proba is not None:
        out["log_loss"] = sk.log_loss(y_true, y_proba, labels=labels, sample_weight=sample_weights)
    return out


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | list[Any], pos_label: Any,
                   y_proba: np.ndarray | None = None, sample_weights: Any = None) -> dict[str, Any]:
    """The confusion counts (negative label first) and the common metrics with average="binary"."""
    from sklearn import metrics as sk

    tn, fp, fn, tp = sk.confusion_matrix(y_true, y_pred, labels=labels).ravel()
    return {"true_negatives": int(tn), "false_positives": int(fp), "false_negatives": int(fn),
            "true_positives": int(tp),
            **common_metrics(y_true, y_pred, y_proba, np.asarray(labels), "binary", pos_label, sample_weights)}


def multiclass_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, average: str,
                       y_proba: np.ndarray | None = None, sample_weights: Any = None) -> dict[str, Any]:
    """The common metrics averaged over classes (and one-vs-rest roc_auc with probabilities)."""
    from sklearn import metrics as sk

    out = common_metrics(y_true, y_pred, y_proba, labels, average, None, sample_weights)
    if average in ("macro", "weighted") and y_proba is not None:
        out["roc_auc"] = sk.roc_auc_score(y_true, y_proba, sample_weight=sample_weights, average=average,
                                          multi_class="ovr", labels=labels)
    return out


def per_class_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray,
                      sample_weights: Any) -> pd.DataFrame:
    """One row per class, that class against the rest: MLflow's per_class_metrics table."""
    rows = []
    for cls in labels:
        y_bin = (np.asarray(y_true) == cls).astype(int)
        pred_bin = (np.asarray(y_pred) == cls).astype(int)
        rows.append({"positive_class": cls,
                     **binary_metrics(y_bin, pred_bin, [0, 1], 1, sample_weights=sample_weights)})
    return pd.DataFrame(rows)


@dataclass
class Curve:
    """A ROC or precision-recall curve: the lines to draw, their axis labels, and the area (one per class)."""

    kind: str  # "roc" or "pr"
    series: list[tuple[str, np.ndarray, np.ndarray]]
    xlabel: str
    ylabel: str
    title: str
    auc: float | list[float]


def _one_curve(kind: str, y_bin: np.ndarray, score: np.ndarray, pos_label: Any,
               sample_weights: Any) -> tuple[np.ndarray, np.ndarray, str, float]:
    from sklearn import metrics as sk

    if kind == "roc":
        fpr, tpr, _ = sk.roc_curve(y_bin, score, pos_label=pos_label, sample_weight=sample_weights)
        auc = float(sk.roc_auc_score(np.asarray(y_bin) == pos_label, score, sample_weight=sample_weights))
        return fpr, tpr, f"AUC={auc:.3f}", auc
    precision, recall, _ = sk.precision_recall_curve(y_bin, score, pos_label=pos_label, sample_weight=sample_weights)
    # Average precision summarises a precision-recall curve better than the trapezoid area (MLflow's choice too).
    ap = float(sk.average_precision_score(y_bin, score, pos_label=pos_label, sample_weight=sample_weights))
    return recall, precision, f"AP={ap:.3f}", ap


def classifier_curve(kind: str, y_true: np.ndarray, y_proba: np.ndarray, labels: np.ndarray, pos_label: Any,
                     sample_weights: Any, binary: bool, pos_index: int = 1) -> Curve:
    """The ROC ("roc") or precision-recall ("pr") curve: of the positive class, or one-vs-rest per class."""
    if kind == "roc":
        xlabel, ylabel, title = "False Positive Rate", "True Positive Rate", "ROC curve"
    else:
        xlabel, ylabel, title = "Recall", "Precision", "Precision recall curve"
    if binary:
        xlabel, ylabel = f"{xlabel} (Positive label: {pos_label})", f"{ylabel} (Positive label: {pos_label})"
        x, y, label, auc = _one_curve(kind, y_true, y_proba[:, pos_index], pos_label, sample_weights)
        return Curve(kind, [(label, x, y)], xlabel, ylabel, title, auc)
    series, aucs = [], []
    for index, cls in enumerate(labels):
        y_bin = (np.asarray(y_true) == cls).astype(int)
        x, y, label, auc = _one_curve(kind, y_bin, y_proba[:, index], 1, sample_weights)
        series.append((f"label={cls},{label}", x, y))
        aucs.append(auc)
    return Curve(kind, series, xlabel, ylabel, title, aucs)


def normalized_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray,
                                sample_weights: Any) -> np.ndarray:
    """Rows normalised to 1 (each true class), as MLflow plots it."""
    from sklearn import metrics as sk

    return np.asarray(sk.confusion_matrix(y_true, y_pred, labels=labels, normalize="true",
                                          sample_weight=sample_weights))
