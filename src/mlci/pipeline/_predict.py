"""Prediction with the trained model, loaded only once its SHA-256 matches the lineage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlci.errors import MlciError
from mlci.pipeline import _stage as stage
from mlci.pipeline._config import Config
from mlci.pipeline._data import Manifest, read_table
from mlci.pipeline._model import load_verified


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


def predict_rows(manifest: Manifest, model: Any, stream: Iterable[str], source: str) -> list[str]:
    """Validate rows against the model's manifest (its feature columns), then predict labels."""
    import numpy as np

    table = read_table(stream, source, manifest, require_target=False)
    if not table.features:
        raise MlciError(f"{source}: no rows to predict")
    return [str(label) for label in model.predict(np.asarray(table.features, dtype=np.float64))]
