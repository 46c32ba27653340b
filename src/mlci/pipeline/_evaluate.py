"""Held-out metrics for a classifier, and for either task what the gate and the report compare.

One evaluator per task, as MLflow's: this module's for classifiers, ``_regression`` for
regressors; ``headline``, ``scalar_metrics`` and ``summary`` dispatch on a run's ``task``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from mlci.pipeline import _regression as regression
from mlci.pipeline._task import REGRESSION, task_of_metrics

HEADLINE = ("accuracy", "macro_f1")
# For binary targets whose estimator has predict_proba; the positive class is the manifest's last
# label (scikit-learn's convention for sorted labels).
BINARY = ("roc_auc", "average_precision")
SIMPLER = "simpler_models"  # in metrics.json: simpler models' scores on the same split, by name


def compute_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], *, train_size: int
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
        "train_size": int(train_size),
        "test_size": len(y_true),
    }


def binary_metrics(y_true: Sequence[str], scores: Sequence[float], positive: str) -> dict[str, Any]:
    """ROC AUC and average precision of the positive class's probabilities."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = [label == positive for label in y_true]
    if len(set(truth)) < 2:  # one class only in the held-out rows: neither is defined
        return {"positive_label": positive}
    return {
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
        "positive_label": positive,
    }


def headline(task: str) -> tuple[str, ...]:
    """The metrics a task's candidate is compared on with its reference and simpler models."""
    return regression.HEADLINE if task == REGRESSION else HEADLINE


def compared(task: str) -> tuple[str, ...]:
    """Every single-number metric of a task, in the order the report shows them."""
    return regression.METRICS if task == REGRESSION else (*HEADLINE, *BINARY)


def headline_text(metrics: dict[str, Any], separator: str = "   ") -> str:
    """The run's headline metrics in one line: ``accuracy 0.9667   macro_f1 0.9655``."""
    names = (
        headline(task_of_metrics(metrics))[:2]
        if task_of_metrics(metrics) != REGRESSION
        else (
            "r2",
            "rmse",
        )
    )
    return separator.join(f"{name} {float(metrics[name]):.4f}" for name in names if name in metrics)


def summary(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The report's metrics table, header and rows, for the run's task."""
    if task_of_metrics(metrics) == REGRESSION:
        return regression.SUMMARY_HEADER, regression.summary_rows(metrics)
    return SUMMARY_HEADER, summary_rows(metrics)


def summary_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The report's metrics table: the headline numbers, then precision/recall/F1 per class."""
    rows = [
        [name, f"{metrics[name]:.4f}", "", "", ""]
        for name in (*HEADLINE, *BINARY)
        if name in metrics
    ]
    for label, scores in metrics.get("per_class", {}).items():
        rows.append(
            [
                f"class {label}",
                f"{scores['precision']:.4f}",
                f"{scores['recall']:.4f}",
                f"{scores['f1']:.4f}",
                str(scores["support"]),
            ]
        )
    return rows


SUMMARY_HEADER = ["metric", "value / precision", "recall", "f1", "support"]


def predictions_fingerprint(predictions: Sequence[Any]) -> str:
    """SHA-256 of the predicted labels in order, one per line: equal iff every prediction is."""
    return hashlib.sha256("\n".join(str(p) for p in predictions).encode("utf-8")).hexdigest()


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat numeric metrics, per-class ones as ``<metric>.<label>``: what gets compared."""
    if task_of_metrics(metrics) == REGRESSION:
        return regression.scalar_metrics(metrics)
    flat = {name: float(metrics[name]) for name in (*HEADLINE, *BINARY) if name in metrics}
    for label, scores in metrics.get("per_class", {}).items():
        for name in ("precision", "recall", "f1"):
            flat[f"{name}.{label}"] = float(scores[name])
    return flat
