"""What a model does, classification or regression, and which way each of its metrics is better.

The task comes from the estimator (scikit-learn's ``is_classifier`` / ``is_regressor``); the
target column must hold what that task predicts (class labels or numbers), and
``[tool.mlci] task``, when a project says it, must agree with both.
"""

from __future__ import annotations

from typing import Any

from mlci.errors import MlciError
from mlci.pipeline._columns import CATEGORICAL, INTEGER, NUMERIC, Column

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# Each metric's direction, as MLflow's MetricThreshold states it (greater_is_better).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "max_error", "mape"})


def greater_is_better(metric: str) -> bool:
    """True for accuracy, F1, R² and the like; False for the errors (MAE, RMSE, …)."""
    return metric.split(".", 1)[0] not in LOWER_IS_BETTER


def task_of_target(column: Column) -> str:
    """The task a target column asks for: class labels or a quantity."""
    return REGRESSION if column.kind in (NUMERIC, INTEGER) else CLASSIFICATION


def task_of_metrics(metrics: dict[str, Any]) -> str:
    """The task a run's metrics were computed for (runs before regression: classification).

    A run's metrics.json says it; flat metrics (a baseline entry, a registry version) are a
    regressor's when they have R² and no accuracy.
    """
    task = metrics.get("task")
    if task in TASKS:
        return str(task)
    return REGRESSION if "r2" in metrics and "accuracy" not in metrics else CLASSIFICATION


def task_of_estimator(estimator: Any) -> str | None:
    """Classification or regression by scikit-learn's tags; None for anything else."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return CLASSIFICATION
    if is_regressor(estimator):
        return REGRESSION
    return None


def check_task(
    estimator: Any, class_path: str, target: Column, setting: str, where: str, field: str
) -> str:
    """The task, when the estimator, the target column and ``[tool.mlci] task`` agree on it.

    ``where`` and ``field`` name the estimator's place in pyproject.toml for the message.
    """
    found = task_of_estimator(estimator)
    name = class_path.rpartition(".")[2]
    if found is None:
        raise MlciError(
            f"{where} {field}: {class_path} is neither a classifier nor a regressor "
            "(sklearn.base.is_classifier / is_regressor); mlci trains one or the other, such "
            "as sklearn.ensemble.RandomForestClassifier or RandomForestRegressor"
        )
    wanted = task_of_target(target)
    if setting in TASKS and setting != wanted:
        raise MlciError(
            f"[tool.mlci] task: '{setting}', but the target '{target.name}' is {target.kind} "
            f"({_holds(target)}): the manifest's target decides; run 'mlci data init' again or "
            f"set task = '{wanted}'"
        )
    if found != wanted:
        other = "RandomForestRegressor" if wanted == REGRESSION else "RandomForestClassifier"
        raise MlciError(
            f"{where} {field}: {name} is a {_noun(found)}, but the target '{target.name}' is "
            f"{target.kind} ({_holds(target)}): use a {_noun(wanted)} such as "
            f"sklearn.ensemble.{other}, or describe the target as "
            f"{'categorical' if found == CLASSIFICATION else 'numeric'} in the manifest"
        )
    return found


def _noun(task: str) -> str:
    return "classifier" if task == CLASSIFICATION else "regressor"


def _holds(target: Column) -> str:
    if target.kind == CATEGORICAL:
        shown = ", ".join(target.values[:5]) + (", …" if len(target.values) > 5 else "")
        return f"class labels {shown}"
    return f"numbers in [{target.min:g}, {target.max:g}]" if target.min is not None else "numbers"
