"""Prediction with the trained model, loaded only once its SHA-256 matches the lineage."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlci.errors import MlciError
from mlci.pipeline import _stage as stage
from mlci.pipeline._config import Config
from mlci.pipeline._data import Manifest, Table, read_file, read_table
from mlci.pipeline._model import load_verified
from mlci.pipeline._prepare import model_input
from mlci.pipeline._task import REGRESSION, task_of_estimator


def load_trained(config: Config) -> Any:
    """Load ``artifacts/model.joblib`` after checking it against ``lineage.json``."""
    artifacts = stage.Artifacts.of(config)
    lineage = stage.read_lineage(artifacts)
    if lineage is None or lineage.get("status") != stage.COMPLETE:
        raise MlciError(
            f"{config.relative(artifacts.lineage)}: no complete training run; run 'mlci train'"
        )
    return load_verified(
        artifacts.model, lineage.get("outputs", {}).get("model", ""), config.skops_trusted
    )


def predict_rows(manifest: Manifest, model: Any, stream: Iterable[str], source: str) -> list[Any]:
    """Validate CSV rows against the model's manifest (its feature columns), then predict labels."""
    return predict_table(model, read_table(stream, source, manifest, require_target=False), source)


def predict_file(manifest: Manifest, model: Any, path: Path) -> list[Any]:
    """Predict the rows of a CSV or Parquet file, read as the manifest describes the data."""
    return predict_table(model, read_file(path, manifest, require_target=False), str(path))


def predict_table(model: Any, table: Table, source: str) -> list[Any]:
    """Labels (a regressor: numbers) for rows already validated against the model's manifest."""
    if not table.features:
        raise MlciError(f"{source}: no rows to predict")
    predicted = model.predict(model_input(table.features, table.columns))
    if task_of_estimator(model) == REGRESSION:
        return [float(value) for value in predicted]
    return [str(label) for label in predicted]
