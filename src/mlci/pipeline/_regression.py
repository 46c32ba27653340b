"""Held-out metrics for a regressor: MLflow's regressor evaluator's, MAPE without zero targets.

MAE, RMSE, R², max error and MAPE, as MLflow's default evaluator reports them for a regressor;
MAPE leaves out the rows whose true value is 0 (where it is undefined) and says how many, as
Evidently does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

HEADLINE = ("r2", "rmse", "mae")  # compared with the reference and the simpler models
EXTRA = ("max_error", "mape")
METRICS = (*HEADLINE, *EXTRA)
NAMES = {
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
    "max_error": "max error",
    "mape": "MAPE",
}


def regression_metrics(
    y_true: Sequence[float], y_pred: Sequence[float], *, train_size: int
) -> dict[str, Any]:
    """MAE, RMSE, R², max error, MAPE (zero targets left out and counted), and the sizes."""
    import numpy as np

    truth = np.asarray(y_true, dtype=np.float64)
    predicted = np.asarray(y_pred, dtype=np.float64)
    errors = predicted - truth
    spread = float(((truth - truth.mean()) ** 2).sum()) if len(truth) else 0.0
    nonzero = truth != 0
    metrics: dict[str, Any] = {
        "task": "regression",
        "r2": 1.0 - float((errors**2).sum()) / spread if spread else math.nan,
        "rmse": float(np.sqrt((errors**2).mean())) if len(truth) else math.nan,
        "mae": float(np.abs(errors).mean()) if len(truth) else math.nan,
        "max_error": float(np.abs(errors).max()) if len(truth) else math.nan,
        "mean_error": float(errors.mean()) if len(truth) else math.nan,
        "mape_excluded_rows": int((~nonzero).sum()),
        "train_size": int(train_size),
        "test_size": len(truth),
    }
    if nonzero.any():
        metrics["mape"] = float(np.abs(errors[nonzero] / truth[nonzero]).mean())
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers a regressor is judged by."""
    return {name: float(metrics[name]) for name in METRICS if name in metrics}


SUMMARY_HEADER = ["metric", "value", "note"]


def summary_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The report's metrics table for a regressor."""
    rows = []
    for name in METRICS:
        if name not in metrics:
            continue
        note = "lower is better" if name != "r2" else "1 is perfect, 0 is the mean's"
        if name == "mape" and metrics.get("mape_excluded_rows"):
            note += f"; {metrics['mape_excluded_rows']} rows with a true value of 0 left out"
        rows.append([name, f"{metrics[name]:.4f}", note])
    if "mape" not in metrics and metrics.get("mape_excluded_rows"):
        rows.append(["mape", "-", "every held-out true value is 0: undefined"])
    if "mean_error" in metrics:
        rows.append(["mean_error", f"{metrics['mean_error']:+.4f}", "predicted minus true"])
    return rows
